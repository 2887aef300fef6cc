//! Text measuring and rasterising for plots, and the backend wrapper that uses it.
//!
//! plotters 0.3.7's ab_glyph path places every glyph at its bounding box instead of its pen
//! position (side bearings are lost: `Q2_K` draws its underscore under the `2`, `8.1` glues the
//! dot to the `1`). [`TextBackend`] wraps any plotters backend and takes over text: it measures
//! every string with [`Glyphs`] (so layout is identical for the SVG and the PNG) and, when
//! rasterising, draws glyphs at their pen positions with kerning and anti-aliasing.
//!
//! Sizes: plotters' font "size" `s` is drawn by the SVG backend as `font-size: s / 1.24` px; we
//! use the same em so PNG and SVG text match. A measured box is the advance width by the line
//! height (ascent − descent), with the baseline at `ascent` below the box top.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// The em of plotters' font size `s` in pixels, as its SVG backend writes it.
const EM_PER_SIZE: f64 = 1.0 / 1.24;

/// One font, measured and rasterised.
#[derive(Clone)]
pub(crate) struct Glyphs {
    font: FontRef<'static>,
}

impl Glyphs {
    /// Parses `bytes`; `None` when they are not a font.
    pub fn new(bytes: &'static [u8]) -> Option<Self> {
        FontRef::try_from_slice(bytes)
            .ok()
            .map(|font| Glyphs { font })
    }

    fn scale(&self, size: f64) -> PxScale {
        let em = size * EM_PER_SIZE;
        let upem = self.font.units_per_em().unwrap_or(2048.0);
        PxScale::from((em * f64::from(self.font.height_unscaled() / upem)) as f32)
    }

    /// (width, height) of `text` at plotters size `size`, whole pixels, rounded up.
    pub fn measure(&self, text: &str, size: f64) -> (u32, u32) {
        let font = self.font.as_scaled(self.scale(size));
        let mut width = 0.0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                width += font.kern(p, id);
            }
            width += font.h_advance(id);
            prev = Some(id);
        }
        let height = font.ascent() - font.descent();
        (width.max(0.0).ceil() as u32, height.ceil() as u32)
    }

    /// Rasterises `text` with its measured box's top-left at (0, 0), calling `put(x, y, coverage)`
    /// for every touched pixel (coverage in 0..=1).
    pub fn draw(&self, text: &str, size: f64, mut put: impl FnMut(i32, i32, f32)) {
        let font = self.font.as_scaled(self.scale(size));
        let baseline = font.ascent();
        let mut pen = 0.0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            let glyph = id.with_scale_and_position(font.scale(), point(pen, baseline));
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                let (x0, y0) = (b.min.x as i32, b.min.y as i32);
                outline.draw(|x, y, cov| put(x0 + x as i32, y0 + y as i32, cov));
            }
            pen += font.h_advance(id);
            prev = Some(id);
        }
    }
}

/// A plotters backend whose text is measured (and, with `raster`, drawn) by [`Glyphs`]; all
/// other drawing goes to `inner` unchanged.
pub(crate) struct TextBackend<B> {
    pub inner: B,
    pub glyphs: Glyphs,
    /// Rasterise text here (bitmap backends); otherwise the inner backend draws it (SVG text).
    pub raster: bool,
}

type DrawResult<E> = Result<(), DrawingErrorKind<E>>;

impl<B: DrawingBackend> DrawingBackend for TextBackend<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> DrawResult<B::ErrorType> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> DrawResult<B::ErrorType> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> DrawResult<B::ErrorType> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> DrawResult<B::ErrorType> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> DrawResult<B::ErrorType> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> DrawResult<B::ErrorType> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> DrawResult<B::ErrorType> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> DrawResult<B::ErrorType> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> DrawResult<B::ErrorType> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        Ok(self.glyphs.measure(text, style.size()))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> DrawResult<B::ErrorType> {
        if !self.raster {
            return self.inner.draw_text(text, style, pos);
        }
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (w, h) = self.glyphs.measure(text, style.size());
        let (w, h) = (w as i32, h as i32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -w / 2,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let trans = style.transform();
        let (iw, ih) = self.inner.get_size();
        let mut result = Ok(());
        let inner = &mut self.inner;
        self.glyphs.draw(text, style.size(), |x, y, cov| {
            if result.is_err() || cov <= 0.0 {
                return;
            }
            let (tx, ty) = trans.transform(x + dx, y + dy);
            let (px, py) = (pos.0 + tx, pos.1 + ty);
            if px >= 0 && py >= 0 && px < iw as i32 && py < ih as i32 {
                let c = BackendColor {
                    alpha: color.alpha * f64::from(cov.min(1.0)),
                    rgb: color.rgb,
                };
                result = inner.draw_pixel((px, py), c);
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::font::EMBEDDED;

    fn glyphs() -> Glyphs {
        Glyphs::new(EMBEDDED).expect("embedded font parses")
    }

    #[test]
    fn embedded_subset_has_the_glyphs_plots_use() {
        let font = FontRef::try_from_slice(EMBEDDED).unwrap();
        for c in "Aa0 (MiB) tokens/s µ±×≈≤≥→…–∝·".chars() {
            assert_ne!(font.glyph_id(c).0, 0, "embedded font lacks {c:?}");
        }
    }

    #[test]
    fn measure_matches_the_svg_em_and_grows_with_text() {
        let g = glyphs();
        // DejaVu Sans: line height 1.164 em; size 24.8 -> em 20 px -> ~23.3 px.
        let (_, h) = g.measure("Ag", 24.8);
        assert_eq!(h, 24);
        let (w1, _) = g.measure("1", 24.8);
        let (w3, _) = g.measure("111", 24.8);
        // Digits are tabular: 0.636 em each.
        assert_eq!(w1, 13);
        assert!((38..=39).contains(&w3), "{w3}");
        assert_eq!(g.measure("", 24.8).0, 0);
    }

    #[test]
    fn glyphs_are_drawn_at_pen_positions() {
        // "._" — with side bearings honoured the dot's ink starts right of x = 0 and the
        // underscore's ink starts at or after the dot's advance; the buggy layout put both at 0.
        let g = glyphs();
        let mut dot_min = i32::MAX;
        g.draw(".", 24.8, |x, _, c| {
            if c > 0.5 {
                dot_min = dot_min.min(x);
            }
        });
        assert!(dot_min >= 2, "dot ink starts at {dot_min}");
        let (dot_w, _) = g.measure(".", 24.8);
        let mut under_min = i32::MAX;
        g.draw("._", 24.8, |x, y, c| {
            // Underscore ink lies below the baseline; the dot's does not.
            if c > 0.5 && y > 20 {
                under_min = under_min.min(x);
            }
        });
        assert!(
            under_min >= dot_w as i32 - 1,
            "{under_min} vs advance {dot_w}"
        );
    }
}
