//! Fault injection against the in-process CPU engine (SmolLM2 test model, tiny generations):
//! outcomes add up to the requests sent, per-kind counts match what the plan's pure decision
//! function predicts (the oracle), device losses rebuild the engine, retries turn transient
//! faults into `retried_ok`, step timeouts end without hanging, slow clients do not hold up
//! other streams, malformed requests get clear errors.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rawrxd::engine::scheduler::SchedulerConfig;
use rawrxd::engine::service::ServiceConfig;
use rawrxd::engine::Backend;
use rawrxd::fault::{
    run_with_faults, AllocStage, DeviceLossPolicy, EngineSpec, EngineState, FaultKind, FaultPlan,
    FaultReport, FaultTarget, ManagedEngine, Outcome, RetryPolicy, Trigger,
};
use rawrxd::pool::{
    CancellationToken, Endpoint, Load, PoolConfig, PoolResult, Request, RequestSource,
};

fn engine(
    slots: usize,
    policy: DeviceLossPolicy,
    retry: RetryPolicy,
) -> Option<Arc<ManagedEngine>> {
    let model = common::test_model()?;
    let spec = EngineSpec {
        model,
        config: ServiceConfig {
            backend: Backend::Cpu,
            n_ctx: 128,
            slots,
            threads: Some(2),
            scheduler: SchedulerConfig::default(),
        },
        endpoint: Endpoint::Completions,
    };
    Some(ManagedEngine::load(spec, policy, retry).unwrap())
}

fn source(max_tokens: u32) -> RequestSource {
    let prompts = ["The capital of France is", "Once upon a time", "1, 2, 3,"];
    RequestSource::from_fn(move |i| {
        let mut r = Request::text(prompts[i as usize % prompts.len()], max_tokens);
        r.temperature = Some(0.0);
        r.extra
            .insert("ignore_eos".into(), serde_json::Value::Bool(true));
        Ok(r)
    })
}

fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        backoff: Duration::from_millis(10),
    }
}

async fn run(
    engine: &Arc<ManagedEngine>,
    plan: FaultPlan,
    retry: RetryPolicy,
    users: u32,
    requests: u64,
    max_tokens: u32,
) -> (PoolResult, FaultReport) {
    let target = FaultTarget::engine(engine.clone(), plan, retry);
    let mut config = PoolConfig::new(
        Load::Closed {
            users,
            think: Duration::ZERO,
        },
        Duration::from_secs(600),
    );
    config.duration = None;
    config.max_requests = Some(requests);
    config.keep_records = true;
    let (result, report) = run_with_faults(
        &target,
        &mut source(max_tokens),
        &config,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    check(&result, &report);
    // Without `keep_records` a fault run holds compacted records (first and last token chunk);
    // the report built from those must be the report built from whole ones.
    let compacted: Vec<_> = result
        .records
        .iter()
        .cloned()
        .map(|mut r| {
            r.compact();
            r
        })
        .collect();
    let again = FaultReport::build(
        &compacted,
        &target.journal(),
        target.events(),
        engine.device_losses(),
    );
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&report).unwrap()
    );
    (result, report)
}

/// Every request has exactly one outcome.
fn check(result: &PoolResult, report: &FaultReport) {
    let o = &report.outcomes;
    assert_eq!(report.sent, result.counts.scheduled);
    assert_eq!(o.ok + o.retried_ok + o.failed + o.cancelled, report.sent);
    assert_eq!(report.requests.len() as u64, report.sent);
    assert_eq!(o.ok + o.retried_ok, result.counts.completed);
}

