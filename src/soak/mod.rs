//! Soak runs (Phase 2): a steady pool load for hours, sampled every few seconds, with a leak
//! verdict per memory kind from a fitted slope — not from start-versus-end.
//!
//! [`run`] keeps the load of [`SoakConfig::load`] (the pool's own closed or open loop, against any
//! pool [`Target`]) going for [`SoakConfig::duration`] of soak time. Every `probe_interval` it
//! takes a [`Sample`]: the engine's own memory accounting, device heap usage
//! (VK_EXT_memory_budget), vendor sysfs VRAM, RSS and CPU of this process, output tokens/s and
//! request counts over the interval, and the current leak fit; it streams the sample to the store
//! as series points and hands it to [`SoakHooks::on_sample`] (the Lua host's safe point: hot
//! reload, alert rules). Every `checkpoint_interval` it writes a checkpoint (measurements,
//! histograms, event). See [`record`] for the store layout and [`regression`] for the verdict.
//!
//! Invariants:
//! - memory stays bounded for any duration: per-interval counts, HdrHistograms reset at each
//!   checkpoint, O(1) running least squares per memory kind and segment; samples go to the store;
//! - samples after a (re)start are fitted only once `warmup` has passed in that process;
//! - every sample and checkpoint is committed when written (a `kill -9` loses none); the run ends
//!   `ok` (duration reached, or `on_sample` asked to stop), `interrupted` (cancelled: Ctrl-C), or
//!   `failed` (the load, a hook or the store failed); a killed process's run is reconciled as
//!   `interrupted` by the store, and [`SoakStart::Resume`] continues it (same run, soak time
//!   carried on, a new segment of the fit);
//! - soak time comes from a [`SoakClock`]: real, or virtual for tests (see [`TestHooks`]).
//!
//! Threading: `run` must be polled inside a multi-threaded tokio runtime (it spawns the pool
//! and may be driven with `block_on` on a thread that owns non-`Send` state, such as a Lua state:
//! hooks are called on the thread polling `run`).

pub mod clock;
pub mod config;
pub mod interrupt;
pub mod leak_hook;
pub mod probe;
pub mod progress;
pub mod record;
pub mod regression;
pub mod sample;
mod summary;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use clock::SoakClock;
pub use config::{SoakConfig, TestHooks};
pub use interrupt::InterruptGuard;
pub use probe::{EngineMemory, ProcessProbe, MB};
pub use record::{ResumeState, SOAK_PHASE};
pub use regression::{LeakEstimate, SlopeFit, Verdict, DEFAULT_THRESHOLD_MB_PER_H};
pub use sample::{Sample, MEMORY_KINDS};
pub use summary::SoakSummary;

use leak_hook::PlantedLeak;
use progress::StatusLine;
use sample::{CountingTarget, SharedInterval};

pub use crate::pool::CancellationToken;

use crate::pool::{run_observed, PoolConfig, RequestSource, Target};
use crate::store::{RunId, RunInfo, RunStatus, Store};
use crate::{Error, Result};

/// What a hook tells the soak after a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// End the soak now (status `ok`).
    Stop,
}

/// Called at every sample, on the thread polling [`run`].
pub trait SoakHooks {
    /// Called once the soak's run exists (begun or reopened), before the load starts. An error
    /// fails the soak.
    fn on_start(&mut self, _run: RunId) -> Result<()> {
        Ok(())
    }

    /// Sees `sample` (already stored). An error fails the soak.
    fn on_sample(&mut self, sample: &Sample) -> Result<Flow>;
}

impl SoakHooks for () {
    fn on_sample(&mut self, _: &Sample) -> Result<Flow> {
        Ok(Flow::Continue)
    }
}

/// Whether a soak begins a new run or resumes one.
#[derive(Clone, Debug)]
pub enum SoakStart {
    /// A new run with this provenance (its phase is set to [`SOAK_PHASE`]).
    New(RunInfo),
    /// Continue the soak run with this id (interrupted, failed or ended).
    Resume(RunId),
}

