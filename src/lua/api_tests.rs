//! Tests of the Lua API modules (model, engine handle, bench, probe) and of lib-lua's helpers.
//! Whole flows with the real engines live in tests/lua_api.rs.

use std::path::{Path, PathBuf};

use super::*;
use crate::engine::{Engine, MemoryUsage};
use crate::model::LlamaHParams;
use crate::Error;

/// A host for a script in a fresh directory; returns (dir, host).
fn host(text: &str) -> (tempfile::TempDir, PathBuf, Host) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.lua");
    std::fs::write(&path, text).unwrap();
    let h = Host::new(&path, &[]).unwrap();
    (dir, path, h)
}

/// Evaluates `code` in a fresh host (lib-lua on the path).
fn eval<T: mlua::FromLuaMulti>(code: &str) -> T {
    let (_d, _p, h) = host("return 0");
    h.lua().load(code).eval().unwrap()
}

fn eval_err(code: &str) -> String {
    let (_d, _p, h) = host("return 0");
    let e = h
        .lua()
        .load(code)
        .set_name("@snippet.lua")
        .exec()
        .unwrap_err();
    describe(&e)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn stats_match_numpy() {
    // Oracle: numpy 2.4 — mean, std(ddof=1), percentile(..., method="linear").
    let got: Vec<f64> = eval(
        r#"
        local s = require "stats"
        local xs = { 3.1, 4.1, 5.9, 2.6, 5.3, 5.8, 9.7, 9.3 }
        local p = s.percentiles(xs, { 0, 25, 50, 95, 99, 100 })
        return { s.mean(xs), s.sd(xs), p[0], p[25], p[50], p[95], p[99], p[100],
                 s.median(xs), s.percentile({ 7 }, 50), s.sd({ 7 }), s.min(xs), s.max(xs) }
        "#,
    );
    let want = [
        5.725,
        2.621204739373536,
        2.6,
        3.8499999999999996,
        5.55,
        9.559999999999999,
        9.671999999999999,
        9.7,
        5.55,
        7.0,
        0.0,
        2.6,
        9.7,
    ];
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(close(*g, w), "value {i}: {g} vs {w}");
    }
    // The same conventions as the Rust bench summary.
    let xs = [3.1, 4.1, 5.9, 2.6, 5.3, 5.8, 9.7, 9.3];
    let s = crate::engine::bench::Summary::of(xs.to_vec());
    assert!(close(s.sd, 2.621204739373536));
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    assert!(close(
        crate::engine::bench::percentile(&sorted, 0.95),
        9.559999999999999
    ));
    let empty: (Option<f64>, Option<f64>, Option<f64>) =
        eval("local s = require 'stats'; return s.mean({}), s.sd({}), s.percentile({}, 50)");
    assert_eq!(empty, (None, None, None));
    let e = eval_err("require('stats').mean({ 1, 'x' })");
    assert!(
        e.contains("snippet.lua:1:") && e.contains("element 2"),
        "{e}"
    );
}

#[test]
fn fmt_aligns_text_and_writes_markdown() {
    let (text, md): (String, String) = eval(
        r#"
        local fmt = require "fmt"
        local spec = { columns = { "variant", { name = "tg t/s", key = "tg", decimals = 1 },
                                   { name = "ms p95", key = "p95", format = "%.3f" }, "note" },
                       rows = { { variant = "Q4_K_M", tg = 41.25, p95 = 24.5, note = "a|b" },
                                { variant = "Q8_0", tg = 7, p95 = 0 / 0 } } }
        return fmt.text(spec), fmt.markdown(spec)
        "#,
    );
    assert_eq!(
        text,
        "variant  tg t/s  ms p95  note\n\
         -------  ------  ------  ----\n\
         Q4_K_M     41.2  24.500  a|b\n\
         Q8_0        7.0       -  -\n"
    );
    assert_eq!(
        md,
        "| variant | tg t/s | ms p95 | note |\n\
         | --- | ---: | ---: | --- |\n\
         | Q4_K_M | 41.2 | 24.500 | a\\|b |\n\
         | Q8_0 | 7.0 | - | - |\n"
    );
    let cells: Vec<String> = eval(
        r#"local f = require "fmt"
           return { f.pm(41.234, 0.56), f.pm(3, nil, 1), f.bytes(1536), f.bytes(97517568),
                    f.bytes(12), f.pct(0.4512), f.num(nil), f.num(7), f.mib(1048576 * 3) }"#,
    );
    assert_eq!(
        cells,
        [
            "41.23 ± 0.56",
            "3.0",
            "1.5 KiB",
            "93.0 MiB",
            "12 B",
            "45.1 %",
            "-",
            "7",
            "3.0"
        ]
    );
}

