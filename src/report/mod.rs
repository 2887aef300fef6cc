//! Plots, terminal charts and tables for the phase scripts and the generated documents.
//!
//! Pure library code over plain numbers; nothing here knows about engines or the results store.
//!
//! - [`PlotSpec`] describes a plot; [`write_plot`] draws it to `<stem>.svg` and `<stem>.png`.
//! - [`curves`] builds the specs the documents use (performance curve, latency and throughput
//!   against concurrency, soak time series with a fitted line).
//! - [`term`] draws bar charts, sparklines and scatter plots as UTF-8 text.
//! - [`table`] formats aligned Markdown and plain-text tables.
//!
//! Output is deterministic: the same input gives byte-identical text, SVG and PNG on one machine
//! (the PNG's font may differ between machines, see [`font`]).

mod axis;
pub mod curves;
mod draw;
pub mod font;
mod glyphs;
mod layout;
mod marks;
pub mod num;
mod plot;
mod spec;
mod style;
pub mod table;
pub mod term;

pub use curves::{
    latency_vs_concurrency, performance_curve, throughput_vs_concurrency, timeseries_with_fit,
    CurvePoint,
};
pub use plot::{render_rgb, render_svg, write_plot};
pub use spec::{PlotKind, PlotSpec, Series, DEFAULT_SIZE, SIZE_LIMITS};
