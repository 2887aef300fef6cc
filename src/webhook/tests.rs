//! Webhook delivery against real HTTP servers on 127.0.0.1: payload shapes, retries, timeouts,
//! the queue bound, stored outcomes, and the URL never leaking.

use std::sync::Arc;
use std::time::Duration;

use super::test_server::{capture_logs, captured_logs, Reply, TestServer};
use super::*;
use crate::store::{self, ExportFormat, RunId, RunInfo, Store};

fn fast(tries: u32) -> DeliveryPolicy {
    DeliveryPolicy {
        tries,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        ..DeliveryPolicy::default()
    }
}

fn alert(name: &str, state: NotifyState, run: Option<i64>) -> Notification {
    Notification {
        alert: Some(name.into()),
        state,
        severity: "warning".into(),
        value: Some(61.5),
        message: format!("{name} message"),
        run_id: run,
        ts: 1_800_000_000.25,
    }
}

fn store_with_run() -> (tempfile::TempDir, Store, RunId) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("r.sqlite")).unwrap();
    let run = s
        .begin_run(RunInfo {
            phase: "test".into(),
            name: "webhooks".into(),
            ..RunInfo::default()
        })
        .unwrap();
    (dir, s, run)
}

fn webhook_events(s: &Store, run: RunId) -> Vec<serde_json::Value> {
    s.events(run)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "webhook")
        .map(|e| e.payload)
        .collect()
}

#[test]
fn slack_discord_and_generic_payloads_arrive_well_formed() {
    let server = TestServer::start(Reply::Status(200));
    let d = Dispatcher::new(fast(1)).unwrap();
    for (fmt, path) in [
        (Format::Slack, "/slack/T1/B2/S3"),
        (Format::Discord, "/api/webhooks/9/tok"),
        (Format::Generic, "/hook"),
    ] {
        let w = Arc::new(Webhook::new(fmt, &format!("{}{path}", server.base), None).unwrap());
        d.send(&w, alert("vram-leak", NotifyState::Firing, Some(7)), None);
        assert!(d.flush(Duration::from_secs(10)));
        let got = server.recv();
        assert_eq!(got.path, path);
        assert_eq!(got.content_type.as_deref(), Some("application/json"));
        let obj = got.body.as_object().unwrap();
        let text = "[FIRING] vram-leak (warning): vram-leak message (value 61.5, run 7)";
        match fmt {
            Format::Slack => {
                assert_eq!(obj.len(), 1, "{obj:?}");
                assert_eq!(obj["text"], text);
            }
            Format::Discord => {
                assert_eq!(obj.len(), 1, "{obj:?}");
                assert_eq!(obj["content"], text);
            }
            Format::Generic => {
                assert_eq!(obj.len(), 7, "{obj:?}");
                assert_eq!(obj["alert"], "vram-leak");
                assert_eq!(obj["state"], "firing");
                assert_eq!(obj["severity"], "warning");
                assert_eq!(obj["value"], 61.5);
                assert_eq!(obj["message"], "vram-leak message");
                assert_eq!(obj["run_id"], 7);
                assert_eq!(obj["ts"], 1_800_000_000.25);
            }
        }
    }
    let s = d.stats();
    assert_eq!(
        (s.queued, s.sent, s.failed, s.dropped, s.retries),
        (3, 3, 0, 0, 0)
    );
}

#[test]
fn server_errors_are_retried_without_holding_up_the_sender_and_stored_as_failed() {
    let (_dir, st, run) = store_with_run();
    let server = TestServer::start(Reply::Gated(500));
    let d = Dispatcher::new(fast(3)).unwrap();
    let w = Arc::new(Webhook::new(Format::Generic, &format!("{}/h", server.base), None).unwrap());
    let target = StoreTarget {
        path: st.path().to_path_buf(),
        run,
    };
    d.send(
        &w,
        alert("errors", NotifyState::Firing, Some(run.0)),
        Some(target),
    );
    // The first attempt is at the server and held there: the sender has long returned.
    server.recv();
    let s = d.stats();
    assert_eq!((s.in_flight, s.sent, s.failed), (1, 0, 0));
    server.open_gate();
    assert!(d.flush(Duration::from_secs(10)));
    assert_eq!(server.hits(), 3);
    let s = d.stats();
    assert_eq!((s.sent, s.failed, s.retries, s.in_flight), (0, 1, 2, 0));
    let ev = webhook_events(&st, run);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["outcome"], "failed");
    assert_eq!(ev[0]["attempts"], 3);
    assert_eq!(ev[0]["status"], 500);
    assert_eq!(ev[0]["alert"], "errors");
    assert_eq!(ev[0]["webhook"], "generic webhook (configured URL)");
}

#[test]
fn client_errors_are_not_retried() {
    let server = TestServer::start(Reply::Status(404));
    let d = Dispatcher::new(fast(3)).unwrap();
    let w = Arc::new(Webhook::new(Format::Slack, &format!("{}/gone", server.base), None).unwrap());
    d.send(&w, Notification::text("hello", None, 0.0), None);
    assert!(d.flush(Duration::from_secs(10)));
    assert_eq!(server.hits(), 1);
    let r = d.recent();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].outcome, r[0].status, r[0].attempts),
        (Outcome::Failed, Some(404), 1)
    );
}

