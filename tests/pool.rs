//! The load generator against real HTTP servers on loopback: the fake OpenAI-compatible server
//! (`rawrxd::pool::fake`), streaming over axum, measured through reqwest.
//!
//! Oracles: percentiles are recomputed exactly from the raw per-request records (sort +
//! nearest-rank in integer arithmetic); outcome counts are checked against the server's own
//! counters; the stall test relies on the server never sending inside the stall window.

use std::sync::Arc;
use std::time::Duration;

use rawrxd::pool::fake::{FakeConfig, FakeServer, Stall};
use rawrxd::pool::histogram::serde_v2;
use rawrxd::pool::{
    run, search_slo, Arrivals, CancellationToken, Endpoint, Load, OpenAiHttpConfig,
    OpenAiHttpTarget, PoolConfig, PoolResult, Request, RequestRecord, RequestSource, SearchConfig,
    Slo, SloGoal, Target,
};

/// Every run in these tests must end within this, or the test fails instead of hanging.
const RUN_LIMIT: Duration = Duration::from_secs(20);

fn target(base_url: &str, endpoint: Endpoint) -> Arc<dyn Target> {
    let config = OpenAiHttpConfig::new(base_url, endpoint, "fake-model");
    Arc::new(OpenAiHttpTarget::new(config).expect("target"))
}

fn source(max_tokens: u32) -> RequestSource {
    RequestSource::from_fn(move |i| Ok(Request::text(format!("prompt number {i}"), max_tokens)))
}

fn closed(users: u32) -> Load {
    Load::Closed {
        users,
        think: Duration::ZERO,
    }
}

fn config(load: Load, duration: Option<Duration>, max_requests: Option<u64>) -> PoolConfig {
    PoolConfig {
        duration,
        max_requests,
        keep_records: true,
        ..PoolConfig::new(load, Duration::ZERO)
    }
}

async fn run_limited(
    target: Arc<dyn Target>,
    source: &mut RequestSource,
    config: &PoolConfig,
) -> PoolResult {
    tokio::time::timeout(
        RUN_LIMIT,
        run(target, source, config, CancellationToken::new()),
    )
    .await
    .expect("the run must not hang")
    .expect("run")
}

/// Checks the bookkeeping invariants: one record per id, outcomes add up.
fn check_accounting(r: &PoolResult) {
    let c = &r.counts;
    let ids: Vec<u64> = r.records.iter().map(|x| x.id).collect();
    assert_eq!(
        ids,
        (0..c.scheduled).collect::<Vec<_>>(),
        "one record per request"
    );
    assert_eq!(c.completed + c.failed, c.scheduled);
    assert_eq!(c.errors.values().sum::<u64>(), c.failed);
    assert_eq!(c.sent + c.dropped, c.scheduled);
    let sent = r.records.iter().filter(|x| x.sent_us.is_some()).count() as u64;
    assert_eq!(sent, c.sent);
    let ok = r.records.iter().filter(|x| x.ok()).count() as u64;
    assert_eq!(ok, c.completed);
}

