//! Fault runs from Lua: `rawrxd.pool.run{…, faults = {…}, retry = {…}, on_device_loss = …}`.
//!
//! Fields (see lib-lua/types/rawrxd.lua for the full shape):
//! - `faults`: a list of `{kind = …, <trigger>, <options>}` plus `seed` (for `probability`) and
//!   `step_timeout_ms` (default 5000). Kinds: `device_loss`, `alloc_failure` (`stage = "kv"`
//!   default, or `"load"` with `count`), `step_timeout` (`stall_ms`, default twice the step
//!   timeout), `cancel` (`after_tokens`, default 1), `malformed`, `slow_client` (`delay_ms`,
//!   default 50). Triggers (exactly one): `at_request = k` (the k-th request, 1-based like the
//!   request function's argument), `every = n` (requests n, 2n, …), `probability = p`,
//!   `at_s = t` (once, on the first request started at or after t seconds).
//! - `retry = {max_attempts = 3, backoff_ms = 50}` (default: 1 attempt, no retry).
//! - `on_device_loss = "reinit"` (default) or `"give_up"`.
//!
//! Engine faults (device loss, allocation, step stall) need the in-process engine: the engine is
//! loaded for the run wrapped in the fault injector (a `rawrxd.pool.engine` target is loaded
//! again from its file with its settings). Client-side faults work against HTTP targets too.
//!
//! The result is the pool's result plus `faults` (the [`FaultReport`]: outcomes, reasons,
//! `loss_pct`, `device_losses`, `recovery_ms`, `e2e_all`/`e2e_ok`/`ttft_ok`, `events`,
//! `requests`, `table`), with `outcomes` and `loss_pct` also at the top level. Stored, when a
//! results run is open: the pool's measurements, and `NAME.outcome_{ok,retried_ok,failed,
//! cancelled}` (count), `NAME.failed` per `reason` tag (count), `NAME.loss_pct` (%),
//! `NAME.recovery_ms` per device loss (tag `loss`), `NAME.e2e_all_{p50,p95,p99}` and
//! `NAME.e2e_ok_{…}` (ms); one `fault` event per injected fault and one `device_loss` event per
//! loss.

use std::time::Duration;

use mlua::{Lua, LuaSerdeExt, Table, Value};
use serde_json::{json, Map, Value as Json};

use super::error::lua_err;
use super::pool::{drive_job, engine_spec_of, result_doc, store, target_of, Job, Source};
use super::results::with_current_run;
use crate::fault::{
    run_with_faults, AllocStage, DeviceLossPolicy, FaultKind, FaultPlan, FaultReport, FaultTarget,
    ManagedEngine, RetryPolicy, Trigger,
};
use crate::pool::{CancellationToken, Endpoint, PoolConfig, PoolResult};
use crate::Error;

/// What `run` already parsed.
pub(super) struct FaultJob {
    pub endpoint: Endpoint,
    pub config: PoolConfig,
    pub name: String,
    pub tags: Map<String, Json>,
}

fn invalid(msg: impl std::fmt::Display) -> mlua::Error {
    lua_err(Error::Invalid(format!("rawrxd.pool.run: {msg}")))
}

fn millis(v: Option<f64>, field: &str) -> mlua::Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(ms) => Duration::try_from_secs_f64(ms / 1e3)
            .ok()
            .filter(|d| !d.is_zero())
            .map(Some)
            .ok_or_else(|| {
                invalid(format!(
                    "'{field}' must be a positive number of ms, got {ms}"
                ))
            }),
    }
}

