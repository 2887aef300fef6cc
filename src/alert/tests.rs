//! Rule semantics with hand-computed transitions, rules from Lua, and alerts end to end with a
//! store and a loopback webhook.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::{RunInfo, Store};
use crate::webhook::test_server::{Reply, TestServer};
use crate::webhook::{DeliveryPolicy, Format, Webhook};

fn above(limit: f64) -> Cmp {
    Cmp {
        op: Op::Above,
        limit,
    }
}

fn below(limit: f64) -> Cmp {
    Cmp {
        op: Op::Below,
        limit,
    }
}

/// Feeds `(ts, value)` of `metric`; returns `(ts, kind, notify)` of every transition.
fn run(ev: &mut Evaluator, metric: &str, points: &[(f64, f64)]) -> Vec<(f64, &'static str, bool)> {
    let mut out = Vec::new();
    for &(ts, v) in points {
        for t in ev.observe(&Sample::at(ts).with(metric, v)).unwrap() {
            out.push((t.ts, t.kind.name(), t.notify));
        }
    }
    out
}

#[test]
fn threshold_sustained_goes_pending_firing_resolved_and_cancels() {
    let mut r = Rule::new(
        "rss-high",
        "rss_mb",
        Condition::Threshold { cmp: above(100.0) },
    );
    r.for_s = 10.0;
    let mut ev = Evaluator::new(vec![r], 0.0).unwrap();
    let got = run(
        &mut ev,
        "rss_mb",
        &[
            (0.0, 90.0),
            (5.0, 110.0),  // pending since 5
            (10.0, 120.0), // held 5 s
            (15.0, 130.0), // held 10 s: firing
            (20.0, 130.0), // still firing: nothing (de-duplicated)
            (25.0, 90.0),  // resolved
            (30.0, 101.0), // pending again
            (35.0, 100.0), // 100 is not > 100: cancelled
        ],
    );
    assert_eq!(
        got,
        [
            (5.0, "pending", false),
            (15.0, "firing", true),
            (25.0, "resolved", true),
            (30.0, "pending", false),
            (35.0, "cancelled", false),
        ]
    );
    assert_eq!(ev.states()[0].state, AlertState::Inactive);
}

#[test]
fn a_firing_alert_notifies_once_however_many_samples_confirm_it() {
    let r = Rule::new("t", "x", Condition::Threshold { cmp: above(0.0) });
    let mut ev = Evaluator::new(vec![r], 0.0).unwrap();
    let pts: Vec<(f64, f64)> = (0..100).map(|i| (f64::from(i), 1.0)).collect();
    assert_eq!(run(&mut ev, "x", &pts), [(0.0, "firing", true)]);
    let st = &ev.states()[0];
    assert_eq!(
        (st.state, st.since, st.announced),
        (AlertState::Firing, Some(0.0), true)
    );
}

#[test]
fn window_mean_uses_the_samples_of_the_last_w_seconds() {
    let cond = Condition::Window {
        agg: Aggregate::Mean,
        window_s: 10.0,
        min_samples: 1,
        min_span_s: 0.0,
        cmp: below(50.0),
    };
    let mut ev = Evaluator::new(vec![Rule::new("tps-drop", "tps", cond)], 0.0).unwrap();
    let mut values = Vec::new();
    for (ts, v) in [
        (0.0, 60.0),
        (5.0, 40.0),
        (10.0, 30.0),
        (15.0, 70.0),
        (20.0, 80.0),
    ] {
        let t = ev.observe(&Sample::at(ts).with("tps", v)).unwrap();
        values.push((
            ts,
            ev.states()[0].value.unwrap(),
            t.first().map(|t| t.kind.name()),
        ));
    }
    // ts 5: mean(60, 40) = 50, not < 50; ts 10: mean(60, 40, 30) = 43.33: firing;
    // ts 15: window [5, 15]: mean(40, 30, 70) = 46.67; ts 20: [10, 20]: mean(30, 70, 80) = 60.
    let expect = [
        (0.0, 60.0, None),
        (5.0, 50.0, None),
        (10.0, 130.0 / 3.0, Some("firing")),
        (15.0, 140.0 / 3.0, None),
        (20.0, 60.0, Some("resolved")),
    ];
    for (g, e) in values.iter().zip(expect) {
        assert_eq!(g.0, e.0);
        assert!((g.1 - e.1).abs() < 1e-9, "{g:?} vs {e:?}");
        assert_eq!(g.2, e.2, "at ts {}", g.0);
    }
}

