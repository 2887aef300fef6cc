//! The results store: every run, measurement, latency histogram, time series and event, in one
//! SQLite file (default `results/rawrxd.sqlite`, or `$RAWRXD_RESULTS`).
//!
//! Invariants:
//! - Writes are incremental and durable against a crash of the writing process: the database is in
//!   WAL mode and every `record*` call is its own committed transaction, so a `kill -9` loses
//!   nothing recorded before it. (`synchronous=NORMAL`: an operating-system crash or power loss may
//!   still drop the last few commits.)
//! - Every row carries the configuration generation it was recorded under.
//! - A run left `running` by a process that no longer exists (same host, pid and process start
//!   time gone) is marked `interrupted` when a store is opened and before runs are read, with
//!   `ended_at` set to its last recorded activity.
//! - Several processes may share a database (SQLite locking, 5 s busy timeout); a `Store` itself
//!   is `Send` but not `Sync`.

mod clock;
mod compare;
mod error;
mod export;
mod hash;
mod histogram;
mod provenance;
mod query;
mod reopen;
mod run;
mod schema;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use rusqlite::{params, Connection};
use serde_json::Value;

pub use clock::{iso8601, now};
pub use compare::{compare, direction, CompareOptions, CompareRow, Comparison, Direction, Verdict};
pub use error::StoreError;
pub use export::{export, ExportFormat};
pub use hash::sha256_hex;
pub use histogram::{HistogramSummary, PERCENTILES};
pub use provenance::{git_commit, host_name, rawrxd_version};
pub use run::{Event, Measurement, Run, RunFilter, RunId, RunInfo, RunStatus, SeriesPoint, Tags};
pub use schema::SCHEMA_VERSION;
pub use stats::{student_t_two_sided_p, welch_t_test, Summary, WelchTest};

use crate::{Error, Result};

/// Environment variable naming the database file, overriding `results/rawrxd.sqlite`.
pub const RESULTS_ENV: &str = "RAWRXD_RESULTS";

/// An open results database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    generation: AtomicU64,
}

/// Attaches the database path to SQLite errors.
pub(crate) trait DbResultExt<T> {
    fn db(self, path: &Path) -> Result<T>;
}

impl<T> DbResultExt<T> for rusqlite::Result<T> {
    fn db(self, path: &Path) -> Result<T> {
        self.map_err(|source| {
            Error::from(StoreError::Sqlite {
                path: path.to_path_buf(),
                source,
            })
        })
    }
}

impl Store {
    /// The database path used when none is given: `$RAWRXD_RESULTS`, else `results/rawrxd.sqlite`.
    pub fn default_path() -> PathBuf {
        match std::env::var_os(RESULTS_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from("results").join("rawrxd.sqlite"),
        }
    }

    /// Opens the database at [`Store::default_path`].
    pub fn open_default() -> Result<Store> {
        Store::open(Store::default_path())
    }

    /// Opens (creating it and its parent directories when missing) the database at `path`, brings
    /// its schema up to date and marks runs of dead processes `interrupted`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut conn = Connection::open(&path).db(&path)?;
        conn.busy_timeout(Duration::from_secs(5)).db(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL").db(&path)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .db(&path)?;
        conn.pragma_update(None, "foreign_keys", "ON").db(&path)?;
        schema::migrate(&mut conn, &path)?;
        let store = Store {
            conn,
            path,
            generation: AtomicU64::new(0),
        };
        store.reconcile()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        schema::version(&self.conn, &self.path)
    }