#[test]
fn a_hanging_endpoint_times_out_and_is_retried() {
    let server = TestServer::start(Reply::Hang);
    let d = Dispatcher::new(DeliveryPolicy {
        timeout: Duration::from_millis(150),
        ..fast(2)
    })
    .unwrap();
    let w = Arc::new(Webhook::new(Format::Discord, &format!("{}/x", server.base), None).unwrap());
    d.send(&w, alert("stall", NotifyState::Firing, None), None);
    server.recv();
    // Held by the hanging server, and the caller goes on queueing.
    assert_eq!(d.stats().in_flight, 1);
    d.send(&w, alert("stall", NotifyState::Resolved, None), None);
    assert!(d.flush(Duration::from_secs(10)));
    let r = d.recent();
    assert_eq!(r.len(), 2);
    for x in &r {
        assert_eq!(x.outcome, Outcome::Failed);
        assert_eq!(x.attempts, 2);
        assert_eq!(x.status, None);
        let e = x.error.as_deref().unwrap();
        assert!(e.starts_with("timed out after 0.150 s"), "{e}");
    }
    assert_eq!(server.hits(), 4);
}

#[test]
fn a_full_queue_drops_the_oldest_and_counts_it() {
    let (_dir, st, run) = store_with_run();
    let server = TestServer::start(Reply::Gated(200));
    let d = Dispatcher::new(DeliveryPolicy {
        queue_capacity: 2,
        concurrency: 1,
        ..fast(1)
    })
    .unwrap();
    let w = Arc::new(Webhook::new(Format::Generic, &format!("{}/q", server.base), None).unwrap());
    let target = Some(StoreTarget {
        path: st.path().to_path_buf(),
        run,
    });
    let note = |i: i32| Notification::text(format!("n{i}"), Some(run.0), f64::from(i));
    d.send(&w, note(1), target.clone());
    assert_eq!(server.recv().body["message"], "n1");
    for i in 2..=6 {
        d.send(&w, note(i), target.clone());
    }
    let s = d.stats();
    assert_eq!((s.queued, s.dropped, s.pending, s.in_flight), (6, 3, 2, 1));
    server.open_gate();
    assert!(d.flush(Duration::from_secs(10)));
    let got: Vec<String> = (0..2)
        .map(|_| server.recv().body["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ["n5", "n6"]);
    assert_eq!(server.hits(), 3);
    let s = d.stats();
    assert_eq!((s.sent, s.dropped, s.failed), (3, 3, 0));
    let ev = webhook_events(&st, run);
    let count = |o: &str| ev.iter().filter(|e| e["outcome"] == o).count();
    assert_eq!((count("dropped"), count("delivered")), (3, 3), "{ev:?}");
    assert!(ev
        .iter()
        .filter(|e| e["outcome"] == "dropped")
        .all(|e| e["error"] == "queue full" && e["attempts"] == 0));
}

#[test]
fn the_url_never_reaches_logs_errors_or_the_store() {
    capture_logs();
    let (_dir, st, run) = store_with_run();
    const SECRET: &str = "XOXB-not-a-real-SECRET-4711";
    let failing = TestServer::start(Reply::Status(503));
    // A port nobody listens on: connection refused.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let d = Dispatcher::new(DeliveryPolicy {
        queue_capacity: 1,
        concurrency: 1,
        ..fast(2)
    })
    .unwrap();
    let urls = [
        format!("{}/services/{SECRET}?token={SECRET}", failing.base),
        format!("http://{dead}/services/{SECRET}"),
    ];
    let target = Some(StoreTarget {
        path: st.path().to_path_buf(),
        run,
    });
    for (i, url) in urls.iter().enumerate() {
        let w = Arc::new(Webhook::new(Format::Slack, url, Some("ops")).unwrap());
        assert!(!format!("{w:?}").contains(SECRET));
        d.send(
            &w,
            alert("leak", NotifyState::Firing, Some(run.0)),
            target.clone(),
        );
        // A second one overflows the queue of one (or follows): a drop is logged too.
        d.send(
            &w,
            alert("leak", NotifyState::Resolved, Some(run.0)),
            target.clone(),
        );
        assert!(d.flush(Duration::from_secs(10)), "url {i}");
    }
    let s = d.stats();
    assert_eq!(s.sent, 0);
    assert!(s.failed >= 2, "{s:?}");
    for r in d.recent() {
        assert!(!format!("{r:?}").contains(SECRET), "{r:?}");
    }
    let json = store::export(&st, &[run], ExportFormat::Json).unwrap();
    assert!(json.contains("slack webhook 'ops' (configured URL)"));
    assert!(
        !json.contains(SECRET) && !json.contains("/services/"),
        "{json}"
    );
    let logs = captured_logs();
    assert!(
        logs.iter().any(|l| l.contains("slack webhook 'ops'")),
        "the failures were logged: {logs:?}"
    );
    for l in &logs {
        assert!(!l.contains(SECRET) && !l.contains("/services/"), "{l}");
    }
    let e = Webhook::new(Format::Slack, &format!("hxxp://{SECRET}"), None)
        .unwrap_err()
        .to_string();
    assert!(!e.contains(SECRET), "{e}");
}