#[test]
fn window_p95_max_and_min_samples() {
    let w = |agg, min_samples, cmp| Condition::Window {
        agg,
        window_s: 100.0,
        min_samples,
        min_span_s: 0.0,
        cmp,
    };
    let rules = vec![
        Rule::new("p95", "lat", w(Aggregate::P95, 5, above(48.0))),
        Rule::new("max", "lat", w(Aggregate::Max, 1, above(45.0))),
    ];
    let mut ev = Evaluator::new(rules, 0.0).unwrap();
    let mut fired = Vec::new();
    for (i, v) in [10.0, 20.0, 30.0, 40.0, 50.0].into_iter().enumerate() {
        for t in ev.observe(&Sample::at(i as f64).with("lat", v)).unwrap() {
            fired.push((t.rule.clone(), t.ts, t.value.unwrap()));
        }
    }
    // max > 45 first at the 5th sample (50). p95 needs 5 samples: sorted 10..50, rank 3.8:
    // 40 + 0.8 · 10 = 48, not > 48: no firing; a 6th sample of 50 gives rank 4.75 of
    // 10 20 30 40 50 50 = 50.
    assert_eq!(fired, [("max".to_string(), 4.0, 50.0)]);
    let t = ev.observe(&Sample::at(5.0).with("lat", 50.0)).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].rule.as_str(), t[0].value), ("p95", Some(50.0)));
}

#[test]
fn slope_is_the_least_squares_fit_per_hour() {
    let cond = Condition::Slope {
        window_s: 3600.0,
        min_samples: 3,
        min_span_s: 0.0,
        cmp: above(50.0),
    };
    let mut ev = Evaluator::new(vec![Rule::new("vram-leak", "vram", cond)], 0.0).unwrap();
    let mut got = Vec::new();
    for (ts, v) in [
        (0.0, 1000.0),
        (600.0, 1010.0),
        (1200.0, 1020.0),
        (1800.0, 1020.0),
    ] {
        for t in ev.observe(&Sample::at(ts).with("vram", v)).unwrap() {
            got.push((t.ts, t.kind.name(), t.value.unwrap()));
        }
    }
    // 3 points 10 MB per 600 s apart: 60 MB/h at ts 1200. With (1800, 1020): mean t 900, mean
    // v 1012.5, sxy = 21000, sxx = 1.8e6: 0.011667 MB/s = 42 MB/h: resolved.
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (1200.0, "firing"));
    assert!((got[0].2 - 60.0).abs() < 1e-9);
    assert_eq!((got[1].0, got[1].1), (1800.0, "resolved"));
    assert!((got[1].2 - 42.0).abs() < 1e-9, "{}", got[1].2);
}

#[test]
fn no_progress_counts_from_the_last_increase() {
    let mut r = Rule::new("stalled", "requests_ok", Condition::NoProgress);
    r.for_s = 60.0;
    let mut ev = Evaluator::new(vec![r], 0.0).unwrap();
    let mut pts = vec![(0.0, 0.0), (10.0, 5.0), (20.0, 10.0)];
    pts.extend((3..=8).map(|i| (f64::from(i) * 10.0, 10.0)));
    pts.push((90.0, 15.0));
    let mut got = Vec::new();
    for (ts, v) in pts {
        for t in ev.observe(&Sample::at(ts).with("requests_ok", v)).unwrap() {
            got.push((t.ts, t.kind.name(), t.value.unwrap()));
        }
    }
    // Last increase at 20: pending at 30 (10 s stalled), firing at 80 (60 s), resolved at 90.
    assert_eq!(
        got,
        [
            (30.0, "pending", 10.0),
            (80.0, "firing", 60.0),
            (90.0, "resolved", 0.0)
        ]
    );
}

