//! Phase 3 end to end: phase1_sweep.lua and phase2_concurrency.lua with their CI settings (CPU
//! backend, the SmolLM2 test model) into a temporary store, plus a soak run and a fault run written
//! straight into the store (as the soak and fault runners record them), then `rawrxd report` and
//! scripts/phase3_docs.lua. Checks that every document and plot exists (PNG decodes, SVG is well
//! formed), that the figures in the documents' tables equal the store's, that absent phases read
//! "not measured", and that the regression view compares against the baseline run.
//!
//! Needs the test model (see tests/common).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;

use rawrxd::store::{Measurement, RunFilter, RunId, RunInfo, RunStatus, Store, Tags};
use serde_json::json;

mod common;
use common::test_model;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rawrxd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rawrxd"));
    c.current_dir(root())
        .args(args)
        .env("RUST_LOG", "warn")
        .env("RAWRXD_LUA_PATH", root().join("lib-lua"));
    c
}

fn ok(mut c: Command) -> String {
    let out = c.output().expect("rawrxd runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{c:?} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn phase1(model: &Path, db: &Path, dir: &Path, variants: &str, hybrid: &str) {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rawrxd-phase1-cache");
    let curve = dir.join("phase1_curve");
    ok(rawrxd(&[
        "scripts/phase1_sweep.lua",
        "--model",
        &s(model),
        "--backend",
        "cpu",
        "--variants",
        variants,
        "--hybrid",
        hybrid,
        "--prompt",
        "8",
        "--gen",
        "4",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--ctx",
        "32",
        "--ppl-chunks",
        "1",
        "--threads",
        "2",
        "--quiet",
        "--db",
        &s(db),
        "--out",
        &s(&curve),
        "--cache",
        &s(&cache),
    ]));
}

/// A soak run and a fault-injection run as the soak and fault runners store them.
fn soak_and_faults(db: &Path) -> (RunId, RunId) {
    let store = Store::open(db).unwrap();
    let soak = store.begin_run(RunInfo::new("soak", "soak")).unwrap();
    let t0 = 1_700_000_000.0;
    for i in 0..20 {
        let t = t0 + f64::from(i) * 360.0; // every 6 minutes, 2 hours in all
        store
            .record_series(soak, "vram_own_mb", t, 500.0 + 0.5 * f64::from(i))
            .unwrap();
        store
            .record_series(soak, "rss_mb", t, 300.0 + f64::from(i % 3))
            .unwrap();
        store
            .record_series(soak, "tokens_per_s", t, 40.0 + f64::from(i % 2))
            .unwrap();
    }
    for (kind, slope, lo, hi) in [("vram_own", 5.0, 4.5, 5.5), ("rss", 0.1, -0.4, 0.6)] {
        let tags: Tags = [("kind".to_string(), json!(kind))].into_iter().collect();
        store
            .record(soak, "leak_slope_mb_per_h", slope, "MB/h", &tags)
            .unwrap();
        store
            .record(soak, "leak_slope_ci95_lo", lo, "MB/h", &tags)
            .unwrap();
        store
            .record(soak, "leak_slope_ci95_hi", hi, "MB/h", &tags)
            .unwrap();
    }
    store.end_run(soak, RunStatus::Ok, None).unwrap();
    let faults = store.begin_run(RunInfo::new("faults", "faults")).unwrap();
    let none = Tags::new();
    store
        .record(faults, "requests_ok", 97.0, "count", &none)
        .unwrap();
    store
        .record(faults, "requests_lost", 3.0, "count", &none)
        .unwrap();
    store.record(faults, "loss_pct", 3.0, "%", &none).unwrap();
    store.end_run(faults, RunStatus::Ok, None).unwrap();
    (soak, faults)
}

/// The rows of the first Markdown table after `heading` (a line starting with it), as maps from
/// column header to cell.
fn table_after(doc: &str, heading: &str) -> Vec<HashMap<String, String>> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no '{heading}' in:\n{doc}"));
    let lines: Vec<&str> = doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(lines.len() >= 2, "no table after '{heading}'");
    let cells = |l: &str| -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect()
    };
    let head = cells(lines[0]);
    lines[2..]
        .iter()
        .map(|l| head.iter().cloned().zip(cells(l)).collect())
        .collect()
}

