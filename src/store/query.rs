//! Reading the store back: runs, measurements, histograms (merged), series and events.
//!
//! Every read of runs first reconciles dead `running` runs, so a crashed run is never shown as
//! still in progress.

use hdrhistogram::Histogram;
use rusqlite::{params, Row, ToSql};
use serde_json::{Map, Value};

use super::error::StoreError;
use super::histogram;
use super::run::{Event, Measurement, Run, RunFilter, RunId, RunStatus, SeriesPoint};
use super::{DbResultExt, Store};
use crate::Result;

const RUN_COLUMNS: &str = "id, phase, name, rawrxd_version, git_commit, host, pid, device, driver,
     model_path, model_sha256, variant, params, config_generation, started_at, ended_at, status,
     error";

/// A run row with its JSON and status columns still undecoded.
struct RawRun {
    run: Run,
    params: String,
    status: String,
}

fn raw_run(r: &Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        run: Run {
            id: RunId(r.get(0)?),
            phase: r.get(1)?,
            name: r.get(2)?,
            rawrxd_version: r.get(3)?,
            git_commit: r.get(4)?,
            host: r.get(5)?,
            pid: r.get(6)?,
            device: r.get(7)?,
            driver: r.get(8)?,
            model_path: r.get(9)?,
            model_sha256: r.get(10)?,
            variant: r.get(11)?,
            params: Value::Null,
            config_generation: r.get(13)?,
            started_at: r.get(14)?,
            ended_at: r.get(15)?,
            status: RunStatus::Running,
            error: r.get(17)?,
        },
        params: r.get(12)?,
        status: r.get(16)?,
    })
}

fn decode_run(raw: RawRun) -> Result<Run> {
    let mut run = raw.run;
    run.params = parse_json(run.id, "params", &raw.params)?;
    run.status = raw.status.parse().map_err(|_| StoreError::Corrupt {
        run: run.id.0,
        what: "status".into(),
        msg: format!("unknown status '{}'", raw.status),
    })?;
    Ok(run)
}

fn parse_json(run: RunId, what: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt {
            run: run.0,
            what: what.to_string(),
            msg: e.to_string(),
        }
        .into()
    })
}

impl Store {
    /// Runs matching `filter`, newest first.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        self.reconcile()?;
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE 1=1");
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        if let Some(p) = &filter.phase {
            args.push(Box::new(p.clone()));
            sql += &format!(" AND phase = ?{}", args.len());
        }
        if let Some(n) = &filter.name {
            args.push(Box::new(n.clone()));
            sql += &format!(" AND name = ?{}", args.len());
        }
        if let Some(s) = filter.status {
            args.push(Box::new(s.as_str()));
            sql += &format!(" AND status = ?{}", args.len());
        }
        sql += " ORDER BY id DESC";
        if let Some(l) = filter.limit {
            args.push(Box::new(i64::try_from(l).unwrap_or(i64::MAX)));
            sql += &format!(" LIMIT ?{}", args.len());
        }
        let mut stmt = self.conn.prepare(&sql).db(&self.path)?;
        let raws = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), raw_run)
            .db(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.path)?;
        raws.into_iter().map(decode_run).collect()
    }

    /// The run `id`.
    pub fn run(&self, id: RunId) -> Result<Run> {
        self.reconcile()?;
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
            .db(&self.path)?;
        let mut rows = stmt.query_map([id.0], raw_run).db(&self.path)?;
        match rows.next() {
            Some(raw) => decode_run(raw.db(&self.path)?),
            None => Err(StoreError::NoSuchRun(id.0).into()),
        }
    }

    /// Every measurement of `run`, in recording order.
    pub fn measurements(&self, run: RunId) -> Result<Vec<Measurement>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, value, unit, tags, config_generation, ts FROM measurements
                 WHERE run_id = ?1 ORDER BY id",
            )
            .db(&self.path)?;
        let rows = stmt
            .query_map([run.0], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, f64>(5)?,
                ))
            })
            .db(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.path)?;
        rows.into_iter()
            .map(|(name, value, unit, tags, config_generation, ts)| {
                let tags = match parse_json(run, "measurement tags", &tags)? {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                Ok(Measurement {
                    run_id: run,
                    name,
                    value,
                    unit,
                    tags,
                    config_generation,
                    ts,
                })
            })
            .collect()
    }

    /// `(name, unit)` of each histogram recorded in `run`, in first-recorded order.
    pub fn histogram_names(&self, run: RunId) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, unit FROM histograms WHERE run_id = ?1
                 GROUP BY name ORDER BY min(id)",
            )
            .db(&self.path)?;
        let rows = stmt
            .query_map([run.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .db(&self.path)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().db(&self.path)
    }

    /// The histogram `name` of `run` (all recordings of that name merged), or `None` when the run
    /// recorded none.
    pub fn histogram(&self, run: RunId, name: &str) -> Result<Option<Histogram<u64>>> {
        self.merged_histogram(&[run], name)
    }

    /// The histograms named `name` in all of `runs`, merged into one; `None` when none exist.
    pub fn merged_histogram(&self, runs: &[RunId], name: &str) -> Result<Option<Histogram<u64>>> {
        let mut acc = None;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT data FROM histograms WHERE run_id = ?1 AND name = ?2 ORDER BY id",
            )
            .db(&self.path)?;
        for &run in runs {
            let blobs = stmt
                .query_map(params![run.0, name], |r| r.get::<_, Vec<u8>>(0))
                .db(&self.path)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .db(&self.path)?;
            for blob in blobs {
                let corrupt = |msg| StoreError::Corrupt {
                    run: run.0,
                    what: format!("histogram '{name}'"),
                    msg,
                };
                let h = histogram::deserialize(&blob).map_err(corrupt)?;
                histogram::merge_into(&mut acc, h).map_err(corrupt)?;
            }
        }
        Ok(acc)
    }

    /// Names of the time series recorded in `run`.
    pub fn series_names(&self, run: RunId) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT name FROM series WHERE run_id = ?1 ORDER BY name")
            .db(&self.path)?;
        let rows = stmt.query_map([run.0], |r| r.get(0)).db(&self.path)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().db(&self.path)
    }

    /// The points of series `name` in `run`, by time.
    pub fn series(&self, run: RunId, name: &str) -> Result<Vec<SeriesPoint>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts, value FROM series WHERE run_id = ?1 AND name = ?2 ORDER BY ts, id",
            )
            .db(&self.path)?;
        let rows = stmt
            .query_map(params![run.0, name], |r| {
                Ok(SeriesPoint {
                    ts: r.get(0)?,
                    value: r.get(1)?,
                })
            })
            .db(&self.path)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().db(&self.path)
    }

    /// The events of `run`, by time.
    pub fn events(&self, run: RunId) -> Result<Vec<Event>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts, kind, payload FROM events WHERE run_id = ?1 ORDER BY ts, id",
            )
            .db(&self.path)?;
        let rows = stmt
            .query_map([run.0], |r| {
                Ok((
                    r.get::<_, f64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .db(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.path)?;
        rows.into_iter()
            .map(|(ts, kind, payload)| {
                Ok(Event {
                    run_id: run,
                    ts,
                    kind,
                    payload: parse_json(run, "event payload", &payload)?,
                })
            })
            .collect()
    }
}
