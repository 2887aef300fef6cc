//! Sizes, colours and text styles shared by everything a plot draws.
//!
//! Sizes derive from the image size against a 960 × 600 reference, so a 2× image is a 2× plot;
//! below the reference text shrinks slower than the image so thumbnails stay readable.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::font::FAMILY;
use crate::{Error, Result};

/// Tableau 10: distinguishable, print-safe, and readable for the common colour-vision deficiencies
/// when combined with the per-series marker shapes.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0xBA, 0xB0, 0xAC),
];

/// Colour of series `i`.
pub(crate) fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Any plotters error, as ours.
pub(crate) fn err<E: std::fmt::Display>(e: E) -> Error {
    Error::Plot(e.to_string())
}

/// Pixel sizes derived from the image size (reference: 960 × 600); font sizes are plotters
/// sizes (em = size / 1.24 px).
pub(crate) struct Metrics {
    pub scale: f64,
    pub title: f64,
    pub subtitle: f64,
    pub desc: f64,
    pub tick: f64,
    pub legend: f64,
    pub label: f64,
    pub marker: i32,
    pub stroke: u32,
    pub pad: i32,
}

impl Metrics {
    pub fn new(width: u32, height: u32) -> Self {
        let scale = (f64::from(width) / 960.0)
            .min(f64::from(height) / 600.0)
            .clamp(0.5, 4.0);
        let px = |v: f64| (v * scale).round().max(1.0);
        // Text shrinks slower than the image: a thumbnail must stay readable.
        let text_scale = if scale < 1.0 { scale.sqrt() } else { scale };
        let pt = |v: f64| (v * text_scale).round();
        Metrics {
            scale,
            title: pt(26.0),
            subtitle: pt(16.0),
            desc: pt(19.0),
            tick: pt(16.0),
            legend: pt(16.0),
            label: pt(15.0),
            marker: px(4.5) as i32,
            stroke: px(2.0) as u32,
            pad: px(10.0) as i32,
        }
    }

    /// `v` reference pixels at this image size.
    pub fn px(&self, v: f64) -> i32 {
        (v * self.scale).round() as i32
    }
}

pub(crate) fn text_style(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&BLACK)
}

pub(crate) fn text_size<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
) -> Result<(i32, i32)> {
    let (w, h) = area.estimate_text_size(text, style).map_err(err)?;
    Ok((w as i32, h as i32))
}
