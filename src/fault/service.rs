//! [`ManagedEngine`]: the in-process engine behind a fault run — a [`ModelService`] built on a
//! [`FaultyEngine`], torn down and rebuilt from the model file after a device loss.
//!
//! Life cycle: the engine runs as *generation* 1. A device loss (injected, or a step failing
//! with "device lost" for real) marks the generation lost; every step on it fails from then on.
//! Under [`DeviceLossPolicy::Reinit`] the first report of the loss starts a rebuild on its own
//! thread: the state becomes `Rebuilding` (new requests wait for it), the lost generation is
//! dropped (its scheduler stops once the requests still holding it let go), and the model is
//! loaded again — up to the retry policy's attempts, with its backoff, if a load fails (an
//! injected `alloc_failure` at stage `load` refuses loads). Success makes generation n+1
//! current; failure, or [`DeviceLossPolicy::GiveUp`], leaves the engine `Dead`.
//!
//! Recovery time of a loss: from the moment the device was lost (teardown begins) to the first
//! token served by a later generation. Every loss is kept in [`ManagedEngine::losses`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::engine::{FaultSwitch, FaultyEngine};
use super::policy::{DeviceLossPolicy, RetryPolicy};
use crate::engine::batch::load_batch_engine;
use crate::engine::service::{ModelService, ServiceConfig};
use crate::gguf::GgufFile;
use crate::model::chat::ChatTemplate;
use crate::model::tokenizer::Tokenizer;
use crate::pool::{Endpoint, EngineTarget};
use crate::{Error, Result};

/// What to load, and how to serve it.
#[derive(Clone, Debug)]
pub struct EngineSpec {
    /// The model file (loaded again on every rebuild).
    pub model: PathBuf,
    /// Backend, slots, context, scheduler settings.
    pub config: ServiceConfig,
    /// How pool requests are shaped.
    pub endpoint: Endpoint,
}

impl EngineSpec {
    /// The spec of an already loaded service (threads: one per core).
    pub fn of_service(service: &ModelService, endpoint: Endpoint) -> EngineSpec {
        let s = service.scheduler();
        EngineSpec {
            model: service.path().to_path_buf(),
            config: ServiceConfig {
                backend: s.backend().parse().unwrap_or(crate::engine::Backend::Auto),
                n_ctx: s.n_ctx(),
                slots: s.n_slots(),
                threads: None,
                scheduler: s.config().clone(),
            },
            endpoint,
        }
    }
}

/// One loaded engine.
#[derive(Debug)]
pub struct Generation {
    /// 1 for the first load, +1 per rebuild.
    pub number: u64,
    /// Requests go here.
    pub target: Arc<EngineTarget>,
    /// Its fault commands.
    pub switch: Arc<FaultSwitch>,
}

/// Whether the engine can take requests.
#[derive(Clone, Debug)]
pub enum EngineState {
    /// Serving.
    Ready(Arc<Generation>),
    /// Being loaded again after a device loss.
    Rebuilding,
    /// Gone for good; the reason.
    Dead(String),
}

/// One device loss and the recovery from it. Times are seconds since the manager started.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeviceLoss {
    /// The generation lost.
    pub generation: u64,
    /// The request whose fault caused it (`None`: a real loss noticed through a failure).
    pub request: Option<u64>,
    /// When the device was lost.
    pub lost_s: f64,
    /// When the rebuilt engine was ready (`None`: not rebuilt).
    pub rebuilt_s: Option<f64>,
    /// When a rebuilt engine served its first token (`None`: never).
    pub first_token_s: Option<f64>,
    /// Loss → first token served again, ms.
    pub recovery_ms: Option<f64>,
    /// Loads that failed during the rebuild.
    pub load_failures: u32,
    /// Why recovery did not happen, if it did not.
    pub error: Option<String>,
}

/// The engine of a fault run; see the module header.
pub struct ManagedEngine {
    spec: EngineSpec,
    policy: DeviceLossPolicy,
    retry: RetryPolicy,
    state: watch::Sender<EngineState>,
    origin: Instant,
    losses: Mutex<Vec<DeviceLoss>>,
    /// Whether some loss still waits for its first token.
    awaiting: AtomicBool,
    refuse_loads: AtomicU32,
    next_generation: AtomicU64,
    context_tokens: usize,
}

