//! Writing a [`PlotSpec`] to files: `<stem>.svg` and `<stem>.png` from one drawing routine.
//!
//! The SVG keeps text as `<text font-family="sans-serif">` (a viewer picks its own sans font);
//! the PNG is rasterised here with the chosen font (`font.rs`, `glyphs.rs`), 8-bit RGB, same
//! pixel size as the spec. Both are laid out with the same text measurements. Both files are written only after both images rendered, so a failed plot leaves no
//! half-written pair behind; missing parent directories are created.

use std::ffi::OsString;
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::draw::draw_plot;
use super::font::{ensure_font, font_bytes};
use super::glyphs::{Glyphs, TextBackend};
use super::spec::PlotSpec;
use crate::{Error, Result};

/// Draws `spec` to `<out_stem>.svg` and `<out_stem>.png` and returns their paths (svg, png).
///
/// The stem is used as given plus an extension (`results/curve.v2` → `results/curve.v2.svg`).
/// Errors: an invalid spec (see [`PlotSpec::validate`]), an unusable `$RAWRXD_FONT`, or an I/O
/// error naming the file.
pub fn write_plot(spec: &PlotSpec, out_stem: &Path) -> Result<(PathBuf, PathBuf)> {
    let svg = render_svg(spec)?;
    let rgb = render_rgb(spec)?;
    let svg_path = with_extension(out_stem, "svg");
    let png_path = with_extension(out_stem, "png");
    if let Some(dir) = out_stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    fs::write(&svg_path, svg).map_err(|e| Error::io(&svg_path, e))?;
    write_png(&png_path, spec.width, spec.height, &rgb)?;
    Ok((svg_path, png_path))
}

/// The plot as an SVG document.
pub fn render_svg(spec: &PlotSpec) -> Result<String> {
    spec.validate()?;
    ensure_font()?;
    let mut out = String::new();
    {
        let root = TextBackend {
            inner: SVGBackend::with_string(&mut out, (spec.width, spec.height)),
            glyphs: glyphs()?,
            raster: false,
        }
        .into_drawing_area();
        draw_plot(&root, spec)?;
        root.present().map_err(|e| Error::Plot(e.to_string()))?;
    }
    Ok(out)
}

/// The plot as packed 8-bit RGB pixels, row-major, `width * height * 3` bytes.
pub fn render_rgb(spec: &PlotSpec) -> Result<Vec<u8>> {
    spec.validate()?;
    ensure_font()?;
    let mut buf = vec![0u8; spec.width as usize * spec.height as usize * 3];
    {
        let root = TextBackend {
            inner: BitMapBackend::with_buffer(&mut buf, (spec.width, spec.height)),
            glyphs: glyphs()?,
            raster: true,
        }
        .into_drawing_area();
        draw_plot(&root, spec)?;
        root.present().map_err(|e| Error::Plot(e.to_string()))?;
    }
    Ok(buf)
}

fn glyphs() -> Result<Glyphs> {
    Glyphs::new(font_bytes()?).ok_or_else(|| Error::Plot("the plot font does not parse".into()))
}

fn with_extension(stem: &Path, ext: &str) -> PathBuf {
    let mut s = OsString::from(stem.as_os_str());
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn write_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut enc = png::Encoder::new(BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let encoding = |e: png::EncodingError| match e {
        png::EncodingError::IoError(io) => Error::io(path, io),
        other => Error::Plot(format!("{}: {other}", path.display())),
    };
    let mut writer = enc.write_header().map_err(encoding)?;
    writer.write_image_data(rgb).map_err(encoding)?;
    writer.finish().map_err(encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stem_keeps_its_dots() {
        assert_eq!(
            with_extension(Path::new("results/curve.v2"), "svg"),
            PathBuf::from("results/curve.v2.svg")
        );
    }
}
