//! `rawrxd SCRIPT.lua` with alerts and a failing webhook, end to end through the real binary at
//! `RUST_LOG=trace`: the script runs to its end with every delivery failing, every
//! transition and delivery outcome is in the results database, and the webhook URL appears in
//! neither the output nor the database.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rawrxd::store::{RunFilter, Store};

/// A loopback HTTP server answering every request `503`; returns its base URL and hit counter.
fn failing_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let h = Arc::clone(&h);
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut hdr = String::new();
                        if r.read_line(&mut hdr).unwrap_or(0) == 0 {
                            return;
                        }
                        if hdr.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = hdr.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let resp = "HTTP/1.1 503 Unavailable\r\ncontent-length: 0\r\n\r\n";
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base, hits)
}

const SECRET: &str = "T0000-B0000-NotARealSecret9731";

#[test]
fn alerts_with_a_failing_webhook_finish_the_run_and_never_show_the_url() {
    let (base, hits) = failing_server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let script = dir.path().join("soak.lua");
    std::fs::write(
        &script,
        r#"local rx = require "rawrxd"
        rx.results.begin_run { phase = "soak", name = "alerts-cli" }
        local a = rx.alerts.new {
          rules = { { name = "rss", metric = "rss_mb", above = 100 } },
          webhooks = { { kind = "slack", url_env = "RAWRXD_IT_HOOK" } },
          tries = 2, backoff_s = 0.01, timeout_s = 5,
        }
        local fired = 0
        for i = 1, 200 do
          for _, t in ipairs(a:observe { ts = i, rss_mb = (i % 50 < 25) and 50 or 150 }) do
            if t.kind == "firing" then fired = fired + 1 end
          end
        end
        assert(a:flush(20), "flush timed out")
        local s = a:stats()
        print(string.format("fired=%d failed=%d sent=%d", fired, s.failed, s.sent))
        "#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rawrxd"))
        .arg(&script)
        .env("RAWRXD_RESULTS", &db)
        .env("RAWRXD_IT_HOOK", format!("{base}/services/{SECRET}"))
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // 200 samples, 25 above / 25 below: 4 firings and 4 resolves, each tried twice.
    assert!(stdout.contains("fired=4 "), "{stdout}");
    assert!(stdout.contains("failed=8 sent=0"), "{stdout}");
    assert_eq!(hits.load(Ordering::SeqCst), 16);
    assert!(
        stderr.contains("slack webhook ($RAWRXD_IT_HOOK)"),
        "failures are logged by label: {stderr}"
    );
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains(SECRET) && !text.contains("/services/"),
            "{text}"
        );
    }

    let store = Store::open(&db).unwrap();
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    let events = store.events(runs[0].id).unwrap();
    let count = |kind: &str, key: &str, val: &str| {
        events
            .iter()
            .filter(|e| e.kind == kind && e.payload[key] == val)
            .count()
    };
    assert_eq!(count("alert", "transition", "firing"), 4);
    assert_eq!(count("alert", "transition", "resolved"), 4);
    assert_eq!(count("webhook", "outcome", "failed"), 8);
    let dump = std::fs::read(&db).unwrap();
    let wal = std::fs::read(db.with_extension("sqlite-wal")).unwrap_or_default();
    for bytes in [&dump, &wal] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(SECRET),
            "the URL is in the database file"
        );
    }
}