/// What a soak loads: the target, and where its engine's memory figures come from (`None` for a
/// target that is not in this process, such as an HTTP server).
#[derive(Clone)]
pub struct SoakTarget {
    /// Where requests go.
    pub target: Arc<dyn Target>,
    /// The engine's memory accounting, if it is in-process.
    pub memory: Option<Arc<dyn EngineMemory>>,
}

/// Why the loop stopped.
enum Stop {
    Done,
    Hook,
    Interrupted,
    Failed(Error),
}

/// Everything that changes from sample to sample.
struct Sampler<'a> {
    config: &'a SoakConfig,
    memory: Option<Arc<dyn EngineMemory>>,
    probe: ProcessProbe,
    interval: SharedInterval,
    tokens: Arc<AtomicU64>,
    last_tokens: u64,
    last_real: Instant,
    segment_start: Duration,
    fits: HashMap<String, SlopeFit>,
    leak: Option<PlantedLeak>,
    index: u64,
    requests_ok: u64,
    requests_failed: u64,
}

impl Sampler<'_> {
    fn sample(&mut self, clock: &SoakClock) -> Sample {
        let elapsed = clock.elapsed();
        if let Some(leak) = &mut self.leak {
            leak.advance(elapsed);
        }
        let (rss, cpu) = self.probe.read();
        let mb = |b: Option<u64>| b.map(|b| b as f64 / MB);
        let vram_own_mb = mb(self.memory.as_ref().and_then(|m| m.own_bytes()));
        let vram_heap_used_mb = mb(self.memory.as_ref().and_then(|m| m.heap_used_bytes()));
        let rss_mb = mb(rss);
        let (ok, failed, errors) = self.interval.take_counts();
        self.requests_ok += ok;
        self.requests_failed += failed;
        let tokens = self.tokens.load(Ordering::Relaxed);
        let dt = self.last_real.elapsed().as_secs_f64();
        let tokens_per_s = if dt > 0.0 {
            (tokens - self.last_tokens) as f64 / dt
        } else {
            0.0
        };
        self.last_tokens = tokens;
        self.last_real = Instant::now();
        let warming_up = elapsed.saturating_sub(self.segment_start) < self.config.warmup;
        let x = elapsed.as_secs_f64() / 3600.0;
        let mut leak = BTreeMap::new();
        for (kind, value) in [
            ("vram_own", vram_own_mb),
            ("vram_heap_used", vram_heap_used_mb),
            ("rss", rss_mb),
        ] {
            if let (Some(y), false) = (value, warming_up) {
                self.fits.entry(kind.into()).or_default().add(x, y);
            }
            if let Some(e) = self
                .fits
                .get(kind)
                .and_then(|f| f.estimate(self.config.leak_threshold_mb_per_h))
            {
                leak.insert(kind.to_string(), e);
            }
        }
        let s = Sample {
            index: self.index,
            ts: clock.unix_s(elapsed),
            elapsed_s: elapsed.as_secs_f64(),
            vram_own_mb,
            vram_heap_used_mb,
            gpu_sysfs_used_mb: mb(probe::gpu_sysfs_used()),
            rss_mb,
            cpu_pct: cpu,
            tokens_per_s,
            requests_ok: self.requests_ok,
            requests_failed: self.requests_failed,
            interval_ok: ok,
            interval_failed: failed,
            interval_errors: errors,
            leak,
            warming_up,
            checkpoint: None,
            planted_leak_mb: self.leak.as_ref().map(|l| l.held_bytes() as f64 / MB),
        };
        self.index += 1;
        s
    }
}