#[test]
fn ratio_of_counter_increases_is_an_error_rate() {
    let cond = Condition::Ratio {
        over: vec!["ok".into(), "failed".into()],
        window_s: 60.0,
        cmp: above(0.1),
    };
    let mut ev = Evaluator::new(vec![Rule::new("errors", "failed", cond)], 0.0).unwrap();
    let s = |ts, ok, failed| Sample::at(ts).with("ok", ok).with("failed", failed);
    assert!(ev.observe(&s(0.0, 0.0, 0.0)).unwrap().is_empty());
    // Δfailed 10 / Δ(ok + failed) 100 = 0.1: not > 0.1.
    assert!(ev.observe(&s(30.0, 90.0, 10.0)).unwrap().is_empty());
    assert_eq!(ev.states()[0].value, Some(0.1));
    // 30 / 200 = 0.15.
    let t = ev.observe(&s(60.0, 170.0, 30.0)).unwrap();
    assert_eq!(
        (t[0].kind, t[0].value),
        (TransitionKind::Firing, Some(0.15))
    );
}

#[test]
fn per_rule_rate_limit_defers_the_announcement_and_pairs_resolves_with_announced_firings() {
    let mut r = Rule::new("flappy", "x", Condition::Threshold { cmp: above(0.0) });
    r.min_interval_s = 100.0;
    let mut ev = Evaluator::new(vec![r], 0.0).unwrap();
    let got = run(
        &mut ev,
        "x",
        &[
            (0.0, 1.0),   // firing, notified
            (10.0, 0.0),  // resolved, notified
            (20.0, 1.0),  // firing, rate-limited (20 s after the last notification)
            (30.0, 1.0),  // still limited: nothing
            (100.0, 1.0), // 100 s since the last: the deferred announcement
            (110.0, 0.0), // resolved, notified (its firing was announced)
            (120.0, 1.0), // firing, limited
            (130.0, 0.0), // resolved, not notified (never announced)
        ],
    );
    assert_eq!(
        got,
        [
            (0.0, "firing", true),
            (10.0, "resolved", true),
            (20.0, "firing", false),
            (100.0, "announced", true),
            (110.0, "resolved", true),
            (120.0, "firing", false),
            (130.0, "resolved", false),
        ]
    );
}

#[test]
fn global_rate_limit_spaces_notifications_across_rules() {
    let rules = vec![
        Rule::new("a", "x", Condition::Threshold { cmp: above(0.0) }),
        Rule::new("b", "x", Condition::Threshold { cmp: above(0.5) }),
    ];
    let mut ev = Evaluator::new(rules, 60.0).unwrap();
    let t = ev.observe(&Sample::at(0.0).with("x", 1.0)).unwrap();
    assert_eq!((t[0].rule.as_str(), t[0].notify), ("a", true));
    assert_eq!((t[1].rule.as_str(), t[1].notify), ("b", false));
    assert!(t[1]
        .suppressed
        .as_deref()
        .unwrap()
        .starts_with("global rate limit"));
    assert!(ev
        .observe(&Sample::at(59.0).with("x", 1.0))
        .unwrap()
        .is_empty());
    let t = ev.observe(&Sample::at(60.0).with("x", 1.0)).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].rule.as_str(), t[0].kind),
        ("b", TransitionKind::Announced)
    );
}

#[test]
fn warmup_missing_metrics_and_time_going_back() {
    let mut r = Rule::new("t", "x", Condition::Threshold { cmp: above(0.0) });
    r.warmup_s = 30.0;
    let mut ev = Evaluator::new(vec![r], 0.0).unwrap();
    assert!(run(&mut ev, "x", &[(0.0, 1.0), (20.0, 1.0)]).is_empty());
    // A sample without the metric changes nothing.
    assert!(ev
        .observe(&Sample::at(40.0).with("y", 1.0))
        .unwrap()
        .is_empty());
    assert_eq!(run(&mut ev, "x", &[(50.0, 1.0)]), [(50.0, "firing", true)]);
    let e = ev.observe(&Sample::at(49.0)).unwrap_err().to_string();
    assert!(e.contains("before the previous sample"), "{e}");
}