/// Fails on keys of `t` not in `known`.
fn check_keys(t: &Table, known: &[&str], what: &str) -> mlua::Result<()> {
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        if let Value::Integer(_) = k {
            continue;
        }
        let key = k.to_string()?;
        if !known.contains(&key.as_str()) {
            return Err(invalid(format!(
                "{what}: unknown field '{key}' (expected one of {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

const FAULT_FIELDS: &[&str] = &[
    "kind",
    "at_request",
    "every",
    "probability",
    "at_s",
    "stage",
    "count",
    "stall_ms",
    "after_tokens",
    "delay_ms",
];

/// The plan of a `faults` table.
fn plan_of(v: Value) -> mlua::Result<FaultPlan> {
    let t = match v {
        Value::Nil => return Ok(FaultPlan::new(0)),
        Value::Table(t) => t,
        other => {
            return Err(invalid(format!(
                "'faults' must be a table, got {}",
                other.type_name()
            )))
        }
    };
    check_keys(&t, &["seed", "step_timeout_ms"], "faults")?;
    let mut plan = FaultPlan::new(t.get::<Option<u64>>("seed")?.unwrap_or(0));
    if let Some(d) = millis(t.get("step_timeout_ms")?, "faults.step_timeout_ms")? {
        plan.step_timeout = d;
    }
    for (i, f) in t.sequence_values::<Table>().enumerate() {
        let f = f.map_err(|e| invalid(format!("faults[{}]: expected a table ({e})", i + 1)))?;
        let at = |msg: String| invalid(format!("faults[{}]: {msg}", i + 1));
        check_keys(&f, FAULT_FIELDS, &format!("faults[{}]", i + 1))?;
        let at_request: Option<u64> = f.get("at_request")?;
        let every: Option<u64> = f.get("every")?;
        let probability: Option<f64> = f.get("probability")?;
        let at_s: Option<f64> = f.get("at_s")?;
        let trigger = match (at_request, every, probability, at_s) {
            (Some(0), None, None, None) => {
                return Err(at("'at_request' counts from 1".into()));
            }
            (Some(k), None, None, None) => Trigger::AtRequest(k - 1),
            (None, Some(n), None, None) => Trigger::Every(n),
            (None, None, Some(p), None) => Trigger::Probability(p),
            (None, None, None, Some(s)) => Trigger::AtTime(
                Duration::try_from_secs_f64(s)
                    .map_err(|_| at(format!("'at_s' must be seconds ≥ 0, got {s}")))?,
            ),
            _ => {
                return Err(at(
                    "give exactly one of at_request, every, probability, at_s".into(),
                ))
            }
        };
        let kind: String = f
            .get::<Option<String>>("kind")?
            .ok_or_else(|| at("'kind' is required".into()))?;
        let kind = match kind.as_str() {
            "device_loss" => FaultKind::DeviceLoss,
            "alloc_failure" => FaultKind::AllocFailure {
                stage: match f.get::<Option<String>>("stage")?.as_deref() {
                    None | Some("kv") => AllocStage::Kv,
                    Some("load") => AllocStage::Load,
                    Some(other) => {
                        return Err(at(format!("stage '{other}' (expected kv or load)")))
                    }
                },
                count: f.get::<Option<u32>>("count")?.unwrap_or(1),
            },
            "step_timeout" => FaultKind::StepTimeout {
                stall: millis(f.get("stall_ms")?, "stall_ms")?
                    .unwrap_or(plan.step_timeout.saturating_mul(2)),
            },
            "cancel" => FaultKind::Cancel {
                after_tokens: f.get::<Option<u32>>("after_tokens")?.unwrap_or(1),
            },
            "malformed" => FaultKind::Malformed,
            "slow_client" => FaultKind::SlowClient {
                delay: millis(f.get("delay_ms")?, "delay_ms")?.unwrap_or(Duration::from_millis(50)),
            },
            other => {
                return Err(at(format!(
                    "kind '{other}' (expected device_loss, alloc_failure, step_timeout, \
                     cancel, malformed or slow_client)"
                )))
            }
        };
        plan = plan.with(kind, trigger);
    }
    plan.validate().map_err(lua_err)?;
    Ok(plan)
}

fn retry_of(v: Value) -> mlua::Result<RetryPolicy> {
    let t = match v {
        Value::Nil => return Ok(RetryPolicy::default()),
        Value::Table(t) => t,
        other => {
            return Err(invalid(format!(
                "'retry' must be a table, got {}",
                other.type_name()
            )))
        }
    };
    check_keys(&t, &["max_attempts", "backoff_ms"], "retry")?;
    let policy = RetryPolicy {
        max_attempts: t.get::<Option<u32>>("max_attempts")?.unwrap_or(3),
        backoff: millis(t.get("backoff_ms")?, "retry.backoff_ms")?.unwrap_or(Duration::ZERO),
    };
    policy.validate().map_err(lua_err)?;
    Ok(policy)
}

/// Runs a fault run; see the module header.
pub(super) fn run(lua: &Lua, opts: &Table, source: Source, job: FaultJob) -> mlua::Result<Value> {
    let plan = plan_of(opts.get("faults")?)?;
    let retry = retry_of(opts.get("retry")?)?;
    let policy: DeviceLossPolicy = match opts.get::<Option<String>>("on_device_loss")? {
        Some(s) => s.parse().map_err(lua_err)?,
        None => DeviceLossPolicy::default(),
    };
    let target = match engine_spec_of(opts, job.endpoint)? {
        Some(spec) => {
            let engine = ManagedEngine::load(spec, policy, retry.clone()).map_err(lua_err)?;
            FaultTarget::engine(engine, plan, retry)
        }
        None => {
            let http = target_of(opts, job.endpoint)?;
            FaultTarget::client_side(http, None, plan, retry).map_err(lua_err)?
        }
    };
    let config = job.config.clone();
    let run_target = target.clone();
    let drive: Job<(PoolResult, FaultReport)> = Box::new(move |mut source| {
        Box::pin(async move {
            run_with_faults(&run_target, &mut source, &config, CancellationToken::new()).await
        })
    });
    let (result, report) = drive_job(lua, source, drive)?;
    let mut stored = store(lua, &result, &job.name, &job.tags)?;
    stored |= store_report(lua, &report, &job.name, &job.tags)?;
    let mut doc = result_doc(&result);
    let mut faults = serde_json::to_value(&report).map_err(invalid)?;
    faults["table"] = json!(report.table());
    faults["recovery_ms"] = json!(report.recovery_ms());
    doc["outcomes"] = json!(report.outcomes);
    doc["loss_pct"] = json!(report.loss_pct);
    doc["faults"] = faults;
    let value = lua.to_value(&doc)?;
    if let Value::Table(t) = &value {
        t.set("stored", stored)?;
    }
    Ok(value)
}

/// Records `report` into the open results run, if any. Returns whether it did.
fn store_report(
    lua: &Lua,
    report: &FaultReport,
    name: &str,
    tags: &Map<String, Json>,
) -> mlua::Result<bool> {
    let stored = with_current_run(lua, |store, run| {
        let o = &report.outcomes;
        for (k, n) in [
            ("ok", o.ok),
            ("retried_ok", o.retried_ok),
            ("failed", o.failed),
            ("cancelled", o.cancelled),
        ] {
            store.record(run, &format!("{name}.outcome_{k}"), n as f64, "count", tags)?;
        }
        for (reason, n) in &report.failed_by_reason {
            let mut t = tags.clone();
            t.insert("reason".into(), json!(reason));
            store.record(run, &format!("{name}.failed"), *n as f64, "count", &t)?;
        }
        store.record(run, &format!("{name}.loss_pct"), report.loss_pct, "%", tags)?;
        for (k, loss) in report.device_losses.iter().enumerate() {
            if let Some(ms) = loss.recovery_ms {
                let mut t = tags.clone();
                t.insert("loss".into(), json!(k + 1));
                store.record(run, &format!("{name}.recovery_ms"), ms, "ms", &t)?;
            }
            store.record_event(run, "device_loss", &json!(loss))?;
        }
        for (label, p) in [("e2e_all", &report.e2e_all), ("e2e_ok", &report.e2e_ok)] {
            if p.count == 0 {
                continue;
            }
            for (q, v) in [("p50", p.p50), ("p95", p.p95), ("p99", p.p99)] {
                store.record(run, &format!("{name}.{label}_{q}"), v, "ms", tags)?;
            }
        }
        for e in &report.events {
            store.record_event(run, "fault", &json!(e))?;
        }
        Ok(())
    })?;
    Ok(stored.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_errors_name_the_fault() {
        let lua = Lua::new();
        let v: Value = lua
            .load(
                r#"return { {kind="device_loss", at_request=20}, {kind="malformed", every=10},
                   {kind="cancel", probability=0.05}, {kind="slow_client", every=7, delay_ms=5},
                   {kind="alloc_failure", at_request=3, stage="load", count=2},
                   {kind="step_timeout", every=15, stall_ms=300}, seed=1, step_timeout_ms=100 }"#,
            )
            .eval()
            .unwrap();
        let plan = plan_of(v).unwrap();
        assert_eq!(plan.faults.len(), 6);
        assert_eq!(plan.seed, 1);
        assert_eq!(plan.step_timeout, Duration::from_millis(100));
        assert_eq!(plan.faults[0].trigger, Trigger::AtRequest(19));
        assert_eq!(
            plan.faults[4].kind,
            FaultKind::AllocFailure {
                stage: AllocStage::Load,
                count: 2
            }
        );
        for (src, want) in [
            (
                "return { {kind='melt', every=1} }",
                "faults[1]: kind 'melt'",
            ),
            ("return { {kind='cancel'} }", "exactly one of"),
            (
                "return { {kind='cancel', every=2, at_request=3} }",
                "exactly one of",
            ),
            ("return { {kind='cancel', at_request=0} }", "counts from 1"),
            ("return { {kind='cancel', evry=2} }", "unknown field 'evry'"),
            ("return { sed=3 }", "unknown field 'sed'"),
            (
                "return { {kind='cancel', probability=2} }",
                "fault 1 (cancel)",
            ),
        ] {
            let v: Value = lua.load(src).eval().unwrap();
            let e = plan_of(v).unwrap_err().to_string();
            assert!(e.contains(want), "{src}: {e}");
        }
        let r: Value = lua.load("return {max_attempts=0}").eval().unwrap();
        assert!(retry_of(r).is_err());
    }

    /// Client-side faults and retries over HTTP against the fake server (no model needed).
    #[test]
    fn http_run_with_client_faults_and_retries_accounts_every_request() {
        use crate::lua::Host;
        use crate::pool::fake::{FakeConfig, FakeServer};
        use crate::store::{RunFilter, Store};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let config = FakeConfig {
            error_rate: 0.3,
            seed: 5,
            ..FakeConfig::default()
        };
        let server = rt.block_on(FakeServer::start(config)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.sqlite");
        let script = format!(
            r#"
            local rx = require "rawrxd"
            rx.results.open({db:?})
            rx.results.begin_run {{ phase = "test", name = "faults" }}
            local ok, err = pcall(rx.pool.run, {{ target = "{url}", concurrency = 1, requests = 2,
              prompt = "p", faults = {{ {{ kind = "device_loss", at_request = 1 }} }} }})
            assert(not ok and tostring(err):find("in%-process engine"), tostring(err))
            local r = rx.pool.run {{
              target = "{url}", concurrency = 2, requests = 20, max_tokens = 3, prompt = "p",
              faults = {{ {{ kind = "cancel", at_request = 4 }},
                          {{ kind = "slow_client", every = 3, delay_ms = 1 }}, seed = 2 }},
              retry = {{ max_attempts = 6, backoff_ms = 1 }}, name = "f",
            }}
            local f, o = r.faults, r.outcomes
            assert(o.ok + o.retried_ok + o.failed + o.cancelled == 20, f.table)
            assert(f.sent == 20 and r.loss_pct == f.loss_pct)
            assert(o.cancelled == 1 and f.cancelled_by_reason.client_cancel == 1, f.table)
            assert(f.requests[4].outcome == "cancelled", f.requests[4].outcome)
            assert(o.retried_ok > 0 and f.retried_by_reason.http_500 == o.retried_ok, f.table)
            assert(f.injected.slow_client == 6 and f.injected.cancel == 1, f.table)
            local attempts = 0
            for _, q in ipairs(f.requests) do attempts = attempts + q.attempts end
            rx.results.end_run()
            return attempts
            "#,
            url = server.base_url()
        );
        let path = dir.path().join("plan.lua");
        std::fs::write(&path, script).unwrap();
        let attempts = Host::new(&path, &[]).unwrap().run().unwrap();
        // The server's own count is the oracle for the attempts the accounting reports.
        let served = server
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(attempts as u64, served);
        assert!(
            served > 20,
            "with a 30 % error rate some requests were retried"
        );
        let store = Store::open(&db).unwrap();
        let run = store.list_runs(&RunFilter::default()).unwrap()[0].id;
        let ms = store.measurements(run).unwrap();
        let value = |name: &str| ms.iter().find(|m| m.name == name).map(|m| m.value);
        assert_eq!(value("f.outcome_cancelled"), Some(1.0));
        assert!(value("f.loss_pct").is_some());
        let events = store.events(run).unwrap();
        assert_eq!(events.iter().filter(|e| e.kind == "fault").count(), 7);
    }
}
