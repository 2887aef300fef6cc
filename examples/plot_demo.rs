//! Draws every plot kind of `rawrxd::report` from made-up numbers, and prints the terminal charts
//! and a table.
//!
//!     cargo run --example plot_demo -- /tmp/plots
//!
//! writes `/tmp/plots/<name>.svg` and `.png` for: the performance curve (bubbles), latency and
//! throughput against concurrency (lines, dashed reference), the curve at half size, a 48 h soak with its fitted leak line
//! (thousands of points), a labelled scatter on log-log axes, a single point and an empty plot.

use std::path::PathBuf;
use std::process::ExitCode;

use rawrxd::report::table::{Column, Table};
use rawrxd::report::{self, term, CurvePoint, PlotKind, PlotSpec, Series};

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: plot_demo <output directory>");
        return ExitCode::from(2);
    };
    match run(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plot_demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// (variant, VRAM MiB, decode tokens/s, p95 ms/token, perplexity)
const VARIANTS: [(&str, f64, f64, f64, f64); 7] = [
    ("Q2_K", 2780.0, 142.0, 8.1, 9.84),
    ("Q3_K_M", 3520.0, 128.5, 8.9, 7.21),
    ("Q4_K_M", 4370.0, 117.2, 9.6, 6.52),
    ("Q5_K_M", 5130.0, 104.8, 10.8, 6.31),
    ("Q6_K", 5940.0, 92.3, 12.2, 6.25),
    ("Q8_0", 7700.0, 74.1, 15.0, 6.22),
    ("hybrid", 4650.0, 112.0, 9.9, 6.36),
];

fn run(dir: &std::path::Path) -> rawrxd::Result<()> {
    println!("font: {}", report::font::ensure_font()?);
    let mut written = Vec::new();

    let curve: Vec<CurvePoint> = VARIANTS
        .iter()
        .map(|v| CurvePoint {
            variant: v.0.to_string(),
            vram_mib: v.1,
            tg_tps: v.2,
            ms_p95: v.3,
        })
        .collect();
    written.push(report::performance_curve(
        &curve,
        &dir.join("performance_curve"),
    )?);
    // Everything scales with the image: half size for a thumbnail.
    let mut small = report::curves::performance_curve_spec(&curve);
    (small.width, small.height) = (480, 300);
    written.push(report::write_plot(
        &small,
        &dir.join("performance_curve_small"),
    )?);

    let latency = [
        (1, 21.0, 24.5, 27.0),
        (2, 22.4, 27.1, 31.5),
        (4, 25.9, 33.0, 39.8),
        (8, 33.5, 46.2, 58.7),
        (12, 44.1, 63.0, 84.9),
        (16, 57.8, 88.4, 121.3),
    ];
    written.push(report::latency_vs_concurrency(
        "inter-token latency",
        &latency,
        &dir.join("latency_vs_concurrency"),
    )?);

    let throughput = [
        (1, 117.2),
        (2, 221.0),
        (4, 398.5),
        (8, 652.0),
        (12, 790.4),
        (16, 842.9),
    ];
    written.push(report::throughput_vs_concurrency(
        &throughput,
        &dir.join("throughput_vs_concurrency"),
    )?);

    // 48 h sampled every 30 s: a slow leak of 0.8 MiB/h plus deterministic ripple.
    let samples: Vec<(f64, f64)> = (0..5760)
        .map(|i| {
            let t = f64::from(i) / 120.0;
            let ripple = 6.0 * (t * 1.7).sin() + 3.0 * (f64::from(i) * 0.37).sin();
            (t, 4370.0 + 0.8 * t + ripple)
        })
        .collect();
    written.push(report::timeseries_with_fit(
        &samples,
        Some((0.8, 4370.0)),
        &dir.join("soak_vram"),
    )?);

    let mut quality = PlotSpec::new(
        "Quality vs speed (log-log)",
        "decode (tokens/s)",
        "perplexity",
        PlotKind::Scatter,
    )
    .with_series(
        Series::new(
            "K-quants",
            VARIANTS[..6].iter().map(|v| (v.2, v.4)).collect(),
        )
        .with_labels(VARIANTS[..6].iter().map(|v| v.0.to_string()).collect()),
    )
    .with_series(
        Series::new("hybrid", vec![(VARIANTS[6].2, VARIANTS[6].4)])
            .with_labels(vec!["hybrid".into()]),
    );
    quality.log_x = true;
    quality.log_y = true;
    written.push(report::write_plot(&quality, &dir.join("quality_vs_speed"))?);

    let single = PlotSpec::new(
        "One measurement",
        "VRAM (MiB)",
        "decode (tokens/s)",
        PlotKind::Scatter,
    )
    .with_series(Series::new("Q4_K_M", vec![(4370.0, 117.2)]).with_labels(vec!["Q4_K_M".into()]));
    written.push(report::write_plot(&single, &dir.join("single_point"))?);

    let empty = PlotSpec::new(
        "Nothing measured yet",
        "time (h)",
        "VRAM (MiB)",
        PlotKind::Line,
    )
    .with_series(Series::new("VRAM used", vec![]));
    written.push(report::write_plot(&empty, &dir.join("empty"))?);

    for (svg, png) in &written {
        println!("wrote {} and {}", svg.display(), png.display());
    }

    println!("\nDecode speed by variant");
    let bars: Vec<(&str, f64)> = VARIANTS.iter().map(|v| (v.0, v.2)).collect();
    print!("{}", term::bar_chart(&bars, "tokens/s", 1, 72));
    println!(
        "\nSoak VRAM, 48 h: {}",
        term::sparkline(&samples.iter().map(|s| s.1).collect::<Vec<_>>(), 60)
    );
    let pts: Vec<(f64, f64)> = VARIANTS.iter().map(|v| (v.1, v.2)).collect();
    println!();
    print!(
        "{}",
        term::scatter(
            &[("variants", &pts[..])],
            "VRAM (MiB)",
            "decode (tokens/s)",
            60,
            12
        )
    );

    let mut table = Table::new(vec![
        Column::text("variant"),
        Column::num("VRAM (MiB)", 0),
        Column::num("decode (t/s)", 1),
        Column::num("p95 (ms)", 1),
        Column::num("PPL", 2),
    ]);
    for v in VARIANTS {
        table.push(vec![
            v.0.into(),
            v.1.into(),
            v.2.into(),
            v.3.into(),
            v.4.into(),
        ])?;
    }
    println!();
    print!("{}", table.to_text());
    println!();
    print!("{}", table.to_markdown());
    Ok(())
}
