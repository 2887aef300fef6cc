//! Plots written to disk: both files exist, the SVG is well-formed and carries the plot's words,
//! the PNG decodes (with the `png` crate's decoder, independent of our encoder settings) to the
//! right size and holds text, axes and every series' colour.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use rawrxd::report::{self, CurvePoint, PlotKind, PlotSpec, Series};

/// Series colours in draw order (Tableau 10), as the renderer assigns them.
const SERIES_RGB: [[u8; 3]; 3] = [[0x4E, 0x79, 0xA7], [0xF2, 0x8E, 0x2B], [0xE1, 0x57, 0x59]];

struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn decode(path: &Path) -> Image {
        let file = BufReader::new(File::open(path).expect("png exists"));
        let mut reader = png::Decoder::new(file).read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
        let info = reader.next_frame(&mut buf).expect("png data");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        Image {
            width: info.width,
            height: info.height,
            rgb: buf,
        }
    }

    fn pixels(&self) -> impl Iterator<Item = [u8; 3]> + '_ {
        self.rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]])
    }

    fn rows(&self, y0: u32, y1: u32) -> impl Iterator<Item = [u8; 3]> + '_ {
        let w = self.width as usize * 3;
        self.rgb[y0 as usize * w..y1 as usize * w]
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
    }
}

/// Text is black, anti-aliased: its cores are near-black pixels, which nothing else in a plot
/// draws (axes are dark grey 60, grid lines light).
fn dark(p: &[u8; 3]) -> bool {
    p.iter().all(|&c| c < 50)
}

fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Texts of all `<text>` elements.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Checks that tags nest: every `<a ...>` is closed by `</a>` in order, `<a .../>` closes itself,
/// attribute values are quoted, and the root is one `<svg>` element.
fn check_well_formed(svg: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = svg.trim();
    assert!(rest.starts_with("<svg"), "does not start with <svg");
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "'<' inside tag {tag}");
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in {tag}"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
        } else if !tag.starts_with('?') && !tag.starts_with('!') {
            let name = tag
                .split_whitespace()
                .next()
                .expect("tag name")
                .trim_end_matches('/');
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed tags {stack:?}");
    assert_eq!(roots, 1, "more than one root element");
}

fn latency_spec() -> PlotSpec {
    report::curves::latency_vs_concurrency_spec(
        "time to first token",
        &[
            (1, 20.0, 25.0, 30.0),
            (4, 24.0, 33.0, 41.0),
            (8, 31.0, 47.0, 60.0),
            (16, 52.0, 80.0, 112.0),
        ],
    )
}

fn curve_points() -> Vec<CurvePoint> {
    [
        ("Q2_K", 2780.0, 142.0, 8.1),
        ("Q4_K_M", 4370.0, 117.2, 9.6),
        ("Q8_0", 7700.0, 74.1, 15.0),
    ]
    .iter()
    .map(|&(v, vram, tps, p95)| CurvePoint {
        variant: v.to_string(),
        vram_mib: vram,
        tg_tps: tps,
        ms_p95: p95,
    })
    .collect()
}

fn log_scatter_spec() -> PlotSpec {
    let mut spec = PlotSpec::new(
        "Quality vs speed",
        "decode (tokens/s)",
        "perplexity",
        PlotKind::Scatter,
    )
    .with_series(
        Series::new(
            "K-quants <all>",
            vec![(74.0, 6.2), (117.0, 6.5), (142.0, 9.8)],
        )
        .with_labels(vec!["Q8_0".into(), "Q4_K_M".into(), "Q2_K".into()]),
    )
    .with_series(Series::new("hybrid & co", vec![(112.0, 6.4)]));
    spec.log_x = true;
    spec.log_y = true;
    spec
}