/// Asserts that a printed figure ("14.10", "14.10 ± 0.08") equals `want` to its printed precision;
/// the `±` part, when present, must equal `sd`.
fn same(cell: &str, want: f64, sd: Option<f64>, what: &str) {
    let mut parts = cell.split(" ± ");
    let check = |text: &str, v: f64| {
        let got: f64 = text
            .parse()
            .unwrap_or_else(|_| panic!("{what}: '{cell}' is not a number"));
        let decimals = text.split('.').nth(1).map_or(0, str::len);
        let tol = 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9;
        assert!(
            (got - v).abs() <= tol,
            "{what}: document says {text}, store has {v}"
        );
    };
    check(parts.next().unwrap(), want);
    match (parts.next(), sd) {
        (Some(t), Some(sd)) => check(t, sd),
        (None, None) => {}
        (got, want) => panic!("{what}: sd in document {got:?}, in store {want:?}"),
    }
}

/// Mean and sample sd (None for one sample) of the measurements named `name` matching `tags`.
fn stat(ms: &[Measurement], name: &str, tags: &[(&str, i64)]) -> Option<(f64, Option<f64>)> {
    let xs: Vec<f64> = ms
        .iter()
        .filter(|m| m.name == name)
        .filter(|m| tags.iter().all(|(k, v)| m.tags.get(*k) == Some(&json!(v))))
        .map(|m| m.value)
        .collect();
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.len() > 1)
        .then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Some((mean, sd))
}

fn check_png(path: &Path) {
    let file = BufReader::new(File::open(path).unwrap_or_else(|e| panic!("{path:?}: {e}")));
    let mut reader = png::Decoder::new(file).read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png data");
    assert!(info.width >= 240 && info.height >= 240, "{path:?}");
}

