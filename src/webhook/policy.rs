//! How hard delivery tries: per-request timeout, number of tries, exponential backoff, queue
//! bound and parallelism.

use std::time::Duration;

/// Delivery settings of a [`super::Dispatcher`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    /// Attempts per notification, the first included (≥ 1).
    pub tries: u32,
    /// Wait after the first failed attempt; doubles after each further one.
    pub backoff_base: Duration,
    /// Upper bound of one wait (also caps a server's `Retry-After`).
    pub backoff_max: Duration,
    /// Limit of one HTTP request, connect to end of response.
    pub timeout: Duration,
    /// Notifications waiting to be sent, at most; beyond it the oldest is dropped.
    pub queue_capacity: usize,
    /// Deliveries in progress at once (a hanging endpoint holds one slot, not the queue).
    pub concurrency: usize,
    /// How long dropping the dispatcher waits for queued notifications to go out.
    pub drop_grace: Duration,
}

impl Default for DeliveryPolicy {
    /// 3 tries, 0.5 s base backoff capped at 30 s, 10 s timeout, 256 queued, 4 in flight, 2 s
    /// grace on drop.
    fn default() -> Self {
        DeliveryPolicy {
            tries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            queue_capacity: 256,
            concurrency: 4,
            drop_grace: Duration::from_secs(2),
        }
    }
}

impl DeliveryPolicy {
    /// The wait after failed attempt `attempt` (1-based): `base · 2^(attempt−1)`, at most
    /// `backoff_max`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.backoff_base
            .checked_mul(factor)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }

    /// The same policy with every bound at least 1 (0 tries, slots or capacity make no sense).
    pub(crate) fn sane(mut self) -> Self {
        self.tries = self.tries.max(1);
        self.queue_capacity = self.queue_capacity.max(1);
        self.concurrency = self.concurrency.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = DeliveryPolicy {
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(3),
            ..DeliveryPolicy::default()
        };
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_millis(1000));
        assert_eq!(p.backoff(3), Duration::from_millis(2000));
        assert_eq!(p.backoff(4), Duration::from_secs(3));
        assert_eq!(p.backoff(100), Duration::from_secs(3));
    }
}