#[test]
fn phase_expands_variant_flags() {
    let run = |args: &[&str]| -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.lua");
        std::fs::write(
            &path,
            r#"
            local rx = require "rawrxd"
            local phase = require "phase"
            local out = {}
            for _, v in ipairs(phase.variants(rx.args, { "q2_k", "q4_k_m",
                                                        hybrid = "schemes/h.lua" })) do
              out[#out + 1] = table.concat({ v.name, v.kind, v.variant or v.scheme, v.backend,
                                             tostring(v.device), tostring(v.synth) }, ":")
            end
            result = table.concat(out, " ")
            "#,
        )
        .unwrap();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let h = Host::new(&path, &args).unwrap();
        match h.run() {
            Ok(_) => h.lua().load("return result").eval().unwrap(),
            Err(Error::Script(m)) => format!("error: {m}"),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(
        run(&[]),
        "Q2_K:mix:q2_k:auto:nil:nil Q4_K_M:mix:q4_k_m:auto:nil:nil h:scheme:schemes/h.lua:auto:nil:nil"
    );
    assert_eq!(
        run(&[
            "--variants",
            "Q8_0,q6_k",
            "--hybrid",
            "none",
            "--backend",
            "cpu",
            "--device",
            "1"
        ]),
        "Q8_0:mix:q8_0:cpu:1:nil Q6_K:mix:q6_k:cpu:1:nil"
    );
    assert_eq!(
        run(&[
            "--variants",
            "none",
            "--hybrid",
            "a.lua",
            "--hybrid",
            "b/c.lua",
            "--synth",
            "llama-7b"
        ]),
        "a:scheme:a.lua:auto:nil:llama-7b c:scheme:b/c.lua:auto:nil:llama-7b"
    );
    let e = run(&["--backend", "metal"]);
    assert!(e.contains("plan.lua:5:") && e.contains("--backend"), "{e}");
    let e = run(&["--variants", "q4_k_m,q4_k_m"]);
    assert!(e.contains("listed twice"), "{e}");
    let e = run(&["--variants"]);
    assert!(
        e.contains("--variants: expected a comma-separated list"),
        "{e}"
    );

    let o: (i64, i64, String, bool) = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.lua");
        std::fs::write(
            &path,
            r#"local rx = require "rawrxd"
               local o = require("phase").options(rx.args,
                 { prompt = 512, ppl_chunks = 4, text = "data/eval.txt", quiet = false })
               return o.prompt * 1000 + o.ppl_chunks, o.ppl_chunks, o.text, o.quiet"#,
        )
        .unwrap();
        let args: Vec<String> = ["--prompt", "32", "--ppl-chunks", "2", "--quiet"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let h = Host::new(&path, &args).unwrap();
        h.lua()
            .load(std::fs::read_to_string(&path).unwrap())
            .eval()
            .unwrap()
    };
    assert_eq!(o, (32002, 2, "data/eval.txt".into(), true));
}

/// A deterministic stand-in engine: logits are a function of the token; it records swaps.
struct FakeEngine {
    hp: LlamaHParams,
    swaps: Vec<(String, crate::quant::GgmlType, usize)>,
    forwards: usize,
}

fn fake_hparams() -> LlamaHParams {
    let f = crate::gguf::GgufFile::open(test_model()).unwrap();
    LlamaHParams::from_gguf(&f).unwrap()
}

/// The test model (required; see COMMON.md).
pub(crate) fn test_model() -> PathBuf {
    if let Some(p) = std::env::var_os("RAWRXD_TEST_MODEL") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.is_file() || std::env::var_os("RAWRXD_ALLOW_MISSING_MODEL").is_some(),
        "test model missing: {} (run scripts/setup.sh)",
        p.display()
    );
    p
}

