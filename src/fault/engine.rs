//! [`FaultyEngine`]: a [`BatchEngine`] wrapper whose steps fail or stall on command, and
//! [`FaultSwitch`], the shared handle that commands it.
//!
//! The switch is armed from the pool's side (any thread); the engine consults it on the
//! scheduler thread at the start of every `forward_batch`:
//! - *lost*: every step fails with [`Error::DeviceLost`] until the engine is dropped (a lost
//!   device does not come back; the engine must be rebuilt);
//! - *refuse_kv*: the next step that starts a new sequence (an item at position 0, i.e. a KV
//!   slot being filled from scratch) fails with [`Error::OutOfMemory`] — the whole step fails,
//!   as a refused allocation would fail the batch it was made for;
//! - *stall*: the next step that starts a new sequence first blocks for the armed duration, or
//!   until [`FaultSwitch::release_stall`] (called when the request it was aimed at gives up), so a
//!   test never waits out a long stall.
//!
//! Everything else is passed through unchanged, so an unarmed `FaultyEngine` computes exactly
//! what the engine it wraps computes.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::engine::{BatchEngine, BatchItem, Engine, HeapUsage, MemoryUsage};
use crate::model::LlamaHParams;
use crate::quant::GgmlType;
use crate::{Error, Result};

/// State of the stall fault.
#[derive(Default)]
struct Stall {
    armed: Option<Duration>,
    active: bool,
    release: bool,
}

/// Commands for a [`FaultyEngine`]; see the module header.
#[derive(Default)]
pub struct FaultSwitch {
    lost: AtomicBool,
    refuse_kv: AtomicU32,
    stall: Mutex<Stall>,
    wake: Condvar,
    stalls: AtomicU64,
}

impl std::fmt::Debug for FaultSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultSwitch")
            .field("lost", &self.is_lost())
            .field("refuse_kv", &self.refuse_kv.load(Ordering::Relaxed))
            .finish()
    }
}

impl FaultSwitch {
    fn lock(&self) -> MutexGuard<'_, Stall> {
        // The stall state is a few plain fields, consistent after any panic.
        self.stall.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loses the device: every later step fails.
    pub fn lose_device(&self) {
        self.lost.store(true, Ordering::Release);
        self.release_stall();
    }

    /// Whether the device was lost.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Refuses the KV allocation of the next new sequence.
    pub fn refuse_kv(&self) {
        self.refuse_kv.fetch_add(1, Ordering::AcqRel);
    }

    /// Stalls the next step that starts a new sequence for `stall` at most.
    pub fn arm_stall(&self, stall: Duration) {
        self.lock().armed = Some(stall);
    }

    /// Ends a stall in progress and disarms a pending one.
    pub fn release_stall(&self) {
        let mut s = self.lock();
        s.armed = None;
        if s.active {
            s.release = true;
            self.wake.notify_all();
        }
    }

    /// Steps stalled so far.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// Applies the armed faults to a step; `new_sequence` says whether it starts one.
    fn before_step(&self, new_sequence: bool) -> Result<()> {
        if self.is_lost() {
            return Err(Error::DeviceLost("injected by the fault plan".into()));
        }
        if !new_sequence {
            return Ok(());
        }
        let refused = self
            .refuse_kv
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            return Err(Error::OutOfMemory(
                "KV cache slot allocation refused (injected by the fault plan)".into(),
            ));
        }
        let mut s = self.lock();
        let Some(stall) = s.armed.take() else {
            return Ok(());
        };
        self.stalls.fetch_add(1, Ordering::Relaxed);
        s.active = true;
        s.release = false;
        let until = Instant::now() + stall;
        while !s.release {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .wake
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        s.active = false;
        s.release = false;
        drop(s);
        // A device lost during the stall fails the step.
        if self.is_lost() {
            return Err(Error::DeviceLost("injected by the fault plan".into()));
        }
        Ok(())
    }
}

/// A batch engine obeying a [`FaultSwitch`]; see the module header.
pub struct FaultyEngine {
    inner: Box<dyn BatchEngine>,
    switch: std::sync::Arc<FaultSwitch>,
}

impl FaultyEngine {
    /// Wraps `inner`, commanded by `switch`.
    pub fn new(inner: Box<dyn BatchEngine>, switch: std::sync::Arc<FaultSwitch>) -> FaultyEngine {
        FaultyEngine { inner, switch }
    }
}

impl Engine for FaultyEngine {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn hparams(&self) -> &LlamaHParams {
        self.inner.hparams()
    }
    fn n_ctx(&self) -> usize {
        self.inner.n_ctx()
    }
    fn forward(&mut self, tokens: &[u32], pos: usize, all_logits: bool) -> Result<Vec<f32>> {
        self.switch.before_step(pos == 0)?;
        self.inner.forward(tokens, pos, all_logits)
    }
    fn reset(&mut self) {
        self.inner.reset()
    }
    fn device_name(&self) -> String {
        self.inner.device_name()
    }
    fn memory(&self) -> MemoryUsage {
        self.inner.memory()
    }
    fn decode_weight_bytes(&self) -> u64 {
        self.inner.decode_weight_bytes()
    }
    fn peak_bandwidth(&self) -> Option<f64> {
        self.inner.peak_bandwidth()
    }
    fn take_profile_report(&mut self) -> Option<String> {
        self.inner.take_profile_report()
    }
    fn memory_heaps(&self) -> Vec<HeapUsage> {
        self.inner.memory_heaps()
    }
    fn can_replace_tensors(&self) -> bool {
        self.inner.can_replace_tensors()
    }
    fn replace_tensor(&mut self, name: &str, ty: GgmlType, bytes: &[u8]) -> Result<()> {
        self.inner.replace_tensor(name, ty, bytes)
    }
}

impl BatchEngine for FaultyEngine {
    fn n_slots(&self) -> usize {
        self.inner.n_slots()
    }
    fn forward_batch(&mut self, items: &[BatchItem<'_>]) -> Result<Vec<Vec<f32>>> {
        self.switch
            .before_step(items.iter().any(|item| item.pos == 0))?;
        self.inner.forward_batch(items)
    }
    fn clear_slot(&mut self, slot: usize) {
        self.inner.clear_slot(slot)
    }
    fn prepare(&mut self) -> Result<()> {
        self.inner.prepare()
    }
    fn pass_rows(&self) -> Option<usize> {
        self.inner.pass_rows()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn switch_faults_in_order() {
        let s = FaultSwitch::default();
        assert!(s.before_step(true).is_ok());
        s.refuse_kv();
        // A step without a new sequence does not take the refusal.
        assert!(s.before_step(false).is_ok());
        let e = s.before_step(true).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory(_)), "{e}");
        assert!(s.before_step(true).is_ok());
        s.lose_device();
        assert!(matches!(s.before_step(false), Err(Error::DeviceLost(_))));
    }

    #[test]
    fn stall_ends_on_release() {
        let s = Arc::new(FaultSwitch::default());
        s.arm_stall(Duration::from_secs(600));
        let t = {
            let s = s.clone();
            std::thread::spawn(move || s.before_step(true))
        };
        while s.stalls() == 0 {
            std::thread::yield_now();
        }
        s.release_stall();
        assert!(t.join().unwrap().is_ok());
        // Disarmed: the next step runs at once.
        assert!(s.before_step(true).is_ok());
        assert_eq!(s.stalls(), 1);
    }
}
