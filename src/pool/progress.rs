//! The live progress line on stderr (indicatif): elapsed time, requests by state, rates and TTFT
//! percentiles so far. Redrawn at most [`REDRAW`] apart; elapsed time keeps ticking while the
//! target is silent, so a stall is visible. Hidden when disabled (and by indicatif when stderr
//! is not a terminal).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::histogram::quantile;
use super::metrics::Aggregator;

/// Minimum time between message updates.
pub const REDRAW: Duration = Duration::from_millis(200);

/// A progress line for one run.
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// A line that draws if `enabled`.
    pub fn new(enabled: bool, start: Instant) -> Progress {
        let bar = if enabled {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("[{elapsed_precise}] {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(REDRAW);
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            start,
            last: None,
        }
    }

    /// Updates the message from the aggregate so far, unless updated less than [`REDRAW`] ago
    /// (`force` updates anyway).
    pub fn update(&mut self, agg: &Aggregator, in_flight: u64, force: bool) {
        if self.bar.is_hidden() {
            return;
        }
        let now = Instant::now();
        if !force && self.last.is_some_and(|l| now - l < REDRAW) {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.start).as_secs_f64().max(1e-9);
        let c = &agg.counts;
        let ttft = &agg.histograms.ttft;
        let ms = |q: f64| quantile(ttft, q) as f64 / 1000.0;
        self.bar.set_message(format!(
            "done {} err {} drop {} in-flight {} | {:.1} req/s {:.0} tok/s | TTFT p50 {:.1} p99 {:.1} ms",
            c.completed,
            c.failed - c.dropped,
            c.dropped,
            in_flight,
            c.completed as f64 / secs,
            agg.output_tokens as f64 / secs,
            ms(0.5),
            ms(0.99),
        ));
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