impl Engine for FakeEngine {
    fn backend(&self) -> &'static str {
        "fake"
    }
    fn hparams(&self) -> &LlamaHParams {
        &self.hp
    }
    fn n_ctx(&self) -> usize {
        64
    }
    fn forward(&mut self, tokens: &[u32], _pos: usize, _all: bool) -> crate::Result<Vec<f32>> {
        self.forwards += tokens.len();
        Ok(vec![0.0; self.hp.n_vocab])
    }
    fn reset(&mut self) {}
    fn memory(&self) -> MemoryUsage {
        MemoryUsage {
            weights: 1000,
            kv_cache: 200,
            scratch: 30,
            on_device: false,
        }
    }
    fn decode_weight_bytes(&self) -> u64 {
        1_000_000
    }
    fn peak_bandwidth(&self) -> Option<f64> {
        Some(1e12)
    }
    fn can_replace_tensors(&self) -> bool {
        true
    }
    fn replace_tensor(
        &mut self,
        name: &str,
        ty: crate::quant::GgmlType,
        bytes: &[u8],
    ) -> crate::Result<()> {
        self.swaps.push((name.to_string(), ty, bytes.len()));
        Ok(())
    }
}

fn fake_engine(h: &Host) -> engine::EngineHandle {
    let model = test_model();
    let source = std::sync::Arc::new(crate::gguf::GgufFile::open(&model).unwrap());
    let types = source
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), t.ty))
        .collect();
    engine::EngineHandle::new(
        h.lua(),
        Box::new(FakeEngine {
            hp: fake_hparams(),
            swaps: Vec::new(),
            forwards: 0,
        }),
        engine::EngineInfo {
            model: model.clone(),
            file: model,
            variant: "fake".into(),
            scheme: None,
            backend: "fake".into(),
            device: "nowhere".into(),
            n_ctx: 64,
            threads: None,
        },
        source,
        types,
        None,
    )
}

#[test]
fn bench_runs_on_an_engine_and_applies_swaps_at_safe_points() {
    let (_d, _p, h) = host("return 0");
    let eng = fake_engine(&h);
    h.lua().globals().set("eng", eng.clone()).unwrap();
    // A swap queued before the bench is applied before its first repetition.
    engine::EngineHandle::queue(
        &eng.0,
        engine::PendingSwap {
            source: "test".into(),
            tensors: vec![engine::TensorSwap {
                name: "blk.0.attn_q.weight".into(),
                from: crate::quant::GgmlType::Q4_1,
                to: crate::quant::GgmlType::Q8_0,
                bytes: vec![0; 34],
            }],
            quantize_s: 0.0,
        },
    );
    let r: mlua::Table = h
        .lua()
        .load(
            r#"local rx = require "rawrxd"
               return rx.bench.run(eng, { prompt = 8, gen = 4, repeats = 3, warmup = 1,
                                          progress = false })"#,
        )
        .eval()
        .unwrap();
    assert_eq!(r.get::<usize>("prompt").unwrap(), 8);
    let tg: mlua::Table = r.get("tg").unwrap();
    assert_eq!(tg.get::<Vec<f64>>("samples").unwrap().len(), 3);
    assert_eq!(r.get::<Vec<f64>>("token_ms").unwrap().len(), 12);
    let tg_tps: f64 = r.get("tg_tps").unwrap();
    let bw: f64 = r.get("bandwidth").unwrap();
    assert!((bw - tg_tps * 1e6).abs() <= 1e-6 * bw);
    let pct: f64 = r.get("peak_pct").unwrap();
    assert!((pct - bw / 1e12 * 100.0).abs() < 1e-9);
    let vram: mlua::Table = r.get("vram").unwrap();
    assert_eq!(vram.get::<u64>("total").unwrap(), 1230);
    let types: String = h
        .lua()
        .load("return eng:types()['blk.0.attn_q.weight']")
        .eval()
        .unwrap();
    assert_eq!(types, "q8_0");
    // Absent values are nil, not a (truthy) null userdata.
    let absent: bool = h
        .lua()
        .load("local i = eng:info() return i.scheme == nil and i.threads == nil and i.loaded")
        .eval()
        .unwrap();
    assert!(absent);
    // Bad options name the option.
    let e = h
        .lua()
        .load("require('rawrxd').bench.run(eng, { promt = 3 })")
        .set_name("@b.lua")
        .exec()
        .unwrap_err();
    let msg = describe(&e);
    assert!(
        msg.starts_with("b.lua:1:") && msg.contains("unknown option 'promt'"),
        "{msg}"
    );
    // probe.vram sees the engine; after unload, calls say so and the probe sum drops it.
    let (one, all): (u64, u64) = h
        .lua()
        .load("local p = require('rawrxd').probe return p.vram(eng).total, p.vram().total")
        .eval()
        .unwrap();
    assert_eq!((one, all), (1230, 1230));
    let unloaded: bool = h.lua().load("return eng:unload()").eval().unwrap();
    assert!(unloaded);
    let e = h
        .lua()
        .load("eng:memory()")
        .set_name("@c.lua")
        .exec()
        .unwrap_err();
    assert!(describe(&e).contains("was unloaded"), "{}", describe(&e));
    let all: u64 = h
        .lua()
        .load("return require('rawrxd').probe.vram().total")
        .eval()
        .unwrap();
    assert_eq!(all, 0);
}