fn outcome(report: &FaultReport, id: u64) -> (Outcome, Option<String>) {
    let r = &report.requests[id as usize];
    assert_eq!(r.id, id);
    (r.outcome, r.reason.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_faults_add_up_to_the_plan() {
    let Some(engine) = engine(2, DeviceLossPolicy::Reinit, retry(1)) else {
        return;
    };
    let plan = FaultPlan::new(3)
        .with(FaultKind::Malformed, Trigger::Every(10))
        .with(
            FaultKind::Cancel { after_tokens: 1 },
            Trigger::Probability(0.1),
        )
        .with(
            FaultKind::SlowClient {
                delay: Duration::from_millis(2),
            },
            Trigger::Every(7),
        );
    // The oracle: the plan's decisions per request index, computed without running anything.
    let (mut want_malformed, mut want_cancelled) = (0, 0);
    for i in 0..50 {
        let kinds: Vec<&str> = plan
            .decide(i, Duration::ZERO)
            .iter()
            .map(FaultKind::label)
            .collect();
        if kinds.contains(&"malformed") {
            want_malformed += 1; // refused before any token: a cancel never gets its chance
        } else if kinds.contains(&"cancel") {
            want_cancelled += 1;
        }
    }
    let fresh = FaultPlan {
        faults: plan.faults.clone(),
        ..FaultPlan::new(3)
    };
    let (result, report) = run(&engine, fresh, retry(1), 2, 50, 3).await;
    let o = &report.outcomes;
    assert_eq!(want_malformed, 5);
    assert!(want_cancelled > 0, "the seed should cancel some requests");
    assert_eq!(o.failed, 5, "{}", report.table());
    assert_eq!(report.failed_by_reason["malformed"], 5);
    assert_eq!(o.cancelled, want_cancelled, "{}", report.table());
    assert_eq!(report.cancelled_by_reason["client_cancel"], want_cancelled);
    assert_eq!(o.ok, 50 - 5 - want_cancelled);
    assert_eq!(o.retried_ok, 0);
    assert_eq!(report.malformed_accepted, 0);
    assert!((report.loss_pct - 10.0).abs() < 1e-9);
    assert_eq!(report.injected["malformed"], 5);
    assert_eq!(report.injected["slow_client"], 7);
    // Malformed requests fail with clear errors naming what is wrong, one per variant.
    let messages: Vec<String> = result
        .records
        .iter()
        .filter(|r| report.requests[r.id as usize].reason.as_deref() == Some("malformed"))
        .map(|r| r.error.as_ref().unwrap().message.clone())
        .collect();
    let expected = [
        "the prompt has no tokens",
        "max_tokens",
        "max_tokens",
        "prompt",
        "but the context holds 128",
    ];
    for (m, want) in messages.iter().zip(expected) {
        assert!(m.contains(want), "'{m}' should mention '{want}'");
    }
    // A cancelled request got its one token, then the client went away.
    for r in &result.records {
        if report.requests[r.id as usize].outcome == Outcome::Cancelled {
            assert_eq!(r.streamed_tokens(), 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_loss_rebuilds_the_engine_and_retries_recover() {
    let Some(engine) = engine(2, DeviceLossPolicy::Reinit, retry(4)) else {
        return;
    };
    // The first rebuild's load is refused once (out of memory), then succeeds.
    let plan = FaultPlan::new(0)
        .with(FaultKind::DeviceLoss, Trigger::AtRequest(4))
        .with(
            FaultKind::AllocFailure {
                stage: AllocStage::Load,
                count: 1,
            },
            Trigger::AtRequest(4),
        );
    let (_, report) = run(&engine, plan, retry(4), 2, 12, 2).await;
    let o = &report.outcomes;
    assert_eq!(o.failed, 0, "{}", report.table());
    assert_eq!(o.ok + o.retried_ok, 12);
    assert_eq!(
        outcome(&report, 4),
        (Outcome::RetriedOk, Some("device_lost".into()))
    );
    assert_eq!(report.device_losses.len(), 1, "{}", report.table());
    let loss = &report.device_losses[0];
    assert_eq!(loss.generation, 1);
    assert_eq!(loss.request, Some(4));
    assert_eq!(loss.load_failures, 1);
    let recovery = loss.recovery_ms.expect("recovered");
    assert!(recovery > 0.0);
    assert!(loss.rebuilt_s.unwrap() >= loss.lost_s);
    match engine.state() {
        // Generation 2's load was refused; 3 is the one that serves.
        EngineState::Ready(g) => assert_eq!(g.number, 3),
        other => panic!("engine not ready: {other:?}"),
    }
    // Requests after the recovery ran on the new engine at the first attempt.
    assert_eq!(outcome(&report, 11).0, Outcome::Ok);
    assert_eq!(report.loss_pct, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_loss_with_give_up_loses_the_rest() {
    let Some(engine) = engine(1, DeviceLossPolicy::GiveUp, retry(1)) else {
        return;
    };
    let plan = FaultPlan::new(0).with(FaultKind::DeviceLoss, Trigger::AtRequest(2));
    let (_, report) = run(&engine, plan, retry(1), 1, 6, 2).await;
    for i in 0..2 {
        assert_eq!(outcome(&report, i).0, Outcome::Ok);
    }
    for i in 2..6 {
        assert_eq!(
            outcome(&report, i),
            (Outcome::Failed, Some("device_lost".into()))
        );
    }
    assert!((report.loss_pct - 400.0 / 6.0).abs() < 1e-9);
    assert!(matches!(engine.state(), EngineState::Dead(_)));
    assert_eq!(report.device_losses[0].recovery_ms, None);
    // Failure-adjusted percentiles include the failures; the successful ones do not.
    assert_eq!(report.e2e_all.count, 6);
    assert_eq!(report.e2e_ok.count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_turns_an_alloc_failure_into_retried_ok() {
    let Some(engine) = engine(1, DeviceLossPolicy::Reinit, retry(2)) else {
        return;
    };
    let kv = || {
        FaultPlan::new(0).with(
            FaultKind::AllocFailure {
                stage: AllocStage::Kv,
                count: 1,
            },
            Trigger::AtRequest(1),
        )
    };
    let (_, without) = run(&engine, kv(), retry(1), 1, 3, 2).await;
    assert_eq!(
        outcome(&without, 1),
        (Outcome::Failed, Some("alloc_failure".into()))
    );
    assert_eq!(without.outcomes.ok, 2);
    let (_, with) = run(&engine, kv(), retry(2), 1, 3, 2).await;
    assert_eq!(
        outcome(&with, 1),
        (Outcome::RetriedOk, Some("alloc_failure".into()))
    );
    assert_eq!(with.requests[1].attempts, 2);
    assert_eq!(with.outcomes.ok, 2);
    assert_eq!(with.loss_pct, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_timeout_fails_the_request_without_hanging() {
    let Some(engine) = engine(1, DeviceLossPolicy::Reinit, retry(1)) else {
        return;
    };
    // The stall would last ten minutes; the step timeout ends the request and releases it.
    let plan = || {
        let mut p = FaultPlan::new(0).with(
            FaultKind::StepTimeout {
                stall: Duration::from_secs(600),
            },
            Trigger::AtRequest(1),
        );
        p.step_timeout = Duration::from_secs(2);
        p
    };
    let (result, report) = run(&engine, plan(), retry(1), 1, 3, 2).await;
    assert_eq!(
        outcome(&report, 1),
        (Outcome::Failed, Some("step_timeout".into()))
    );
    let e = result.records[1].error.as_ref().unwrap();
    assert!(e.message.contains("step timeout"), "{e}");
    assert_eq!(report.outcomes.ok, 2);
    // Retried, the same request completes.
    let (_, retried) = run(&engine, plan(), retry(2), 1, 3, 2).await;
    assert_eq!(
        outcome(&retried, 1),
        (Outcome::RetriedOk, Some("step_timeout".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_does_not_stall_other_streams() {
    let Some(engine) = engine(2, DeviceLossPolicy::Reinit, retry(1)) else {
        return;
    };
    let plan = FaultPlan::new(0).with(
        FaultKind::SlowClient {
            delay: Duration::from_millis(500),
        },
        Trigger::AtRequest(0),
    );
    let (result, report) = run(&engine, plan, retry(1), 2, 8, 4).await;
    assert_eq!(report.outcomes.ok, 8, "{}", report.table());
    let slow = &result.records[0];
    let (from, to) = (
        slow.first_token_us().unwrap(),
        slow.last_token_us().unwrap(),
    );
    // While the slow client took its tokens one by one, the other stream kept being served:
    // other requests' tokens (stamped when the engine produced them) arrived in between.
    let others = result
        .records
        .iter()
        .skip(1)
        .flat_map(|r| r.chunks.iter())
        .filter(|c| c.at_us > from && c.at_us < to)
        .count();
    assert!(
        others > 0,
        "no other token during the slow read {from}..{to} µs"
    );
}

/// `scripts/phase2_faults.lua` in its small CI settings: runs, passes its (loosened) loss mark,
/// and stores outcome counts that add up, the loss, the recovery time and one event per fault.
#[test]
fn phase2_faults_script_runs_and_stores() {
    let Some(model) = common::test_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("faults.sqlite");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/phase2_faults.lua");
    let args: Vec<String> = [
        "--requests",
        "20",
        "--concurrency",
        "2",
        "--max-tokens",
        "3",
        "--ctx",
        "128",
        "--threads",
        "2",
        "--backend",
        "cpu",
        "--step-timeout-ms",
        "1500",
        "--max-loss",
        "50",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["--model".into(), model.to_string_lossy().into_owned()])
    .chain(["--db".into(), db.to_string_lossy().into_owned()])
    .collect();
    let host = rawrxd::lua::Host::new(&script, &args).unwrap();
    assert_eq!(host.run().unwrap(), 0);
    let store = rawrxd::store::Store::open(&db).unwrap();
    let runs = store.list_runs(&Default::default()).unwrap();
    assert_eq!(runs.len(), 1);
    let run = runs[0].id;
    let ms = store.measurements(run).unwrap();
    let value = |name: &str| {
        ms.iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
            .unwrap_or_else(|| panic!("{name} not stored"))
    };
    let total: f64 = ["ok", "retried_ok", "failed", "cancelled"]
        .iter()
        .map(|k| value(&format!("phase2_faults.outcome_{k}")))
        .sum();
    assert_eq!(total, 20.0);
    let loss = value("phase2_faults.loss_pct");
    assert!((loss - value("phase2_faults.outcome_failed") * 5.0).abs() < 1e-9);
    assert!(value("phase2_faults.recovery_ms") > 0.0);
    assert_eq!(value("phase2_faults.pass"), 1.0);
    let events = store.events(run).unwrap();
    let count = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(count("device_loss"), 1);
    // 1 device loss, 4 refused slots (every 5th), 2 stalls (every 7th), 2 slow clients (every
    // 7th), no malformed request (every 21st), and the seeded cancellations.
    assert!(count("fault") >= 9, "{} fault events", count("fault"));
}