fn soak_spec() -> PlotSpec {
    let samples: Vec<(f64, f64)> = (0..4000)
        .map(|i| {
            let t = f64::from(i) / 100.0;
            (t, 4000.0 + 0.5 * t + 4.0 * (f64::from(i) * 0.3).sin())
        })
        .collect();
    report::curves::timeseries_with_fit_spec(&samples, Some((0.5, 4000.0)))
}

/// Writes `spec`, checks both files, and returns the decoded PNG and the SVG text.
fn write_and_check(spec: &PlotSpec, dir: &Path, stem: &str) -> (Image, String) {
    let (svg_path, png_path) = report::write_plot(spec, &dir.join(stem)).expect("plot written");
    assert_eq!(svg_path, dir.join(format!("{stem}.svg")));
    assert_eq!(png_path, dir.join(format!("{stem}.png")));
    let svg = std::fs::read_to_string(&svg_path).expect("svg readable");
    check_well_formed(&svg);
    let texts = svg_texts(&svg);
    for word in [&spec.title, &spec.x_label, &spec.y_label] {
        assert!(
            texts.contains(&escaped(word)),
            "{stem}.svg lacks text {word:?}: {texts:?}"
        );
    }
    // A legend is drawn for two or more series (none in the empty state).
    if spec.series.len() > 1 && !spec.is_empty() {
        for s in &spec.series {
            assert!(
                texts.contains(&escaped(&s.name)),
                "{stem}.svg lacks series {:?}",
                s.name
            );
        }
    }
    for label in spec
        .series
        .iter()
        .filter_map(|s| s.labels.as_ref())
        .flatten()
    {
        assert!(
            texts.contains(&escaped(label)),
            "{stem}.svg lacks point label {label:?}"
        );
    }

    let png = Image::decode(&png_path);
    assert_eq!(
        (png.width, png.height),
        (spec.width, spec.height),
        "{stem}.png size"
    );
    // What the PNG holds is exactly what was rendered.
    assert_eq!(
        png.rgb,
        report::render_rgb(spec).expect("renders"),
        "{stem}.png content"
    );
    let colours: HashSet<[u8; 3]> = png.pixels().collect();
    assert!(
        colours.len() > 30,
        "{stem}.png has only {} colours",
        colours.len()
    );
    // The title band (top 40 px at this size) holds text.
    let title_ink = png.rows(0, 40).filter(dark).count();
    assert!(
        title_ink > 150,
        "{stem}.png title band has {title_ink} text pixels"
    );
    for (s, series) in spec
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.points.is_empty())
    {
        let rgb = SERIES_RGB[s];
        let n = png.pixels().filter(|p| *p == rgb).count();
        assert!(
            n > 10,
            "{stem}.png: series {:?} colour {rgb:?} on {n} pixels",
            series.name
        );
    }
    (png, svg)
}

#[test]
fn every_plot_kind_writes_a_complete_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    write_and_check(&latency_spec(), dir.path(), "latency");
    write_and_check(
        &report::curves::throughput_vs_concurrency_spec(&[(1, 100.0), (4, 350.0), (16, 900.0)]),
        dir.path(),
        "throughput",
    );
    write_and_check(&log_scatter_spec(), dir.path(), "scatter");
    write_and_check(&soak_spec(), dir.path(), "soak");
    let (_, svg) = write_and_check(
        &report::curves::performance_curve_spec(&curve_points()),
        dir.path(),
        "curve",
    );
    let texts = svg_texts(&svg);
    assert!(texts.contains(&"Q4_K_M · 9.6 ms".to_string()), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.starts_with("bubble area ∝ p95")),
        "{texts:?}"
    );
}

#[test]
fn convenience_builders_write_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/dir/curve.v2");
    let (svg, png) = report::performance_curve(&curve_points(), &out).unwrap();
    assert!(svg.ends_with("curve.v2.svg") && svg.is_file() && png.is_file());
    let (svg, _) = report::latency_vs_concurrency(
        "inter-token latency",
        &[(1, 1.0, 2.0, 3.0)],
        &dir.path().join("l"),
    )
    .unwrap();
    assert!(std::fs::read_to_string(svg)
        .unwrap()
        .contains("Inter-token latency vs concurrency"));
    report::throughput_vs_concurrency(&[(2, 10.0)], &dir.path().join("t")).unwrap();
    report::timeseries_with_fit(&[(0.0, 1.0), (1.0, 2.0)], None, &dir.path().join("s")).unwrap();
}