#[test]
fn replacing_rules_keeps_state_by_name_and_resolves_removed_ones() {
    let a = Rule::new("a", "x", Condition::Threshold { cmp: above(0.0) });
    let b = Rule::new("b", "x", Condition::Threshold { cmp: above(0.0) });
    let mut ev = Evaluator::new(vec![a.clone(), b], 0.0).unwrap();
    assert_eq!(run(&mut ev, "x", &[(0.0, 1.0)]).len(), 2);
    let mut a2 = a.clone();
    a2.condition = Condition::Threshold { cmp: above(5.0) };
    let t = ev.set_rules(vec![a2]).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].rule.as_str(), t[0].kind, t[0].notify),
        ("b", TransitionKind::Resolved, true)
    );
    // `a` is still firing (no second announcement); its new limit resolves it.
    assert_eq!(
        run(&mut ev, "x", &[(10.0, 1.0)]),
        [(10.0, "resolved", true)]
    );
    let dup = ev.set_rules(vec![a.clone(), a]).unwrap_err().to_string();
    assert!(dup.contains("defined twice"), "{dup}");
}

const RULES: &str = r#"-- test rules
return {
  { name = "vram-leak", metric = "vram_own_mb", kind = "slope", window_s = 3600,
    above = 50, severity = "critical" },
  { name = "rss", metric = "rss_mb", above = 8000, for_s = 60 },
  stalled = { metric = "requests_ok", kind = "no_progress", for_s = 60 },
}
"#;

#[test]
fn rules_files_read_list_and_map_forms() {
    let rules = rules_from_source(Path::new("r.lua"), RULES).unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["vram-leak", "rss", "stalled"]);
    assert_eq!(
        rules[0].condition,
        Condition::Slope {
            window_s: 3600.0,
            min_samples: 2,
            min_span_s: 0.0,
            cmp: above(50.0)
        }
    );
    assert_eq!(rules[0].severity, "critical");
    assert_eq!(
        (rules[1].for_s, rules[1].condition.kind()),
        (60.0, "threshold")
    );
    assert_eq!(rules[2].condition, Condition::NoProgress);
}

#[test]
fn rule_errors_name_file_and_line() {
    let err = |src: &str| {
        rules_from_source(Path::new("r.lua"), src)
            .unwrap_err()
            .to_string()
    };
    let e = err("return {\n  { name = 'a', metric = 'x', above = 1 },\n  { name = 'b', metric = 'x', abvoe = 1 },\n}\n");
    assert!(
        e.starts_with("r.lua:3: rule 'b': unknown field 'abvoe'"),
        "{e}"
    );
    let e = err("return {\n\n  { name = 'a', metric = 'x', kind = 'slop', above = 1 },\n}\n");
    assert!(
        e.starts_with("r.lua:3: rule 'a': unknown kind 'slop'"),
        "{e}"
    );
    let e = err("return {\n  stalled = { metric = 'x', kind = 'no_progress' },\n}\n");
    assert!(
        e.starts_with("r.lua:2: rule 'stalled': a no_progress rule needs for_s"),
        "{e}"
    );
    let e = err("return {\n  { name = 'a', metric = 'x', above = 'high' },\n}\n");
    assert_eq!(
        e,
        "r.lua:2: rule 'a': field 'above': expected a number, got string"
    );
    let e = err("return {\n  { name = 'a' metric = 'x' },\n}\n");
    assert!(e.starts_with("r.lua:2:"), "{e}");
    let e = err("local t = {}\nreturn t.x.y\n");
    assert!(e.starts_with("r.lua:2:"), "{e}");
    let e = err("return 5\n");
    assert_eq!(
        e,
        "r.lua: a rules file must return a table of rules, got integer"
    );
}