/// Tags nest, attribute quotes balance, one `<svg>` root.
fn check_svg(path: &Path) {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = svg.trim();
    assert!(
        rest.starts_with("<svg"),
        "{path:?} does not start with <svg"
    );
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        assert_eq!(tag.matches('"').count() % 2, 0, "{path:?}: quotes in {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "{path:?}: </{name}>");
        } else if !tag.starts_with('?') && !tag.starts_with('!') {
            let name = tag.split_whitespace().next().unwrap().trim_end_matches('/');
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(
        stack.is_empty() && roots == 1,
        "{path:?}: {stack:?}, {roots} roots"
    );
}

const DOCS: [&str; 6] = [
    "EXECUTIVE_SUMMARY.md",
    "BENCHMARK_VISUAL_SUMMARY.txt",
    "QUANT_VARIANTS_REPORT.md",
    "PERFORMANCE_SLA_SPECIFICATION.md",
    "PERFORMANCE_TRADE_OFF_ANALYSIS.md",
    "REGRESSION.md",
];

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every `](x.png)` / `](x.svg)` link of a document resolves to a file in `dir`.
fn linked_plots(dir: &Path, doc: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for part in doc.split("](").skip(1) {
        let target = &part[..part.find(')').unwrap()];
        if target.ends_with(".png") || target.ends_with(".svg") {
            let p = dir.join(target);
            assert!(p.is_file(), "linked plot {target} is missing");
            out.push(p);
        }
    }
    out
}

#[test]
fn phase3_documents_match_the_store() {
    let Some(model) = test_model() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("r.sqlite");
    phase1(
        &model,
        &db,
        tmp.path(),
        "q8_0",
        "schemes/hybrid_example.lua",
    );
    ok(rawrxd(&[
        "scripts/phase2_concurrency.lua",
        "--model",
        &s(&model),
        "--backend",
        "cpu",
        "--streams",
        "1,2",
        "--requests",
        "4",
        "--max-tokens",
        "4",
        "--threads",
        "2",
        "--no-plot",
        "--db",
        &s(&db),
    ]));
    let (soak, faults) = soak_and_faults(&db);
    // A second Q8_0 run to compare with the first.
    phase1(&model, &db, tmp.path(), "q8_0", "none");

    let store = Store::open(&db).unwrap();
    let mut runs = store.list_runs(&RunFilter::default()).unwrap();
    runs.reverse();
    let q8: Vec<RunId> = runs
        .iter()
        .filter(|r| r.name == "Q8_0")
        .map(|r| r.id)
        .collect();
    assert_eq!(q8.len(), 2);
    let baseline = q8[0].to_string();

    let out = tmp.path().join("docs");
    let listed = ok(rawrxd(&[
        "report",
        "--db",
        &s(&db),
        "--out",
        &s(&out),
        "--baseline",
        &baseline,
    ]));
    for name in DOCS {
        assert!(listed.contains(name), "{name} not listed:\n{listed}");
        assert!(out.join(name).is_file(), "{name} missing");
    }
    for stem in [
        "performance_curve",
        "latency_vs_concurrency",
        "throughput_vs_concurrency",
        &format!("soak_run{soak}_vram_own_mb"),
        &format!("soak_run{soak}_rss_mb"),
    ] {
        check_png(&out.join(format!("{stem}.png")));
        check_svg(&out.join(format!("{stem}.svg")));
    }

    // Provenance in every document.
    let commit = &runs[0].git_commit;
    for name in DOCS {
        let doc = read(&out, name);
        assert!(doc.contains(commit.as_str()), "{name}: no commit {commit}");
        assert!(doc.contains("cpu (2 threads)"), "{name}: no device");
    }
    let summary = read(&out, "EXECUTIVE_SUMMARY.md");
    let plots = linked_plots(&out, &summary);
    assert!(plots.iter().any(|p| p.ends_with("performance_curve.png")));
    assert!(plots
        .iter()
        .any(|p| p.ends_with("latency_vs_concurrency.png")));

    // The variant matrix: the newest run of each variant, every figure equal to the store's.
    let variants = read(&out, "QUANT_VARIANTS_REPORT.md");
    let rows = table_after(&variants, "## Variant matrix");
    let names: Vec<&str> = rows.iter().map(|r| r["variant"].as_str()).collect();
    assert_eq!(names, ["hybrid_example", "Q8_0"]);
    assert_eq!(rows[0]["kind"], "hybrid");
    assert_eq!(rows[1]["kind"], "standard");
    assert_eq!(rows[1]["run"], q8[1].to_string());
    for row in &rows {
        let id: RunId = row["run"].parse().unwrap();
        let ms = store.measurements(id).unwrap();
        for (col, name, with_sd) in [
            ("file MiB", "file_mib", false),
            ("bpw", "bpw", false),
            ("prefill tok/s", "pp_tps", true),
            ("decode tok/s", "tg_tps", true),
            ("ms/token P50", "ms_p50", false),
            ("ms/token P95", "ms_p95", false),
            ("ms/token P99", "ms_p99", false),
            ("VRAM MiB", "vram_mib", false),
            ("bandwidth GB/s", "bandwidth_gbs", false),
            ("PPL", "ppl", false),
            ("KLD (nats)", "kld", false),
            ("same top %", "same_top_pct", false),
        ] {
            let (mean, sd) = stat(&ms, name, &[]).unwrap_or_else(|| panic!("{name} not stored"));
            same(&row[col], mean, if with_sd { sd } else { None }, col);
        }
        // Not measured on the CPU: the device's peak bandwidth is unknown.
        assert_eq!(row["% of peak BW"], "not measured");
    }

    // Concurrency: the executive summary's table and the SLA's measured column.
    let p2 = runs.iter().find(|r| r.phase == "phase2").unwrap().id;
    let ms = store.measurements(p2).unwrap();
    let rows = table_after(&summary, "## Concurrency");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let n: i64 = row["streams"].parse().unwrap();
        for (col, name) in [
            ("TTFT P50", "phase2.ttft_p50"),
            ("TTFT P95", "phase2.ttft_p95"),
            ("TTFT P99", "phase2.ttft_p99"),
            ("ITL P50", "phase2.itl_p50"),
            ("ITL P95", "phase2.itl_p95"),
            ("ITL P99", "phase2.itl_p99"),
            ("aggregate tok/s", "phase2.output_tps"),
            ("scaling efficiency", "phase2.scaling_efficiency"),
        ] {
            let (v, _) = stat(&ms, name, &[("streams", n)]).unwrap();
            same(&row[col], v, None, &format!("{col} at {n} streams"));
        }
    }
    let sla = read(&out, "PERFORMANCE_SLA_SPECIFICATION.md");
    let margin = 0.20;
    for row in table_after(&sla, "## Per concurrency level") {
        let Some(n) = row["scope"]
            .split(' ')
            .next()
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        let name = match row["metric"].as_str() {
            "ITL P50" => "phase2.itl_p50",
            "ITL P95" => "phase2.itl_p95",
            "ITL P99" => "phase2.itl_p99",
            "TTFT P95" => "phase2.ttft_p95",
            _ => continue,
        };
        let (v, _) = stat(&ms, name, &[("streams", n)]).unwrap();
        same(&row["measured"], v, None, name);
        same(&row["SLA (committed)"], v * (1.0 + margin), None, name);
        let target: f64 = row["target"].trim_start_matches("≤ ").parse().unwrap();
        let pass = v * (1.0 + margin) <= target;
        assert_eq!(
            row["verdict"],
            if pass { "PASS" } else { "FAIL" },
            "{row:?}"
        );
    }
    for row in table_after(&sla, "## Single stream") {
        let id = runs
            .iter()
            .rev()
            .find(|r| r.phase == "phase1" && r.name == row["scope"])
            .unwrap()
            .id;
        let name = match row["metric"].as_str() {
            "decode tokens/s" => "tg_tps",
            "decode ms/token P95" => "ms_p95",
            _ => "ms_p99",
        };
        let (v, _) = stat(&store.measurements(id).unwrap(), name, &[]).unwrap();
        same(&row["measured"], v, None, name);
    }

    // Soak and faults, when present.
    let rows = table_after(&summary, &format!("Soak run {soak}"));
    let kinds: Vec<&str> = rows.iter().map(|r| r["memory"].as_str()).collect();
    assert_eq!(kinds, ["rss", "vram_own"]);
    same(&rows[1]["leak slope MB/h"], 5.0, None, "slope");
    same(&rows[1]["95 % CI high"], 5.5, None, "ci");
    assert!(summary.contains(&format!("soak run {soak} over 1.90 h, 0 crashes")));
    assert!(summary.contains(&format!("3.00 % of requests lost (run {faults})")));
    assert!(summary.contains(&format!("](soak_run{soak}_vram_own_mb.png)")));
    // vram_own drifts 5.5 MB/h (upper bound) × 1.9 h = 10.45 MB ≤ 50 MB: pass.
    let soak_rows = table_after(&sla, "## Stability");
    let vram = soak_rows
        .iter()
        .find(|r| r["metric"].starts_with("vram_own"))
        .unwrap();
    same(&vram["measured"], 5.5 * 1.9, None, "drift");
    assert_eq!(vram["verdict"], "PASS");

    // The decision tree is derived from the data.
    let tradeoff = read(&out, "PERFORMANCE_TRADE_OFF_ANALYSIS.md");
    let store_q8 = stat(&store.measurements(q8[1]).unwrap(), "kld", &[])
        .unwrap()
        .0;
    let hyb = runs.iter().find(|r| r.name == "hybrid_example").unwrap().id;
    let store_h = stat(&store.measurements(hyb).unwrap(), "kld", &[])
        .unwrap()
        .0;
    let best = if store_q8 <= store_h {
        "Q8_0"
    } else {
        "hybrid_example"
    };
    assert!(
        tradeoff.contains(&format!("└─ variant: {best}  (best KLD")),
        "{tradeoff}"
    );
    for use_case in [
        "Latency-critical",
        "Throughput",
        "Memory-constrained",
        "Quality-critical",
    ] {
        assert!(tradeoff.contains(use_case));
    }

    // Regression: the newest Q8_0 run against the first.
    let regression = read(&out, "REGRESSION.md");
    let rows = table_after(&regression, "## Summary");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["baseline"], baseline);
    assert_eq!(rows[0]["run"], q8[1].to_string());
    assert!(regression.contains(&format!("## Run {} against baseline {baseline}", q8[1])));
    assert!(regression.contains("tg_tps"));

    let visual = read(&out, "BENCHMARK_VISUAL_SUMMARY.txt");
    assert!(visual.contains("Decode throughput by variant"));
    assert!(visual.contains('█'));

    // scripts/phase3_docs.lua runs the same templates.
    let out2 = tmp.path().join("docs2");
    ok(rawrxd(&[
        "scripts/phase3_docs.lua",
        "--db",
        &s(&db),
        "--out",
        &s(&out2),
        "--baseline",
        &baseline,
    ]));
    let strip = |t: String| -> String {
        t.lines()
            .filter(|l| !l.starts_with("- Generated by"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for name in [
        "QUANT_VARIANTS_REPORT.md",
        "EXECUTIVE_SUMMARY.md",
        "REGRESSION.md",
    ] {
        assert_eq!(strip(read(&out, name)), strip(read(&out2, name)), "{name}");
    }

    // Only the first Q8_0 run: everything else is "not measured", and no concurrency plot.
    let out3 = tmp.path().join("docs3");
    ok(rawrxd(&[
        "report",
        "--db",
        &s(&db),
        "--runs",
        &baseline,
        "--out",
        &s(&out3),
    ]));
    let lone = read(&out3, "EXECUTIVE_SUMMARY.md");
    for line in [
        "- Concurrency: not measured.",
        "- Stability (soak): not measured.",
        "- Fault injection: not measured.",
    ] {
        assert!(lone.contains(line), "no '{line}' in:\n{lone}");
    }
    assert!(!out3.join("latency_vs_concurrency.png").exists());
    assert!(read(&out3, "REGRESSION.md").contains("No baseline given"));
}

/// A Phase 1 run as scripts/phase1_sweep.lua records it (the figures that matter here).
fn variant_run(store: &Store, name: &str, tg: f64, p95: f64, vram: f64, kld: f64) -> RunId {
    let mut info = RunInfo::new("phase1", name);
    info.variant = Some(name.to_string());
    info.device = Some("test device".to_string());
    info.driver = Some("test driver 1.0".to_string());
    let run = store.begin_run(info).unwrap();
    let none = Tags::new();
    for (i, x) in [tg - 1.0, tg + 1.0].into_iter().enumerate() {
        let tags: Tags = [("rep".to_string(), json!(i + 1))].into_iter().collect();
        store.record(run, "tg_tps", x, "tok/s", &tags).unwrap();
        store
            .record(run, "pp_tps", 10.0 * x, "tok/s", &tags)
            .unwrap();
    }
    store.record(run, "ms_p50", p95 * 0.9, "ms", &none).unwrap();
    store.record(run, "ms_p95", p95, "ms", &none).unwrap();
    store.record(run, "ms_p99", p95 * 1.1, "ms", &none).unwrap();
    store.record(run, "vram_mib", vram, "MiB", &none).unwrap();
    store.record(run, "kld", kld, "nats", &none).unwrap();
    store.end_run(run, RunStatus::Ok, None).unwrap();
    run
}

/// The decision tree and the SLA verdicts follow the data and the targets file: each use case
/// picks a different variant here, and changing the numbers changes the picks.
#[test]
fn decisions_and_verdicts_are_derived_from_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("r.sqlite");
    // Nothing stored yet: every document still comes out, saying "not measured".
    let empty = tmp.path().join("empty");
    ok(rawrxd(&["report", "--db", &s(&db), "--out", &s(&empty)]));
    for name in DOCS {
        assert!(read(&empty, name).contains("not measured"), "{name}");
    }

    let store = Store::open(&db).unwrap();
    variant_run(&store, "FAST", 100.0, 12.0, 5000.0, 0.05);
    variant_run(&store, "PRECISE", 80.0, 10.0, 4000.0, 0.01);
    variant_run(&store, "SMALL", 60.0, 20.0, 2500.0, 0.2);
    let broken = store.begin_run(RunInfo::new("phase1", "BROKEN")).unwrap();
    store
        .end_run(
            broken,
            RunStatus::Failed,
            Some("out of device memory in vkAllocateMemory"),
        )
        .unwrap();
    let targets = tmp.path().join("targets.lua");
    std::fs::write(&targets, "return { margin = 0.1, decode_tps = 70 }\n").unwrap();
    let out = tmp.path().join("docs");
    ok(rawrxd(&[
        "report",
        "--db",
        &s(&db),
        "--targets",
        &s(&targets),
        "--out",
        &s(&out),
    ]));

    let tree = read(&out, "PERFORMANCE_TRADE_OFF_ANALYSIS.md");
    for line in [
        "│   ├─ variant: PRECISE  (lowest P95 ms/token: 10.00 ms)",
        "│   ├─ variant: FAST  (highest decode: 100.00 tok/s)",
        // PRECISE is the best quality that fits any budget from its own 4000 MiB up.
        "│   ├─ VRAM budget ≥ 4000.0 MiB → PRECISE  (KLD (nats) 0.01000)",
        "│   ├─ VRAM budget ≥ 2500.0 MiB → SMALL  (KLD (nats) 0.20000)",
        "│   └─ VRAM budget < 2500.0 MiB → no measured variant fits",
        "    └─ variant: PRECISE  (best KLD (nats) 0.01000)",
        "**Sweet spot: FAST**",
    ] {
        assert!(tree.contains(line), "no '{line}' in:\n{tree}");
    }
    assert!(tree.contains("test driver 1.0"));

    let sla = read(&out, "PERFORMANCE_SLA_SPECIFICATION.md");
    let rows = table_after(&sla, "## Single stream");
    let verdict = |scope: &str| {
        &rows
            .iter()
            .find(|r| r["scope"] == scope && r["metric"] == "decode tokens/s")
            .unwrap_or_else(|| panic!("no {scope} row"))["verdict"]
    };
    // 100 × 0.9 = 90 and 80 × 0.9 = 72 meet 70 tok/s; 60 × 0.9 = 54 does not.
    assert_eq!(verdict("FAST"), "PASS");
    assert_eq!(verdict("PRECISE"), "PASS");
    assert_eq!(verdict("SMALL"), "FAIL");
    assert_eq!(verdict("BROKEN"), "NOT MEASURED");
    let variants = read(&out, "QUANT_VARIANTS_REPORT.md");
    assert!(variants.contains("- **BROKEN** (run 4): failed — out of device memory"));
}