#[test]
fn probes_report_this_process() {
    let (rss, total, cores): (u64, u64, usize) = eval(
        r#"local p = require("rawrxd").probe
           local m = p.memory()
           local c = p.cpu()
           assert(type(p.gpu()) == "table")
           return p.rss(), m.total, c.cores"#,
    );
    // This test process has mapped its code and heap: more than a megabyte, less than the machine.
    assert!(rss > 1 << 20 && rss < total, "rss {rss} total {total}");
    assert!(cores >= 1);
}

#[test]
fn model_info_matches_the_file() {
    let path = test_model();
    let (_d, _p, h) = host("return 0");
    h.lua()
        .globals()
        .set("path", path.to_string_lossy().into_owned())
        .unwrap();
    let info: mlua::Table = h
        .lua()
        .load("return require('rawrxd').model.open(path):info()")
        .eval()
        .unwrap();
    let f = crate::gguf::GgufFile::open(&path).unwrap();
    assert_eq!(info.get::<String>("arch").unwrap(), "llama");
    assert_eq!(info.get::<u64>("file_size").unwrap(), f.file_size());
    assert_eq!(info.get::<usize>("n_tensors").unwrap(), f.tensors().len());
    assert!((info.get::<f64>("bpw").unwrap() - f.bits_per_weight()).abs() < 1e-12);
    let hp: mlua::Table = info.get("hparams").unwrap();
    assert_eq!(hp.get::<usize>("n_layer").unwrap(), 30);
    assert_eq!(hp.get::<usize>("n_embd").unwrap(), 576);
    let types: mlua::Table = info.get("types").unwrap();
    let mut count = 0;
    for pair in types.pairs::<String, mlua::Table>() {
        count += pair.unwrap().1.get::<usize>("count").unwrap();
    }
    assert_eq!(count, f.tensors().len());
    let e = h
        .lua()
        .load("require('rawrxd').model.open('/nonexistent.gguf')")
        .set_name("@m.lua")
        .exec()
        .unwrap_err();
    let msg = describe(&e);
    assert!(
        msg.starts_with("m.lua:1:") && msg.contains("/nonexistent.gguf"),
        "{msg}"
    );
}

#[test]
fn default_model_is_found_from_the_source_tree() {
    // The test model is the default model; with no $RAWRXD_MODEL it is found under the crate.
    let p = model::default_model().unwrap();
    let want = match std::env::var_os(model::MODEL_ENV) {
        Some(m) => PathBuf::from(m),
        None => test_model(),
    };
    assert_eq!(p.canonicalize().unwrap(), want.canonicalize().unwrap());
}

#[test]
fn option_tables_are_checked_and_errors_read_in_one_line() {
    let e = eval_err("require('rawrxd').engine.load { ctxx = 1 }");
    assert!(
        e.starts_with("snippet.lua:1:") && e.contains("unknown option 'ctxx'"),
        "{e}"
    );
    let e = eval_err("require('rawrxd').engine.load { backend = 'metal' }");
    assert!(
        e.contains("option 'backend': unknown backend 'metal'"),
        "{e}"
    );
    let e = eval_err("require('rawrxd').engine.load { ctx = 0 }");
    assert!(
        e.contains("option 'ctx': expected a whole number ≥ 1, got 0"),
        "{e}"
    );
    let e = eval_err("require('rawrxd').engine.load { variant = 'q4_k_m', scheme = 'x.lua' }");
    assert!(e.contains("not both"), "{e}");
    let msg: String = eval(
        r#"local rx = require "rawrxd"
           local ok, e = pcall(rx.time.sleep, -1)
           assert(not ok)
           return rx.error_message(e)"#,
    );
    assert!(
        msg.ends_with("rawrxd.time.sleep: expected a non-negative number of seconds, got -1")
            && !msg.contains("traceback"),
        "{msg}"
    );
    let msg: String =
        eval("local ok, e = pcall(error, 'plain') return require('rawrxd').error_message(e)");
    assert_eq!(msg, "plain");
}

