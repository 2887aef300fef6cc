//! The leak detector against real memory: a planted leak of 1 MiB per soak minute is flagged
//! within 10 soak minutes, and a clean soak of the same length raises no alarm.
//!
//! Both soaks run on the virtual clock (each 5 s probe tick happens at once), against an
//! in-process target that answers instantly, so ten soak minutes take well under a second of real
//! time. The planted leak is real: the test hook allocates and writes 1/12 MiB per tick and holds
//! it, and the verdict comes from this process's real RSS as sysinfo reads it — so the test fails
//! if RSS were not measured, if the allocation were not resident, or if the fit were wrong.
//!
//! This file holds exactly one test: RSS is per process, and another test running in parallel in
//! the same binary would add its own allocations to the measurement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream;
use rawrxd::pool::{Event, EventStream, Load, Request, RequestSource, Target, Usage};
use rawrxd::soak::{self, SoakConfig, SoakStart, SoakTarget, TestHooks, Verdict};
use rawrxd::store::{RunInfo, RunStatus, Store};

/// Answers every request at once with one token.
struct Instant1;

impl Target for Instant1 {
    fn describe(&self) -> String {
        "instant".into()
    }

    fn send(&self, _: Request) -> EventStream {
        let at = Instant::now();
        Box::pin(stream::iter([
            Ok(Event::Accepted { at }),
            Ok(Event::Tokens {
                at,
                count: 1,
                text: "x".into(),
            }),
            Ok(Event::Done {
                at,
                usage: Some(Usage {
                    prompt_tokens: 1,
                    completion_tokens: 1,
                }),
            }),
        ]))
    }
}

/// Ten virtual minutes sampled every 5 s, warm-up 1 min; `leak` MiB/min planted.
fn soak(store: &Store, name: &str, leak: Option<f64>) -> soak::SoakSummary {
    let mut config = SoakConfig::new(
        Load::Closed {
            users: 1,
            think: Duration::from_millis(2),
        },
        Duration::from_secs(600),
    );
    config.warmup = Duration::from_secs(60);
    config.checkpoint_interval = Duration::from_secs(300);
    // Ten minutes resolve slopes of several MB/h, not the 48-hour threshold of ~1 MB/h.
    config.leak_threshold_mb_per_h = 10.0;
    config.test_hooks = TestHooks {
        leak_mb_per_min: leak,
        virtual_clock: true,
    };
    let target = SoakTarget {
        target: Arc::new(Instant1),
        memory: None,
    };
    let source = RequestSource::from_fn(|_| Ok(Request::text("hi", 1)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(soak::run(
            store,
            SoakStart::New(RunInfo::new("test", name)),
            target,
            source,
            &config,
            &mut (),
            soak::CancellationToken::new(),
        ))
        .unwrap()
}

#[test]
fn planted_leak_is_flagged_and_a_clean_run_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("soak.sqlite")).unwrap();

    let clean = soak(&store, "clean", None);
    let leaky = soak(&store, "leaky", Some(1.0));

    for s in [&clean, &leaky] {
        assert_eq!(s.status, RunStatus::Ok);
        assert_eq!(s.samples, 120, "10 min / 5 s");
        assert_eq!(s.checkpoints, 2);
        assert!((s.elapsed_s - 600.0).abs() < 1e-9);
        let rss = store.series(s.run_id, "rss_mb").unwrap();
        assert_eq!(rss.len(), 120);
        assert_eq!(
            store.run(s.run_id).unwrap().status,
            RunStatus::Ok,
            "run ended ok"
        );
    }
    let c = clean.leak["rss"];
    let l = leaky.leak["rss"];
    eprintln!("clean: {c:?}\nleaky: {l:?}");
    // Samples at 5, 10, …, 600 s; those from 60 s on are past the warm-up: 109.
    assert_eq!((c.n, l.n), (109, 109));
    // 1 MiB/min = 60 MiB/h, measured through real RSS.
    assert_eq!(l.verdict, Verdict::Leak, "planted leak: {l:?}");
    assert!(
        l.slope > 45.0 && l.slope < 75.0,
        "planted leak slope: {l:?}"
    );
    assert!(l.lo > 10.0, "{l:?}");
    let held = leaky.last.planted_leak_mb.unwrap();
    assert!((held - 10.0).abs() < 0.01, "10 MiB planted, {held}");
    // The clean run: same load, no alarm.
    assert_ne!(c.verdict, Verdict::Leak, "clean run: {c:?}");
    assert!(c.slope.abs() < 10.0, "clean run: {c:?}");
    assert!(clean.last.planted_leak_mb.is_none());
    // The verdicts are stored as measurements with the verdict in their tags.
    let m = store.measurements(leaky.run_id).unwrap();
    let final_rss = m
        .iter()
        .find(|m| {
            m.name == "leak_slope_ci95_lo"
                && m.tags.get("kind").and_then(|k| k.as_str()) == Some("rss")
                && m.tags.get("final").is_some()
        })
        .expect("final rss lower bound stored");
    assert_eq!(final_rss.value, l.lo);
    assert_eq!(final_rss.tags["verdict"], "leak");
}