/// Begins or reopens the run; returns it with the state to continue from.
fn start_run(store: &Store, start: SoakStart, config: &SoakConfig) -> Result<(RunId, ResumeState)> {
    match start {
        SoakStart::New(mut info) => {
            info.phase = SOAK_PHASE.into();
            if info.params.is_null() || info.params.as_object().is_some_and(|m| m.is_empty()) {
                info.params = serde_json::to_value(config).unwrap_or_default();
            }
            let run = store.begin_run(info)?;
            record::record_segment(store, run, 0, Duration::ZERO)?;
            Ok((
                run,
                ResumeState {
                    segments: 1,
                    ..ResumeState::default()
                },
            ))
        }
        SoakStart::Resume(run) => {
            let mut state = record::read_resume_state(store, run, config.warmup)?;
            store.reopen_run(run)?;
            record::record_segment(store, run, state.segments, state.elapsed)?;
            state.segments += 1;
            for fit in state.fits.values_mut() {
                fit.new_segment();
            }
            Ok((run, state))
        }
    }
}

/// Runs a soak; see the module header. `cancel` ends it as `interrupted` (wire Ctrl-C to it with
/// an [`InterruptGuard`]). Errors of the load, the hooks or the store end the run `failed` and
/// are returned; the summary is returned otherwise.
pub async fn run(
    store: &Store,
    start: SoakStart,
    target: SoakTarget,
    source: RequestSource,
    config: &SoakConfig,
    hooks: &mut dyn SoakHooks,
    cancel: CancellationToken,
) -> Result<SoakSummary> {
    config.validate()?;
    let resumed = matches!(start, SoakStart::Resume(_));
    let (run_id, state) = start_run(store, start, config)?;
    if let Err(e) = hooks.on_start(run_id) {
        let _ = store.end_run(run_id, RunStatus::Failed, Some(&e.to_string()));
        return Err(e);
    }
    let mut clock = if config.test_hooks.virtual_clock {
        SoakClock::virtual_from(state.elapsed)
    } else {
        SoakClock::real(state.elapsed)
    };
    let started = Instant::now();
    let tokens = Arc::new(AtomicU64::new(0));
    let interval = SharedInterval::default();
    let mut sampler = Sampler {
        config,
        memory: target.memory.clone(),
        probe: ProcessProbe::new(),
        interval: interval.clone(),
        tokens: tokens.clone(),
        last_tokens: 0,
        last_real: Instant::now(),
        segment_start: state.elapsed,
        fits: state.fits.clone(),
        leak: config.test_hooks.leak_mb_per_min.map(PlantedLeak::new),
        index: state.samples,
        requests_ok: state.requests_ok,
        requests_failed: state.requests_failed,
    };
    if let Some(leak) = &mut sampler.leak {
        leak.advance(clock.elapsed());
    }

    // The load: the pool's own loop, observed, for the remaining soak time plus slack (it is
    // cancelled when the soak ends).
    let remaining = config.duration.saturating_sub(state.elapsed);
    let mut pool_config = PoolConfig::new(
        config.load.clone(),
        remaining + config.probe_interval + Duration::from_secs(60),
    );
    pool_config.request_timeout = config.request_timeout;
    let pool_cancel = CancellationToken::new();
    let counting: Arc<dyn Target> = Arc::new(CountingTarget::new(target.target, tokens.clone()));
    let observer_interval = interval.clone();
    let observer: crate::pool::RecordObserver = Arc::new(move |r| observer_interval.observe(r));
    let mut pool = {
        let (cancel, mut source) = (pool_cancel.clone(), source);
        tokio::spawn(async move {
            run_observed(counting, &mut source, &pool_config, cancel, Some(observer)).await
        })
    };
    let mut pool_running = true;

    let status_line = StatusLine::new(config.progress);
    let ci = config.checkpoint_interval;
    let next_multiple = |t: Duration| {
        let k = (t.as_secs_f64() / ci.as_secs_f64()).floor() + 1.0;
        ci.mul_f64(k)
    };
    let mut next_checkpoint = next_multiple(state.elapsed);
    let mut checkpoints = state.checkpoints;
    let mut next_tick = (state.elapsed + config.probe_interval).min(config.duration);
    let mut last: Option<Sample> = None;
    let stop = loop {
        if clock.elapsed() >= config.duration && last.is_some() {
            break Stop::Done;
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break Stop::Interrupted,
            joined = &mut pool, if pool_running => {
                pool_running = false;
                match joined {
                    Ok(Ok(_)) => continue, // the load ended early (its own deadline); keep sampling
                    Ok(Err(e)) => break Stop::Failed(e),
                    Err(e) => break Stop::Failed(Error::Invalid(format!("the load task failed: {e}"))),
                }
            }
            _ = clock.wait_until(next_tick) => {}
        }
        let mut s = sampler.sample(&clock);
        let elapsed = clock.elapsed();
        if let Err(e) = record::record_sample(store, run_id, &s) {
            break Stop::Failed(e);
        }
        if elapsed >= next_checkpoint {
            checkpoints += 1;
            s.checkpoint = Some(checkpoints);
            if let Err(e) = record::record_checkpoint(store, run_id, checkpoints, &s, &interval) {
                break Stop::Failed(e);
            }
            next_checkpoint = next_multiple(elapsed);
        }
        status_line.update(&s, config.duration);
        let flow = hooks.on_sample(&s);
        last = Some(s);
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => break Stop::Hook,
            Err(e) => break Stop::Failed(e),
        }
        while next_tick <= elapsed {
            next_tick += config.probe_interval;
        }
        next_tick = next_tick.min(config.duration);
    };
    status_line.finish();

    // Stop the load; requests in flight end as cancelled (not failures).
    pool_cancel.cancel();
    let pool_result = if pool_running {
        match pool.await {
            Ok(Ok(r)) => Some(r),
            Ok(Err(e)) => {
                log::warn!(target: "rawrxd::soak", "the load ended with an error: {e}");
                None
            }
            Err(e) => {
                log::warn!(target: "rawrxd::soak", "the load task failed: {e}");
                None
            }
        }
    } else {
        None
    };
    // An interrupt between samples gets a last sample of its own.
    let last = match last {
        Some(s) if matches!(stop, Stop::Done | Stop::Hook) => s,
        _ => {
            let s = sampler.sample(&clock);
            let _ = record::record_sample(store, run_id, &s);
            s
        }
    };
    let (status, reason, error) = match &stop {
        Stop::Done => (RunStatus::Ok, "duration reached".to_string(), None),
        Stop::Hook => (RunStatus::Ok, "stopped by on_sample".to_string(), None),
        Stop::Interrupted => (RunStatus::Interrupted, "interrupted".to_string(), None),
        Stop::Failed(e) => (RunStatus::Failed, e.to_string(), Some(e.to_string())),
    };
    let ended = record::record_end(store, run_id, &last, &interval, status.as_str(), &reason)
        .and_then(|()| store.end_run(run_id, status, error.as_deref()));
    if let Stop::Failed(e) = stop {
        if let Err(end_error) = ended {
            log::warn!(target: "rawrxd::soak", "cannot end run {run_id}: {end_error}");
        }
        return Err(e);
    }
    ended?;
    let wall = started.elapsed().as_secs_f64();
    let tokens = tokens.load(Ordering::Relaxed);
    Ok(SoakSummary {
        run_id,
        status,
        reason,
        resumed,
        segments: state.segments,
        elapsed_s: last.elapsed_s,
        samples: last.index + 1,
        checkpoints,
        requests_ok: last.requests_ok,
        requests_failed: last.requests_failed,
        tokens,
        tokens_per_s: if wall > 0.0 {
            tokens as f64 / wall
        } else {
            0.0
        },
        threshold_mb_per_h: config.leak_threshold_mb_per_h,
        leak: last.leak.clone(),
        last,
        pool: pool_result.map(|r| r.table()),
    })
}