#[test]
fn png_text_comes_from_the_font() {
    // Same plot without a title: the title band must then be free of text pixels. This is what
    // catches a PNG rendered without glyphs.
    let mut spec = latency_spec();
    let with = report::render_rgb(&spec).unwrap();
    spec.title.clear();
    let without = report::render_rgb(&spec).unwrap();
    let band = |rgb: &[u8]| {
        rgb[..960 * 3 * 30]
            .chunks_exact(3)
            .filter(|p| p.iter().all(|&c| c < 50))
            .count()
    };
    assert!(band(&with) > 150, "{}", band(&with));
    assert_eq!(band(&without), 0);
}

#[test]
fn single_point_and_empty_plots_draw_without_error() {
    let dir = tempfile::tempdir().unwrap();
    let single = PlotSpec::new(
        "One measurement",
        "VRAM (MiB)",
        "decode (tokens/s)",
        PlotKind::Scatter,
    )
    .with_series(Series::new("only", vec![(4370.0, 117.2)]).with_labels(vec!["Q4_K_M".into()]));
    write_and_check(&single, dir.path(), "single");

    let bubble = report::curves::performance_curve_spec(&curve_points()[..1]);
    write_and_check(&bubble, dir.path(), "one_bubble");

    for (stem, spec) in [
        (
            "no_series",
            PlotSpec::new("Nothing yet", "time (h)", "VRAM (MiB)", PlotKind::Line),
        ),
        (
            "empty_series",
            PlotSpec::new("Nothing yet", "time (h)", "VRAM (MiB)", PlotKind::Line)
                .with_series(Series::new("a", vec![]))
                .with_series(Series::new("b", vec![])),
        ),
        ("empty_curve", report::curves::performance_curve_spec(&[])),
    ] {
        let (png, svg) = write_and_check(&spec, dir.path(), stem);
        assert!(svg_texts(&svg).contains(&"no data".to_string()), "{stem}");
        // Axes still drawn: the dark grey axis colour is present.
        assert!(png.pixels().any(|p| p == [60, 60, 60]), "{stem}: no axes");
    }
}

#[test]
fn output_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let spec = log_scatter_spec();
    let (a_svg, a_png) = report::write_plot(&spec, &dir.path().join("a")).unwrap();
    let (b_svg, b_png) = report::write_plot(&spec, &dir.path().join("b")).unwrap();
    assert_eq!(std::fs::read(a_svg).unwrap(), std::fs::read(b_svg).unwrap());
    assert_eq!(std::fs::read(a_png).unwrap(), std::fs::read(b_png).unwrap());
}

#[test]
fn bad_data_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("bad");
    let spec = PlotSpec::new("t", "x", "y", PlotKind::Line)
        .with_series(Series::new("ttft", vec![(1.0, 2.0), (2.0, f64::INFINITY)]));
    let err = report::write_plot(&spec, &stem).unwrap_err().to_string();
    assert!(err.contains("series 'ttft' point 1"), "{err}");
    assert!(!dir.path().join("bad.svg").exists() && !dir.path().join("bad.png").exists());

    let mut spec = log_scatter_spec();
    spec.series[1].points[0].1 = 0.0;
    let err = report::write_plot(&spec, &stem).unwrap_err().to_string();
    assert!(
        err.contains("log axis") && err.contains("hybrid & co"),
        "{err}"
    );

    // An output path whose parent is a file: an I/O error naming the path.
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let err = report::write_plot(&latency_spec(), &dir.path().join("file/plot")).unwrap_err();
    assert!(err.to_string().contains("file"), "{err}");
}
