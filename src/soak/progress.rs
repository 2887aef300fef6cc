//! The soak's live status line on stderr (indicatif): soak time against the duration, requests,
//! tokens/s, memory and the current leak verdicts. Updated at each sample; hidden when disabled
//! and (by indicatif) when stderr is not a terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::sample::Sample;

/// The status line of one soak.
pub struct StatusLine {
    bar: ProgressBar,
}

fn hms(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl StatusLine {
    /// A line that draws if `enabled`.
    pub fn new(enabled: bool) -> StatusLine {
        let bar = if enabled {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} soak {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        } else {
            ProgressBar::hidden()
        };
        StatusLine { bar }
    }

    /// Shows `s` against the soak's `duration`.
    pub fn update(&self, s: &Sample, duration: Duration) {
        if self.bar.is_hidden() {
            return;
        }
        let mb = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let verdicts: Vec<String> = s
            .leak
            .iter()
            .map(|(k, e)| format!("{k} {:+.2} MB/h {}", e.slope, e.verdict.as_str()))
            .collect();
        self.bar.set_message(format!(
            "{} / {} | ok {} err {} | {:.0} tok/s | vram {} heap {} rss {} MB | {}",
            hms(s.elapsed_s),
            hms(duration.as_secs_f64()),
            s.requests_ok,
            s.requests_failed,
            s.tokens_per_s,
            mb(s.vram_own_mb),
            mb(s.vram_heap_used_mb),
            mb(s.rss_mb),
            if s.warming_up {
                "warming up".to_string()
            } else if verdicts.is_empty() {
                "fitting".to_string()
            } else {
                verdicts.join(", ")
            }
        ));
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