#[test]
fn alerts_store_every_transition_and_notify_without_waiting_for_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("r.sqlite")).unwrap();
    let run = store
        .begin_run(RunInfo {
            phase: "soak".into(),
            name: "alerts".into(),
            ..RunInfo::default()
        })
        .unwrap();
    // A webhook that holds every request until released, answering 500.
    let server = TestServer::start(Reply::Gated(500));
    let hook = Webhook::new(Format::Generic, &format!("{}/alert", server.base), None).unwrap();
    let mut rule = Rule::new("rss", "rss_mb", Condition::Threshold { cmp: above(100.0) });
    rule.for_s = 10.0;
    let policy = DeliveryPolicy {
        tries: 3,
        backoff_base: Duration::from_millis(5),
        // One at a time: while the server holds the first request, the second stays queued.
        concurrency: 1,
        ..DeliveryPolicy::default()
    };
    let mut alerts = Alerts::new(vec![rule], 0.0, vec![hook], policy).unwrap();
    let mut kinds = Vec::new();
    for (ts, v) in [(0.0, 50.0), (5.0, 150.0), (15.0, 150.0)] {
        let t = alerts
            .observe(&Sample::at(ts).with("rss_mb", v), Some((&store, run)))
            .unwrap();
        kinds.extend(t.iter().map(|t| t.kind.name()));
    }
    assert_eq!(kinds, ["pending", "firing"]);
    // The firing notification is held at the server; sampling goes on meanwhile.
    assert_eq!(server.recv().body["state"], "firing");
    for i in 0..50 {
        let ts = 20.0 + f64::from(i);
        let t = alerts
            .observe(&Sample::at(ts).with("rss_mb", 150.0), Some((&store, run)))
            .unwrap();
        assert!(t.is_empty());
    }
    let t = alerts
        .observe(&Sample::at(100.0).with("rss_mb", 10.0), Some((&store, run)))
        .unwrap();
    assert_eq!(t[0].kind, TransitionKind::Resolved);
    let s = alerts.stats();
    assert_eq!((server.hits(), s.failed, s.sent), (1, 0, 0));
    assert_eq!((s.in_flight, s.pending), (1, 1), "{s:?}");
    server.open_gate();
    assert!(alerts.flush(Duration::from_secs(10)));
    assert_eq!(server.hits(), 6, "two notifications, three tries each");
    let s = alerts.stats();
    assert_eq!((s.failed, s.retries), (2, 4));

    let events = store.events(run).unwrap();
    let alert_events: Vec<_> = events.iter().filter(|e| e.kind == "alert").collect();
    let transitions: Vec<&str> = alert_events
        .iter()
        .map(|e| e.payload["transition"].as_str().unwrap())
        .collect();
    assert_eq!(transitions, ["pending", "firing", "resolved"]);
    assert_eq!(alert_events[1].payload["ts"], 15.0);
    assert_eq!(alert_events[1].payload["notified"], true);
    let failed = events
        .iter()
        .filter(|e| e.kind == "webhook" && e.payload["outcome"] == "failed")
        .count();
    assert_eq!(failed, 2);
    assert!(Arc::strong_count(&alerts.webhooks()[0]) >= 1);
}

/// A synthetic 3-hour soak sampled every 30 s: healthy until `leak_from` seconds, then VRAM grows
/// 60 MB/h. Returns the transitions of the default rules.
fn default_rules_soak(leak_from: f64) -> Vec<Transition> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/alerts/default.lua");
    let mut ev = Evaluator::new(load_rules(&path).unwrap(), 0.0).unwrap();
    let mut out = Vec::new();
    for i in 0..=360 {
        let t = f64::from(i) * 30.0;
        let leak = (t - leak_from).max(0.0) / 3600.0 * 60.0;
        let wobble = if i % 2 == 0 { 3.0 } else { -3.0 };
        let s = Sample::at(1_800_000_000.0 + t)
            .with("vram_own_mb", 4000.0 + wobble + leak)
            .with("rss_mb", 900.0 - wobble)
            .with("tokens_per_s", 40.0 + wobble)
            .with("requests_ok", f64::from(i) * 10.0)
            .with("requests_failed", f64::from(i / 40));
        out.extend(ev.observe(&s).unwrap());
    }
    out
}

#[test]
fn default_rules_stay_quiet_on_a_healthy_soak_and_catch_a_vram_leak() {
    let healthy = default_rules_soak(f64::INFINITY);
    assert!(healthy.is_empty(), "{healthy:?}");
    // The leak starts at 1 h; the fitted slope over the last hour passes 50 MB/h when most of
    // the window is leaking: 60 · (fraction of the window past the start)·(shape) — between
    // 1.5 h and 2 h.
    let leaking = default_rules_soak(3600.0);
    let fired: Vec<_> = leaking.iter().map(|t| (t.rule.as_str(), t.kind)).collect();
    assert_eq!(
        fired,
        [("vram-leak", TransitionKind::Firing)],
        "{leaking:?}"
    );
    let at = leaking[0].ts - 1_800_000_000.0;
    assert!((5400.0..=7200.0).contains(&at), "fired at {at} s");
}
