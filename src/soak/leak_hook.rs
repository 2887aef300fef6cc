//! Test-only planted leak: allocates and holds memory at a fixed rate of *soak* time, so a test
//! on the virtual clock can plant "1 MiB per minute" and run ten soak minutes in a moment.
//!
//! Invariant: every byte allocated is written (the buffers are filled with a non-zero pattern),
//! so the pages are resident and the process's real RSS grows by what was planted; the buffers
//! live until the hook is dropped at the end of the soak. Not for production use: it exists so the
//! leak detector can be tested against real measurements of real allocations.

use std::time::Duration;

/// A planted leak of `mib_per_min` MiB per minute of soak time.
#[derive(Debug)]
pub struct PlantedLeak {
    mib_per_min: f64,
    /// Soak time up to which the leak has been planted.
    until: Option<Duration>,
    /// Bytes owed but not yet allocated (fractions of a byte carried over).
    owed: f64,
    held: Vec<Box<[u8]>>,
}

impl PlantedLeak {
    /// A leak of `mib_per_min` MiB per soak minute (must be finite and ≥ 0).
    pub fn new(mib_per_min: f64) -> PlantedLeak {
        PlantedLeak {
            mib_per_min,
            until: None,
            owed: 0.0,
            held: Vec::new(),
        }
    }

    /// Allocates what the leak owes for soak time up to `now` (nothing on the first call, which
    /// only sets the starting point).
    pub fn advance(&mut self, now: Duration) {
        let Some(since) = self.until.replace(now) else {
            return;
        };
        let minutes = now.saturating_sub(since).as_secs_f64() / 60.0;
        self.owed += minutes * self.mib_per_min * (1u64 << 20) as f64;
        let bytes = self.owed.floor();
        if bytes >= 1.0 {
            self.owed -= bytes;
            // Filled with a non-zero byte: every page is written, hence resident.
            let buf = vec![0xA5u8; bytes as usize].into_boxed_slice();
            self.held.push(std::hint::black_box(buf));
        }
    }

    /// Bytes held so far.
    pub fn held_bytes(&self) -> u64 {
        self.held.iter().map(|b| b.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_planted_amount() {
        let mut leak = PlantedLeak::new(1.0);
        leak.advance(Duration::from_secs(30));
        assert_eq!(leak.held_bytes(), 0);
        for i in 1..=12 {
            leak.advance(Duration::from_secs(30 + 5 * i));
        }
        // One soak minute later: 1 MiB, to within the rounding of each 5 s share.
        assert!((leak.held_bytes() as i64 - (1 << 20)).abs() <= 12);
        assert!(leak.held.iter().all(|b| b.iter().all(|&x| x == 0xA5)));
    }
}
