//! What a plot shows, independent of how it is drawn.
//!
//! A [`PlotSpec`] is plain data: the renderer (`plot.rs`) draws the same spec to SVG and PNG.
//! [`PlotSpec::validate`] is the one gate for bad input — non-finite values, labels or bubble sizes
//! that do not line up with the points, non-positive values on a log axis — and names the series
//! and point at fault. Empty series are valid and draw an empty-state plot.

use crate::{Error, Result};

/// One named set of points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// (x, y) in data units.
    pub points: Vec<(f64, f64)>,
    /// Text drawn next to each point (e.g. the variant name); one per point when present.
    pub labels: Option<Vec<String>>,
    /// Draw as a dashed line without markers whatever the plot kind: for fits and reference
    /// lines such as ideal scaling.
    pub dashed: bool,
}

impl Series {
    /// A series without point labels, drawn in the plot's kind.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            labels: None,
            dashed: false,
        }
    }

    /// Adds one label per point.
    pub fn with_labels(mut self, labels: Vec<String>) -> Self {
        self.labels = Some(labels);
        self
    }

    /// Marks the series as a dashed reference line.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

/// How points are drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum PlotKind {
    /// Points joined in the order given, with markers when a series is short.
    Line,
    /// Unjoined markers.
    Scatter,
    /// Markers whose area is proportional to a third value.
    Bubble {
        /// `sizes[s][i]` is the size of point `i` of series `s`: one vector per series, as long
        /// as its points, values finite and ≥ 0.
        sizes: Vec<Vec<f64>>,
        /// What the size means, with unit (e.g. "p95 ms/token"); shown under the title.
        size_label: String,
    },
}

/// A complete plot description.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSpec {
    /// Title above the plot.
    pub title: String,
    /// X axis description with unit, e.g. "VRAM (MiB)".
    pub x_label: String,
    /// Y axis description with unit, e.g. "decode (tokens/s)".
    pub y_label: String,
    /// The data.
    pub series: Vec<Series>,
    /// How the data are drawn.
    pub kind: PlotKind,
    /// Logarithmic x axis (all x must be > 0).
    pub log_x: bool,
    /// Logarithmic y axis (all y must be > 0).
    pub log_y: bool,
    /// Image width in pixels (SVG user units).
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
}

/// Default image size: readable on a page and on a screen.
pub const DEFAULT_SIZE: (u32, u32) = (960, 600);

/// Smallest and largest accepted image side, in pixels.
pub const SIZE_LIMITS: (u32, u32) = (240, 8192);

impl PlotSpec {
    /// A linear-axis plot of the default size with no series yet.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        kind: PlotKind,
    ) -> Self {
        PlotSpec {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            kind,
            log_x: false,
            log_y: false,
            width: DEFAULT_SIZE.0,
            height: DEFAULT_SIZE.1,
        }
    }

    /// Adds a series.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Checks that the spec can be drawn; the error names the series and point at fault.
    pub fn validate(&self) -> Result<()> {
        let (lo, hi) = SIZE_LIMITS;
        for (what, v) in [("width", self.width), ("height", self.height)] {
            if !(lo..=hi).contains(&v) {
                return Err(Error::Plot(format!(
                    "'{}': {what} {v} px is outside {lo}..={hi}",
                    self.title
                )));
            }
        }
        if let PlotKind::Bubble { sizes, .. } = &self.kind {
            if sizes.len() != self.series.len() {
                return Err(Error::Plot(format!(
                    "'{}': {} bubble size lists for {} series",
                    self.title,
                    sizes.len(),
                    self.series.len()
                )));
            }
        }
        for (s, series) in self.series.iter().enumerate() {
            let at = |i: usize| format!("'{}': series '{}' point {i}", self.title, series.name);
            for (i, &(x, y)) in series.points.iter().enumerate() {
                if !x.is_finite() || !y.is_finite() {
                    return Err(Error::Plot(format!("{}: ({x}, {y}) is not finite", at(i))));
                }
                if self.log_x && x <= 0.0 {
                    return Err(Error::Plot(format!("{}: x = {x} on a log axis", at(i))));
                }
                if self.log_y && y <= 0.0 {
                    return Err(Error::Plot(format!("{}: y = {y} on a log axis", at(i))));
                }
            }
            if let Some(labels) = &series.labels {
                if labels.len() != series.points.len() {
                    return Err(Error::Plot(format!(
                        "'{}': series '{}' has {} labels for {} points",
                        self.title,
                        series.name,
                        labels.len(),
                        series.points.len()
                    )));
                }
            }
            if let PlotKind::Bubble { sizes, .. } = &self.kind {
                let sizes = &sizes[s];
                if sizes.len() != series.points.len() {
                    return Err(Error::Plot(format!(
                        "'{}': series '{}' has {} bubble sizes for {} points",
                        self.title,
                        series.name,
                        sizes.len(),
                        series.points.len()
                    )));
                }
                if let Some(i) = sizes.iter().position(|v| !v.is_finite() || *v < 0.0) {
                    return Err(Error::Plot(format!(
                        "{}: bubble size {} is not a finite value ≥ 0",
                        at(i),
                        sizes[i]
                    )));
                }
            }
        }
        Ok(())
    }

    /// True when no series has a point: the renderer then draws an empty-state message.
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.points.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_offending_series_and_point() {
        let spec = PlotSpec::new("t", "x", "y", PlotKind::Line)
            .with_series(Series::new("ok", vec![(1.0, 1.0)]))
            .with_series(Series::new("bad", vec![(1.0, 2.0), (f64::NAN, 1.0)]));
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("series 'bad' point 1"), "{err}");

        let mut spec = PlotSpec::new("t", "x", "y", PlotKind::Scatter)
            .with_series(Series::new("s", vec![(1.0, 0.0)]));
        assert!(spec.validate().is_ok());
        spec.log_y = true;
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("log axis"));

        let spec = PlotSpec::new("t", "x", "y", PlotKind::Line)
            .with_series(Series::new("s", vec![(1.0, 1.0)]).with_labels(vec![]));
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("0 labels for 1 points"));

        let bubble = |sizes| {
            PlotSpec::new(
                "t",
                "x",
                "y",
                PlotKind::Bubble {
                    sizes,
                    size_label: "s".into(),
                },
            )
            .with_series(Series::new("s", vec![(1.0, 1.0), (2.0, 2.0)]))
        };
        assert!(bubble(vec![vec![1.0, 2.0]]).validate().is_ok());
        assert!(bubble(vec![]).validate().is_err());
        assert!(bubble(vec![vec![1.0]]).validate().is_err());
        assert!(bubble(vec![vec![1.0, -1.0]]).validate().is_err());

        let mut spec = PlotSpec::new("t", "x", "y", PlotKind::Line);
        spec.width = 10;
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("width 10"));
    }
}