    /// Sets the configuration generation stamped on every row recorded from now on (the Lua host
    /// bumps it on each successful hot reload).
    pub fn set_config_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::Relaxed);
    }

    /// The configuration generation stamped on new rows.
    pub fn config_generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn generation_i64(&self) -> i64 {
        i64::try_from(self.config_generation()).unwrap_or(i64::MAX)
    }

    /// Begins a run: stores its provenance with status `running` and returns its id. Hashes the
    /// model file when `info.model_path` is set and `info.model_sha256` is not.
    pub fn begin_run(&self, info: RunInfo) -> Result<RunId> {
        let model_sha256 = match (&info.model_sha256, &info.model_path) {
            (Some(h), _) => Some(h.clone()),
            (None, Some(p)) => Some(self.file_sha256(p)?),
            (None, None) => None,
        };
        let params = if info.params.is_null() {
            "{}".to_string()
        } else {
            info.params.to_string()
        };
        let generation = i64::try_from(info.config_generation).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "INSERT INTO runs (phase, name, rawrxd_version, git_commit, host, pid, pid_start,
                                   device, driver, model_path, model_sha256, variant, params,
                                   config_generation, started_at, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                         'running')",
                params![
                    info.phase,
                    info.name,
                    provenance::rawrxd_version(),
                    provenance::git_commit(),
                    provenance::host_name(),
                    i64::from(std::process::id()),
                    provenance::own_start_time().map(|t| t as i64),
                    info.device,
                    info.driver,
                    info.model_path
                        .as_ref()
                        .map(|p| p.to_string_lossy().into_owned()),
                    model_sha256,
                    info.variant,
                    params,
                    generation,
                    clock::now(),
                ],
            )
            .db(&self.path)?;
        self.set_config_generation(info.config_generation);
        Ok(RunId(self.conn.last_insert_rowid()))
    }

    /// Records one value, committed before returning. `tags` may be empty.
    pub fn record(
        &self,
        run: RunId,
        name: &str,
        value: f64,
        unit: &str,
        tags: &Tags,
    ) -> Result<()> {
        if !value.is_finite() {
            return Err(StoreError::Invalid(format!(
                "run {run}: measurement '{name}': value {value} is not a finite number"
            ))
            .into());
        }
        let tags = Value::Object(tags.clone()).to_string();
        self.conn
            .prepare_cached(
                "INSERT INTO measurements (run_id, name, value, unit, tags, config_generation, ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run.0,
                    name,
                    value,
                    unit,
                    tags,
                    self.generation_i64(),
                    clock::now()
                ])
            })
            .map_err(|e| self.insert_error(run, e))?;
        Ok(())
    }

    /// Records a latency (or other) histogram, serialized in HdrHistogram's V2 (deflate) format,
    /// committed before returning. Several histograms of one name in a run are merged on read.
    pub fn record_histogram(
        &self,
        run: RunId,
        name: &str,
        unit: &str,
        hist: &Histogram<u64>,
    ) -> Result<()> {
        let blob = histogram::serialize(hist)
            .map_err(|msg| StoreError::Invalid(format!("run {run}: histogram '{name}': {msg}")))?;
        self.conn
            .prepare_cached(
                "INSERT INTO histograms (run_id, name, unit, config_generation, ts, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run.0,
                    name,
                    unit,
                    self.generation_i64(),
                    clock::now(),
                    blob
                ])
            })
            .map_err(|e| self.insert_error(run, e))?;
        Ok(())
    }

    /// Records one point of a time series (`ts` in seconds since the epoch), committed before
    /// returning.
    pub fn record_series(&self, run: RunId, name: &str, ts: f64, value: f64) -> Result<()> {
        if !value.is_finite() || !ts.is_finite() {
            return Err(StoreError::Invalid(format!(
                "run {run}: series '{name}': point ({ts}, {value}) is not finite"
            ))
            .into());
        }
        self.conn
            .prepare_cached("INSERT INTO series (run_id, name, ts, value) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![run.0, name, ts, value]))
            .map_err(|e| self.insert_error(run, e))?;
        Ok(())
    }

    /// Records an event or alert with a JSON payload, committed before returning.
    pub fn record_event(&self, run: RunId, kind: &str, payload: &Value) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO events (run_id, ts, kind, payload) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![run.0, clock::now(), kind, payload.to_string()]))
            .map_err(|e| self.insert_error(run, e))?;
        Ok(())
    }

    /// Ends a run with `status` (`ok`, `failed` or `interrupted`) and an optional error text.
    pub fn end_run(&self, run: RunId, status: RunStatus, error: Option<&str>) -> Result<()> {
        if status == RunStatus::Running {
            return Err(StoreError::Invalid(format!(
                "run {run}: cannot end a run with status 'running'"
            ))
            .into());
        }
        let n = self
            .conn
            .execute(
                "UPDATE runs SET status = ?2, error = ?3, ended_at = ?4 WHERE id = ?1",
                params![run.0, status.as_str(), error, clock::now()],
            )
            .db(&self.path)?;
        if n == 0 {
            return Err(StoreError::NoSuchRun(run.0).into());
        }
        Ok(())
    }

    /// Marks runs whose process has died `interrupted`; returns how many were marked.
    pub fn reconcile(&self) -> Result<usize> {
        let candidates: Vec<(i64, String, i64, Option<i64>)> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT id, host, pid, pid_start FROM runs WHERE status = 'running'",
                )
                .db(&self.path)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .db(&self.path)?;
            rows.collect::<rusqlite::Result<_>>().db(&self.path)?
        };
        let mut marked = 0;
        for (id, host, pid, pid_start) in candidates {
            if !provenance::run_owner_is_dead(&host, pid, pid_start) {
                continue;
            }
            // `status = 'running'` again: the owner may have ended it between the two statements.
            marked += self
                .conn
                .execute(
                    "UPDATE runs SET status = 'interrupted',
                         error = ?2,
                         ended_at = max(started_at, coalesce((SELECT max(ts) FROM (
                             SELECT ts FROM measurements WHERE run_id = ?1
                             UNION ALL SELECT ts FROM histograms WHERE run_id = ?1
                             UNION ALL SELECT ts FROM series WHERE run_id = ?1
                             UNION ALL SELECT ts FROM events WHERE run_id = ?1)), started_at))
                     WHERE id = ?1 AND status = 'running'",
                    params![
                        id,
                        format!("process {pid} on {host} exited without ending the run")
                    ],
                )
                .db(&self.path)?;
        }
        Ok(marked)
    }

    /// A foreign-key failure on insert means the run does not exist; say so instead of quoting
    /// SQLite.
    fn insert_error(&self, run: RunId, e: rusqlite::Error) -> Error {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY {
                return StoreError::NoSuchRun(run.0).into();
            }
        }
        StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        }
        .into()
    }
}

#[cfg(test)]
mod tests;
