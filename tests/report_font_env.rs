//! `$RAWRXD_FONT` naming something that is not a font is an error that names the variable and
//! the file, not a silent fallback. Alone in its test binary: the font is chosen once per process.

use rawrxd::report::{self, PlotKind, PlotSpec, Series};

#[test]
fn unusable_font_override_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_font = dir.path().join("not-a-font.ttf");
    std::fs::write(&not_a_font, b"definitely not a font").unwrap();
    // Set before the first plot in this process; this binary has no other test that could race.
    std::env::set_var(report::font::FONT_ENV, &not_a_font);

    let err = report::font::ensure_font().unwrap_err().to_string();
    assert!(
        err.contains("RAWRXD_FONT") && err.contains("not-a-font.ttf"),
        "{err}"
    );
    let spec = PlotSpec::new("t", "x", "y", PlotKind::Line)
        .with_series(Series::new("s", vec![(0.0, 1.0)]));
    let err = report::write_plot(&spec, &dir.path().join("p"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a TrueType/OpenType font"), "{err}");
    assert!(!dir.path().join("p.png").exists());
}
