//! A tiny HTTP/1.1 server on 127.0.0.1 for webhook tests (std only, one thread per
//! connection): it records every request and answers with a fixed status, after an optional
//! gate, or never.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How the server answers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reply {
    /// At once, with this status.
    Status(u16),
    /// With this status once the gate is opened.
    Gated(u16),
    /// Never (the connection stays open until the gate opens, then closes without an answer).
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub path: String,
    pub content_type: Option<String>,
    pub body: serde_json::Value,
}

type Gate = Arc<(Mutex<bool>, Condvar)>;

/// A running test server; dropping it opens the gate (no thread stays blocked).
pub(crate) struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    requests: Receiver<Received>,
    hits: Arc<AtomicUsize>,
    gate: Gate,
}

impl TestServer {
    /// Starts a server answering `reply`.
    pub fn start(reply: Reply) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let (tx, rx) = channel();
        let hits = Arc::new(AtomicUsize::new(0));
        let gate: Gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (h, g) = (Arc::clone(&hits), Arc::clone(&gate));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (tx, h, g) = (tx.clone(), Arc::clone(&h), Arc::clone(&g));
                std::thread::spawn(move || serve(stream, reply, tx, h, g));
            }
        });
        TestServer {
            base,
            requests: rx,
            hits,
            gate,
        }
    }

    /// The next request; panics (fails the test) when none comes within 10 s.
    pub fn recv(&self) -> Received {
        self.requests
            .recv_timeout(Duration::from_secs(10))
            .expect("the test server received no request within 10 s")
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Lets gated and hanging connections go on.
    pub fn open_gate(&self) {
        let (m, c) = &*self.gate;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        c.notify_all();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.open_gate();
    }
}

fn wait_gate(gate: &Gate) {
    let (m, c) = &**gate;
    let mut open = m.lock().unwrap_or_else(|e| e.into_inner());
    while !*open {
        open = c.wait(open).unwrap_or_else(|e| e.into_inner());
    }
}

fn serve(
    stream: TcpStream,
    reply: Reply,
    tx: Sender<Received>,
    hits: Arc<AtomicUsize>,
    gate: Gate,
) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        let mut content_type = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "content-type" => content_type = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        hits.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(Received {
            path,
            content_type,
            body,
        });
        let status = match reply {
            Reply::Status(s) => s,
            Reply::Gated(s) => {
                wait_gate(&gate);
                s
            }
            Reply::Hang => {
                wait_gate(&gate);
                return;
            }
        };
        let text = "ok";
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{text}",
            text.len()
        );
        let mut w = &write_half;
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// Every log record of this test binary (after [`capture_logs`] was first called), formatted.
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("[{} {}] {}", record.level(), record.target(), record.args());
        LOGS.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Installs the capturing logger (at `trace`) once for the whole test binary. Panics when another
/// logger is already installed, so a test relying on captured logs cannot pass vacuously.
pub(crate) fn capture_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger is installed in the lib tests");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// The log lines captured so far.
pub(crate) fn captured_logs() -> Vec<String> {
    LOGS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