impl std::fmt::Debug for ManagedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedEngine")
            .field("spec", &self.spec)
            .field("policy", &self.policy)
            .finish()
    }
}

/// Loads generation `number` of `spec`.
fn load_generation(spec: &EngineSpec, number: u64) -> Result<Generation> {
    let file = Arc::new(GgufFile::open(&spec.model)?);
    let tokenizer = Arc::new(Tokenizer::from_gguf(&file)?);
    let chat = ChatTemplate::from_gguf(&file);
    let c = &spec.config;
    let engine = load_batch_engine(c.backend, file, c.n_ctx, c.slots, c.threads)?;
    let switch = Arc::new(FaultSwitch::default());
    let engine = Box::new(FaultyEngine::new(engine, switch.clone()));
    let id = spec
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = id.strip_suffix(".gguf").unwrap_or(&id).to_string();
    let service = ModelService::new(engine, tokenizer, chat, id, c.scheduler.clone())?;
    Ok(Generation {
        number,
        target: Arc::new(EngineTarget::new(Arc::new(service), spec.endpoint)),
        switch,
    })
}

impl ManagedEngine {
    /// Loads `spec` as generation 1. `retry` also bounds the loads of a rebuild.
    pub fn load(
        spec: EngineSpec,
        policy: DeviceLossPolicy,
        retry: RetryPolicy,
    ) -> Result<Arc<ManagedEngine>> {
        retry.validate()?;
        let first = load_generation(&spec, 1)?;
        let context_tokens = first.target.service().scheduler().n_ctx();
        let (state, _) = watch::channel(EngineState::Ready(Arc::new(first)));
        Ok(Arc::new(ManagedEngine {
            spec,
            policy,
            retry,
            state,
            origin: Instant::now(),
            losses: Mutex::new(Vec::new()),
            awaiting: AtomicBool::new(false),
            refuse_loads: AtomicU32::new(0),
            next_generation: AtomicU64::new(2),
            context_tokens,
        }))
    }

    /// Positions per sequence.
    pub fn context_tokens(&self) -> usize {
        self.context_tokens
    }

    /// A description for reports.
    pub fn describe(&self) -> String {
        match &*self.state.borrow() {
            EngineState::Ready(g) => format!(
                "{} [fault-injected, generation {}]",
                crate::pool::Target::describe(g.target.as_ref()),
                g.number
            ),
            EngineState::Rebuilding => "engine (rebuilding)".into(),
            EngineState::Dead(why) => format!("engine (dead: {why})"),
        }
    }

    /// The state now.
    pub fn state(&self) -> EngineState {
        self.state.borrow().clone()
    }

    /// The serving generation, waiting while a rebuild runs; `Err` with the reason when dead.
    pub async fn current(&self) -> std::result::Result<Arc<Generation>, String> {
        let mut rx = self.state.subscribe();
        let state = rx
            .wait_for(|s| !matches!(s, EngineState::Rebuilding))
            .await
            .map(|s| s.clone())
            .map_err(|_| "the engine manager is gone".to_string())?;
        match state {
            EngineState::Ready(g) => Ok(g),
            EngineState::Dead(why) => Err(why),
            EngineState::Rebuilding => Err("still rebuilding".into()),
        }
    }

