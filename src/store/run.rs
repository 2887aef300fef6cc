//! The records the store holds: runs and what was measured in them.
//!
//! These are plain values; reading and writing them is `Store`'s business. JSON-typed fields
//! (`params`, `tags`, `payload`) are `serde_json` values so scripts can put anything there.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Free-form labels on a measurement (`{"concurrency": 8, "prompt": 512}`).
pub type Tags = Map<String, Value>;

/// The id of a run in one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RunId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        s.trim()
            .parse::<i64>()
            .map(RunId)
            .map_err(|_| Error::Invalid(format!("run id: expected an integer, got '{s}'")))
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Begun and not ended; the process that owns it is (as far as can be told) alive.
    Running,
    /// Ended normally.
    Ok,
    /// Ended with an error.
    Failed,
    /// Its process died (crash, kill, Ctrl-C) before ending it; everything recorded before is kept.
    Interrupted,
}

impl RunStatus {
    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "running" => Ok(RunStatus::Running),
            "ok" => Ok(RunStatus::Ok),
            "failed" => Ok(RunStatus::Failed),
            "interrupted" => Ok(RunStatus::Interrupted),
            _ => Err(Error::Invalid(format!(
                "run status: expected running, ok, failed or interrupted, got '{s}'"
            ))),
        }
    }
}

/// What the caller knows about a run when beginning it. The store adds the rest of the provenance
/// (rawrxd version and commit, host, process, start time, and the model hash when only the path is
/// given).
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The kind of run: `phase1`, `phase2-soak`, `bench`, ….
    pub phase: String,
    /// A name within the phase (often the variant).
    pub name: String,
    /// The device the run measures (`NVIDIA H100 80GB HBM3`, `llvmpipe`, `cpu`).
    pub device: Option<String>,
    /// The driver name and version.
    pub driver: Option<String>,
    /// The model file.
    pub model_path: Option<PathBuf>,
    /// The model file's SHA-256 (hex); computed from `model_path` when absent.
    pub model_sha256: Option<String>,
    /// The quantization variant or scheme name.
    pub variant: Option<String>,
    /// Run parameters (prompt length, concurrency, …) as a JSON value.
    pub params: Value,
    /// The configuration generation the run starts under (the Lua host bumps it on hot reload).
    pub config_generation: u64,
}

impl RunInfo {
    /// A run of `phase` named `name` with no further provenance.
    pub fn new(phase: impl Into<String>, name: impl Into<String>) -> Self {
        RunInfo {
            phase: phase.into(),
            name: name.into(),
            params: Value::Object(Map::new()),
            ..RunInfo::default()
        }
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// See [`RunInfo::phase`].
    pub phase: String,
    /// See [`RunInfo::name`].
    pub name: String,
    /// `CARGO_PKG_VERSION` of the rawrxd that ran it.
    pub rawrxd_version: String,
    /// The git commit of that rawrxd, or `unknown`.
    pub git_commit: String,
    /// The host name.
    pub host: String,
    /// The process id that ran it.
    pub pid: i64,
    /// See [`RunInfo::device`].
    pub device: Option<String>,
    /// See [`RunInfo::driver`].
    pub driver: Option<String>,
    /// See [`RunInfo::model_path`].
    pub model_path: Option<String>,
    /// SHA-256 of the model file (hex).
    pub model_sha256: Option<String>,
    /// See [`RunInfo::variant`].
    pub variant: Option<String>,
    /// See [`RunInfo::params`].
    pub params: Value,
    /// The configuration generation at the start of the run.
    pub config_generation: i64,
    /// Start time, seconds since the Unix epoch.
    pub started_at: f64,
    /// End time, seconds since the Unix epoch; for an interrupted run, the last recorded activity.
    pub ended_at: Option<f64>,
    /// Where it stands.
    pub status: RunStatus,
    /// The error of a failed or interrupted run.
    pub error: Option<String>,
}

/// One recorded value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// The run it belongs to.
    pub run_id: RunId,
    /// What was measured (`tg_tps`, `vram_mb`, …).
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit (`tok/s`, `ms`, `MB`); empty when dimensionless.
    pub unit: String,
    /// Free-form labels. `sd` and `n` tags, when present, say the value is a mean of `n` samples
    /// with standard deviation `sd` (used by `compare`).
    pub tags: Tags,
    /// The configuration generation it was measured under.
    pub config_generation: i64,
    /// When it was recorded, seconds since the Unix epoch.
    pub ts: f64,
}

/// One point of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Seconds since the Unix epoch.
    pub ts: f64,
    /// The value.
    pub value: f64,
}

/// An event or alert raised during a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The run it belongs to.
    pub run_id: RunId,
    /// When it happened, seconds since the Unix epoch.
    pub ts: f64,
    /// Its kind (`alert`, `reload`, `fault`, …).
    pub kind: String,
    /// Details.
    pub payload: Value,
}

/// Which runs `Store::list_runs` returns.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs of this phase.
    pub phase: Option<String>,
    /// Only runs with this name.
    pub name: Option<String>,
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// At most this many (newest first).
    pub limit: Option<usize>,
}