#[test]
fn data_file_hooks_bump_the_generation_or_report_their_error() {
    use std::sync::{Arc, Mutex};
    let (dir, _path, h) = host(
        "local rx = require 'rawrxd'\n\
         rx.on_reload(function(info) files = table.concat(info.files, ',') end)\n",
    );
    h.run().unwrap();
    let data = dir.path().join("s.lua");
    std::fs::write(&data, "a").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    reload::watch_data(
        h.lua(),
        &data,
        Box::new(move |p| {
            let c = std::fs::read_to_string(p).unwrap();
            log.lock().unwrap().push(c.clone());
            match c.as_str() {
                "bad" => reload::DataOutcome::Failed("s.lua:1: bad".into()),
                "gone" => reload::DataOutcome::Gone,
                _ => reload::DataOutcome::Applied(format!("applied {c}")),
            }
        }),
    );
    // Unchanged content is not a change.
    assert_eq!(h.reload_now(&[&data]).unwrap(), None);
    std::fs::write(&data, "b").unwrap();
    assert_eq!(h.reload_now(&[&data]).unwrap(), Some(1));
    let files: String = h.lua().load("return files").eval().unwrap();
    assert!(files.ends_with("s.lua"), "{files}");
    std::fs::write(&data, "bad").unwrap();
    assert_eq!(h.reload_now(&[&data]).unwrap(), None);
    assert_eq!(h.generation(), 1);
    assert_eq!(h.last_reload_error().as_deref(), Some("s.lua:1: bad"));
    // A hook whose owner is gone is dropped: later edits reach nobody.
    std::fs::write(&data, "gone").unwrap();
    assert_eq!(h.reload_now(&[&data]).unwrap(), None);
    std::fs::write(&data, "c").unwrap();
    assert_eq!(h.reload_now(&[&data]).unwrap(), None);
    assert_eq!(*seen.lock().unwrap(), ["b", "bad", "gone"]);
    assert_eq!(h.generation(), 1);
}

#[test]
fn report_draws_the_curve_and_plots() {
    let (dir, _p, h) = host("return 0");
    let out = dir.path().join("plots/curve");
    h.lua()
        .globals()
        .set("out", out.to_string_lossy().into_owned())
        .unwrap();
    let (svg, png, svg2): (String, String, String) = h
        .lua()
        .load(
            r#"local r = require("rawrxd").report
               local c = r.curve { out = out, points = {
                 { variant = "Q4_K_M", vram_mib = 95.5, tg_tps = 41.2, ms_p95 = 25.1 },
                 { variant = "Q8_0", vram_mib = 140.2, tg_tps = 30.3, ms_p95 = 33.0 } } }
               local p = r.plot { out = out .. "_lines", title = "ttft", x = "streams", y = "ms",
                                  series = { { name = "p50", points = { { 1, 10 }, { 2, 12 } } },
                                             { name = "p95", points = { { x = 1, y = 20 },
                                                                        { x = 2, y = 30 } } } } }
               return c.svg, c.png, p.svg"#,
        )
        .eval()
        .unwrap();
    assert_eq!(svg, format!("{}.svg", out.display()));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg") && text.contains("Q4_K_M") && text.contains("Q8_0"));
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let lines = std::fs::read_to_string(&svg2).unwrap();
    assert!(lines.contains("p95") && lines.contains("ttft"));
    let e = eval_err(
        "require('rawrxd').report.curve { out = '/tmp/x', points = { { variant = 'a', tg_tps = 1, \
         ms_p95 = 2 } } }",
    );
    assert!(
        e.contains("point 1: field 'vram_mib': expected a number, got nil"),
        "{e}"
    );
}