    fn since_origin(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.origin).as_secs_f64()
    }

    fn losses(&self) -> std::sync::MutexGuard<'_, Vec<DeviceLoss>> {
        self.losses.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every device loss so far.
    pub fn device_losses(&self) -> Vec<DeviceLoss> {
        self.losses().clone()
    }

    /// Refuses the next `count` engine loads with an out-of-memory error.
    pub fn refuse_loads(&self, count: u32) {
        self.refuse_loads.fetch_add(count, Ordering::AcqRel);
    }

    /// Loses the device of `generation` because of request `request`'s fault, and handles it.
    pub fn inject_device_loss(self: &Arc<Self>, generation: &Generation, request: u64) {
        generation.switch.lose_device();
        self.device_lost(generation, Some(request));
    }

    /// Handles the loss of `generation`'s device (idempotent: only the first report of a
    /// generation counts). Returns at once; a rebuild runs on its own thread.
    pub fn device_lost(self: &Arc<Self>, generation: &Generation, request: Option<u64>) {
        generation.switch.lose_device();
        let now = Instant::now();
        let mut taken = false;
        self.state.send_if_modified(|s| match s {
            EngineState::Ready(g) if g.number == generation.number => {
                *s = match self.policy {
                    DeviceLossPolicy::Reinit => EngineState::Rebuilding,
                    DeviceLossPolicy::GiveUp => EngineState::Dead(format!(
                        "the device was lost (generation {}) and on_device_loss = give_up",
                        g.number
                    )),
                };
                taken = true;
                true
            }
            _ => false,
        });
        if !taken {
            return;
        }
        log::warn!(
            "fault: device lost (generation {}){}",
            generation.number,
            if self.policy == DeviceLossPolicy::Reinit {
                "; rebuilding the engine"
            } else {
                "; giving up"
            }
        );
        let index = {
            let mut losses = self.losses();
            losses.push(DeviceLoss {
                generation: generation.number,
                request,
                lost_s: self.since_origin(now),
                error: (self.policy == DeviceLossPolicy::GiveUp)
                    .then(|| "on_device_loss = give_up".to_string()),
                ..DeviceLoss::default()
            });
            losses.len() - 1
        };
        if self.policy == DeviceLossPolicy::GiveUp {
            return;
        }
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("rawrxd-fault-rebuild".into())
            .spawn(move || this.rebuild(index));
        if let Err(e) = spawned {
            self.finish_rebuild(
                index,
                Err(Error::Invalid(format!("cannot rebuild: {e}"))),
                0,
            );
        }
    }

    /// Loads the next generation (on the rebuild thread).
    fn rebuild(&self, index: usize) {
        let mut failures = 0;
        let mut outcome = Err(Error::Invalid("no load attempted".into()));
        for attempt in 1..=self.retry.max_attempts {
            if attempt > 1 {
                std::thread::sleep(self.retry.backoff_before(attempt));
            }
            let refused = self
                .refuse_loads
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            let number = self.next_generation.fetch_add(1, Ordering::AcqRel);
            outcome = if refused {
                Err(Error::OutOfMemory(
                    "engine load refused (injected by the fault plan)".into(),
                ))
            } else {
                load_generation(&self.spec, number)
            };
            match &outcome {
                Ok(_) => break,
                Err(e) => {
                    failures += 1;
                    log::warn!("fault: rebuild attempt {attempt} failed: {e}");
                }
            }
        }
        self.finish_rebuild(index, outcome, failures);
    }

    fn finish_rebuild(&self, index: usize, outcome: Result<Generation>, failures: u32) {
        let now = self.since_origin(Instant::now());
        {
            let mut losses = self.losses();
            if let Some(loss) = losses.get_mut(index) {
                loss.load_failures = failures;
                match &outcome {
                    Ok(_) => loss.rebuilt_s = Some(now),
                    Err(e) => loss.error = Some(e.to_string()),
                }
            }
            // Under the lock, so `note_token` cannot overwrite it with a stale answer.
            if outcome.is_ok() {
                self.awaiting.store(true, Ordering::Release);
            }
        }
        match outcome {
            Ok(g) => {
                log::info!("fault: engine rebuilt as generation {}", g.number);
                self.state.send_replace(EngineState::Ready(Arc::new(g)));
            }
            Err(e) => {
                self.state
                    .send_replace(EngineState::Dead(format!("the rebuild failed: {e}")));
            }
        }
    }

    /// Notes a token served by `generation` at `at`: the first one after a rebuild ends the
    /// recovery of the losses before it.
    pub fn note_token(&self, generation: u64, at: Instant) {
        if !self.awaiting.load(Ordering::Acquire) {
            return;
        }
        let at_s = self.since_origin(at);
        let mut losses = self.losses();
        let mut waiting = false;
        for loss in losses.iter_mut() {
            if loss.first_token_s.is_none() && loss.rebuilt_s.is_some() {
                if loss.generation < generation {
                    loss.first_token_s = Some(at_s);
                    loss.recovery_ms = Some((at_s - loss.lost_s).max(0.0) * 1e3);
                } else {
                    waiting = true;
                }
            }
        }
        self.awaiting.store(waiting, Ordering::Release);
        drop(losses);
    }

    /// Ends every stall in progress (at the end of a run).
    pub fn release_stalls(&self) {
        if let EngineState::Ready(g) = &*self.state.borrow() {
            g.switch.release_stall();
        }
    }

    /// Seconds since the manager started.
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
}