/// Exact nearest-rank percentile (per mille) over raw samples, in integer arithmetic.
fn exact(samples: &mut [u64], per_mille: u64) -> u64 {
    samples.sort_unstable();
    let n = samples.len() as u64;
    let rank = ((per_mille * n).div_ceil(1000)).max(1);
    samples[(rank - 1) as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_match_exact_computation_over_raw_samples() {
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_millis(3),
        token_delay: Duration::from_millis(1),
        jitter: 0.9,
        seed: 11,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let mut cfg = config(closed(4), None, Some(160));
    cfg.load = Load::Closed {
        users: 4,
        think: Duration::from_millis(1),
    };
    let r = run_limited(
        target(&fake.base_url(), Endpoint::Completions),
        &mut source(8),
        &cfg,
    )
    .await;
    check_accounting(&r);
    assert_eq!(r.counts.completed, 160, "{:?}", r.error_examples);
    assert_eq!(
        fake.stats()
            .completed
            .load(std::sync::atomic::Ordering::Relaxed),
        160
    );
    assert_eq!(r.output_tokens, 160 * 8);
    println!("{}", r.table());

    // Raw samples straight from the record fields (each HTTP chunk is one token here).
    let ok: Vec<&RequestRecord> = r.records.iter().filter(|x| x.ok()).collect();
    let mut ttft: Vec<u64> = ok
        .iter()
        .map(|x| x.chunks[0].at_us - x.scheduled_us)
        .collect();
    let mut e2e: Vec<u64> = ok
        .iter()
        .map(|x| x.chunks[7].at_us - x.scheduled_us)
        .collect();
    let mut queue: Vec<u64> = ok
        .iter()
        .map(|x| x.sent_us.unwrap() - x.scheduled_us)
        .collect();
    let mut tpot: Vec<u64> = ok
        .iter()
        .map(|x| ((x.chunks[7].at_us - x.chunks[0].at_us) as f64 / 7.0).round() as u64)
        .collect();
    let mut itl: Vec<u64> = ok
        .iter()
        .flat_map(|x| x.chunks.windows(2).map(|w| w[1].at_us - w[0].at_us))
        .collect();
    assert!(ok.iter().all(|x| x.chunks.len() == 8 && x.tokens == 8));
    assert_eq!(itl.len(), 160 * 7);
    // The server never sends the first token earlier than its minimum TTFT (0.3 ms here).
    assert!(ttft.iter().all(|&t| t >= 300));

    let h = &r.histograms;
    let s = &r.summary;
    let cases: [(
        &str,
        &mut Vec<u64>,
        &hdrhistogram::Histogram<u64>,
        &rawrxd::pool::histogram::Percentiles,
    ); 5] = [
        ("ttft", &mut ttft, &h.ttft, &s.ttft),
        ("e2e", &mut e2e, &h.e2e, &s.e2e),
        ("queue_wait", &mut queue, &h.queue_wait, &s.queue_wait),
        ("tpot", &mut tpot, &h.tpot, &s.tpot),
        ("itl", &mut itl, &h.itl, &s.itl),
    ];
    for (name, samples, hist, summary) in cases {
        assert_eq!(hist.len(), samples.len() as u64, "{name} count");
        for (per_mille, reported_ms) in [
            (500, summary.p50),
            (900, summary.p90),
            (950, summary.p95),
            (990, summary.p99),
            (999, summary.p999),
            (1000, summary.max),
        ] {
            let want = exact(samples, per_mille);
            let got = (reported_ms * 1000.0).round() as u64;
            assert!(
                hist.equivalent(got, want),
                "{name} p{}: histogram {got} µs, exact {want} µs",
                per_mille as f64 / 10.0
            );
        }
    }

    // Histograms survive serialization (V2, hex) unchanged.
    let json = serde_json::to_value(&r).unwrap();
    let ttft_back = serde_v2::decode(json["histograms"]["ttft"].as_str().unwrap()).unwrap();
    assert_eq!(&ttft_back, &h.ttft);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_is_visible_in_open_loop_and_hidden_in_closed_loop() {
    let stall = Duration::from_millis(500);
    let fake_config = FakeConfig {
        ttft: Duration::from_millis(4),
        token_delay: Duration::from_millis(2),
        stall: Some(Stall {
            after: Duration::from_millis(400),
            length: stall,
        }),
        ..FakeConfig::default()
    };
    let open_fake = FakeServer::start(fake_config.clone()).await.unwrap();
    let closed_fake = FakeServer::start(fake_config).await.unwrap();
    let duration = Some(Duration::from_millis(1500));
    let open_cfg = config(
        Load::Open {
            arrivals: Arrivals::Constant { rate: 200.0 },
            max_in_flight: 1000,
        },
        duration,
        None,
    );
    let closed_cfg = config(closed(2), duration, None);
    // Both runs at once: 1.5 s of wall time instead of 3.
    let (mut open_source, mut closed_source) = (source(8), source(8));
    let (open, closed) = tokio::join!(
        run_limited(
            target(&open_fake.base_url(), Endpoint::Completions),
            &mut open_source,
            &open_cfg
        ),
        run_limited(
            target(&closed_fake.base_url(), Endpoint::Completions),
            &mut closed_source,
            &closed_cfg
        ),
    );
    println!(
        "open loop (200 req/s), stall {} ms:\n{}",
        stall.as_millis(),
        open.table()
    );
    println!(
        "closed loop (2 users), stall {} ms:\n{}",
        stall.as_millis(),
        closed.table()
    );
    for r in [&open, &closed] {
        check_accounting(r);
        assert_eq!(r.counts.failed, 0, "{:?}", r.error_examples);
    }
    let s = stall.as_secs_f64() * 1000.0;
    let (o, c) = (&open.summary.e2e, &closed.summary.e2e);
    println!(
        "E2E ms        p50      p90      p99      max   requests\nopen   {:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>9}\nclosed {:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>9}",
        o.p50, o.p90, o.p99, o.max, open.counts.completed, c.p50, c.p90, c.p99, c.max, closed.counts.completed
    );
    let at_least = |r: &PoolResult, ms: f64| {
        r.records
            .iter()
            .filter(|x| x.e2e_us() as f64 >= ms * 1000.0)
            .count()
    };
    println!(
        "requests with E2E ≥ stall: open {}, closed {}; ≥ stall/2: open {}, closed {}",
        at_least(&open, s),
        at_least(&closed, s),
        at_least(&open, s / 2.0),
        at_least(&closed, s / 2.0)
    );
    // Open loop: 100 of the 300 requests were due inside the stall and their latency runs from
    // their due time, so they carry part of it. Every request in flight when it began (each
    // takes ≥ 18 ms) or due in its first 14 ms (the 7 token delays still ahead of it) carries
    // all of it: ≥ 6 requests at 5 ms spacing, more than the 1 % above p99.
    assert_eq!(open.counts.scheduled, 300);
    assert!(o.p99 >= s, "open-loop p99 E2E {} ms < stall {s} ms", o.p99);
    assert!(o.p90 >= s / 2.0, "open-loop p90 E2E {} ms", o.p90);
    assert!(at_least(&open, s / 2.0) >= 40);
    // Closed loop: only the two requests in flight saw the stall; everything else looks fast,
    // and the stall is hidden in fewer requests sent. (Its p99 still catches those two when the
    // run holds fewer than 200 requests, so the robust contrast is p90 and the counts.)
    assert!(
        c.max >= s,
        "the stalled closed-loop requests took {} ms",
        c.max
    );
    assert!(at_least(&closed, s / 2.0) <= 2);
    assert!(c.p90 < s / 2.0, "closed-loop p90 E2E {} ms", c.p90);
    assert!(closed.counts.sent < open.counts.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_counted_against_the_servers_own_count() {
    use std::sync::atomic::Ordering::Relaxed;
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_millis(1),
        token_delay: Duration::from_millis(1),
        error_rate: 0.3,
        seed: 5,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let cfg = config(closed(4), None, Some(100));
    let r = run_limited(
        target(&fake.base_url(), Endpoint::Chat),
        &mut source(3),
        &cfg,
    )
    .await;
    check_accounting(&r);
    let stats = fake.stats();
    assert_eq!(r.counts.scheduled, 100);
    assert_eq!(stats.requests.load(Relaxed), 100);
    let errors = stats.errors.load(Relaxed);
    assert!(
        errors > 10 && errors < 50,
        "seeded error draws gave {errors}"
    );
    assert_eq!(r.counts.errors.get("http_500"), Some(&errors));
    assert_eq!(r.counts.completed, stats.completed.load(Relaxed));
    let example = &r.error_examples["http_500"][0];
    assert!(
        example.contains("500") && example.contains("injected failure"),
        "{example}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_counted() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: nothing listens there now
    let cfg = config(closed(2), None, Some(10));
    let url = format!("http://127.0.0.1:{port}");
    let r = run_limited(target(&url, Endpoint::Completions), &mut source(3), &cfg).await;
    check_accounting(&r);
    assert_eq!(
        r.counts.errors.get("connect"),
        Some(&10),
        "{:?}",
        r.error_examples
    );
    assert_eq!(r.counts.sent, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_end_requests_and_the_run() {
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_secs(30),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    // The pool's per-request timeout …
    let mut cfg = config(closed(2), None, Some(4));
    cfg.request_timeout = Duration::from_millis(200);
    let r = run_limited(
        target(&fake.base_url(), Endpoint::Completions),
        &mut source(3),
        &cfg,
    )
    .await;
    check_accounting(&r);
    assert_eq!(r.counts.errors.get("timeout"), Some(&4));
    assert!(r.wall_s < 5.0, "the run took {} s", r.wall_s);
    // … and the HTTP client's own timeout are both counted as timeouts.
    let mut http = OpenAiHttpConfig::new(fake.base_url(), Endpoint::Completions, "m");
    http.timeout = Some(Duration::from_millis(150));
    let target: Arc<dyn Target> = Arc::new(OpenAiHttpTarget::new(http).unwrap());
    let cfg = config(closed(2), None, Some(2));
    let r = run_limited(target, &mut source(3), &cfg).await;
    check_accounting(&r);
    assert_eq!(
        r.counts.errors.get("timeout"),
        Some(&2),
        "{:?}",
        r.error_examples
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_streams_are_protocol_errors() {
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_millis(1),
        token_delay: Duration::from_millis(1),
        truncate_after: Some(2),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let cfg = config(closed(2), None, Some(6));
    let r = run_limited(
        target(&fake.base_url(), Endpoint::Completions),
        &mut source(5),
        &cfg,
    )
    .await;
    check_accounting(&r);
    assert_eq!(r.counts.errors.get("protocol"), Some(&6));
    assert!(r
        .records
        .iter()
        .all(|x| x.chunks.len() == 2 && x.tokens == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_overflow_is_dropped_and_cancel_keeps_the_measurements() {
    use std::sync::atomic::Ordering::Relaxed;
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_millis(250),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let cfg = config(
        Load::Open {
            arrivals: Arrivals::Constant { rate: 100.0 },
            max_in_flight: 5,
        },
        Some(Duration::from_millis(500)),
        None,
    );
    let r = run_limited(
        target(&fake.base_url(), Endpoint::Completions),
        &mut source(2),
        &cfg,
    )
    .await;
    check_accounting(&r);
    assert_eq!(r.counts.scheduled, 50);
    // At most 5 in flight and each takes ≥ 250 ms: at most 5 sent in the first 250 ms, 5 more later.
    assert!(
        r.counts.sent <= 10 && r.counts.dropped >= 40,
        "{:?}",
        r.counts
    );
    assert_eq!(fake.stats().requests.load(Relaxed), r.counts.sent);

    // Cancelling mid-run: in-flight requests end as `cancelled`, the rest is kept.
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_millis(100),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stopper.cancel();
    });
    let cfg = config(
        Load::Open {
            arrivals: Arrivals::Poisson {
                rate: 50.0,
                seed: 1,
            },
            max_in_flight: 100,
        },
        Some(Duration::from_secs(10)),
        None,
    );
    let target = target(&fake.base_url(), Endpoint::Completions);
    let r = tokio::time::timeout(RUN_LIMIT, run(target, &mut source(2), &cfg, cancel))
        .await
        .unwrap()
        .unwrap();
    check_accounting(&r);
    assert!(r.wall_s < 2.0);
    assert!(r.counts.completed >= 1, "{:?}", r.counts);
    assert!(
        r.counts.errors.get("cancelled").is_some_and(|&n| n >= 1),
        "{:?}",
        r.counts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisson_open_loop_follows_its_seeded_schedule() {
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_millis(1),
        token_delay: Duration::from_millis(1),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let (rate, seed) = (400.0, 9);
    let arrivals = Arrivals::Poisson { rate, seed };
    let duration = Duration::from_secs(1);
    let cfg = config(
        Load::Open {
            arrivals: arrivals.clone(),
            max_in_flight: 1000,
        },
        Some(duration),
        None,
    );
    let r = run_limited(
        target(&fake.base_url(), Endpoint::Completions),
        &mut source(2),
        &cfg,
    )
    .await;
    check_accounting(&r);
    assert_eq!(r.counts.failed, 0, "{:?}", r.error_examples);
    // The due times are the seeded schedule's, to the microsecond, however late the sender was.
    let schedule: Vec<u64> = arrivals
        .schedule(Some(duration))
        .unwrap()
        .map(|t| t.as_micros() as u64)
        .collect();
    let due: Vec<u64> = r.records.iter().map(|x| x.scheduled_us).collect();
    assert_eq!(due, schedule);
    // ~400 exponential gaps: their mean has a standard error of 5 % of 1/rate; allow 4 of them.
    let gaps: Vec<f64> = due.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e6).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    assert!(
        (mean * rate - 1.0).abs() < 0.2,
        "mean inter-arrival {mean} s vs {}",
        1.0 / rate
    );
    println!(
        "{} arrivals, mean gap {:.3} ms (1/rate = 2.5 ms)",
        due.len(),
        mean * 1e3
    );
    println!("{}", r.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_sse_over_http_both_endpoints() {
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_millis(1),
        token_delay: Duration::from_millis(1),
        fragment: true,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    for endpoint in [Endpoint::Completions, Endpoint::Chat] {
        let cfg = config(closed(2), None, Some(8));
        let r = run_limited(target(&fake.base_url(), endpoint), &mut source(6), &cfg).await;
        check_accounting(&r);
        assert_eq!(
            r.counts.completed, 8,
            "{endpoint:?}: {:?}",
            r.error_examples
        );
        for x in &r.records {
            assert_eq!((x.chunks.len(), x.tokens), (6, 6), "{endpoint:?}");
            assert_eq!(x.prompt_tokens, Some(3)); // "prompt number i"
            assert!(x.accepted_us.is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_source_cycles_and_a_failing_source_stops_the_run() {
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_millis(1),
        token_delay: Duration::from_millis(1),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    std::fs::write(
        &path,
        "{\"prompt\": \"a b\", \"max_tokens\": 3}\n\
         {\"messages\": [{\"role\": \"user\", \"content\": \"c d e\"}], \"max_tokens\": 5}\n\
         {\"prompt\": \"f\", \"max_tokens\": 2, \"seed\": 1}\n",
    )
    .unwrap();
    let mut jsonl = RequestSource::jsonl(&path).unwrap();
    let cfg = config(closed(1), None, Some(6));
    let r = run_limited(target(&fake.base_url(), Endpoint::Chat), &mut jsonl, &cfg).await;
    check_accounting(&r);
    let tokens: Vec<u64> = r.records.iter().map(|x| x.tokens).collect();
    assert_eq!(tokens, vec![3, 5, 2, 3, 5, 2]);
    let prompts: Vec<Option<u64>> = r.records.iter().map(|x| x.prompt_tokens).collect();
    assert_eq!(prompts[..3], [Some(2), Some(3), Some(1)]);

    let mut failing = RequestSource::from_fn(|i| {
        if i == 3 {
            Err(rawrxd::Error::Invalid("script error at plan.lua:7".into()))
        } else {
            Ok(Request::text("x", 2))
        }
    });
    let target = target(&fake.base_url(), Endpoint::Completions);
    let err = run(target, &mut failing, &cfg, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("plan.lua:7"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_search_finds_the_servers_capacity() {
    // The server generates 3 streams at a time; a 4th user waits a whole request (~95 ms) for a
    // slot, so its TTFT breaks a 40 ms SLO.
    let fake = FakeServer::start(FakeConfig {
        ttft: Duration::from_millis(3),
        token_delay: Duration::from_millis(15),
        capacity: Some(3),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let base = config(closed(1), Some(Duration::from_millis(500)), None);
    let goal = SloGoal {
        slo: Slo {
            ttft_ms: Some(40.0),
            ..Slo::new()
        },
        min_attainment: 0.9,
    };
    let search = SearchConfig {
        start: 1.0,
        max: 64.0,
        max_trials: 8,
        rel_tolerance: 0.05,
    };
    let target = target(&fake.base_url(), Endpoint::Completions);
    let outcome = tokio::time::timeout(
        RUN_LIMIT,
        search_slo(
            target,
            &mut source(7),
            &base,
            &goal,
            &search,
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    for t in &outcome.trials {
        println!(
            "{} users: attainment {:.2}, TTFT p50 {:.1} ms p99 {:.1} ms",
            t.level, t.attainment, t.result.summary.ttft.p50, t.result.summary.ttft.p99
        );
    }
    let levels: Vec<f64> = outcome.trials.iter().map(|t| t.level).collect();
    assert_eq!(levels, vec![1.0, 2.0, 4.0, 3.0]);
    assert_eq!(outcome.best, Some(3.0));
}
