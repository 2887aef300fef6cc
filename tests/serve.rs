//! `rawrxd serve` and the in-process pool target on the real test model (SmolLM2-135M Q4_1, CPU):
//! the same request gives the same greedy text in process and over HTTP on loopback, and both
//! equal `engine::generate` on a fresh single-sequence engine (the oracle, itself checked against
//! llama.cpp in `tests/cpu_engine.rs`); `/metrics` is valid Prometheus text whose counters match
//! the requests made; dropping a stream frees its slot; stop sequences cut answers where the
//! oracle's text has them; the Phase 2 Lua script measures the same
//! thing against the in-process engine and against the `rawrxd serve` binary.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rawrxd::engine::scheduler::SchedulerConfig;
use rawrxd::engine::service::{ModelService, ServiceConfig};
use rawrxd::engine::{generate, Backend, CpuEngine};
use rawrxd::gguf::GgufFile;
use rawrxd::model::tokenizer::Tokenizer;
use rawrxd::model::{Sampler, SamplerParams};
use rawrxd::pool::{
    ChatMessage, Endpoint, EngineTarget, Event, OpenAiHttpConfig, OpenAiHttpTarget, Request,
    Target, Usage,
};
use rawrxd::serve::Server;
use rawrxd::store::Store;

fn config() -> ServiceConfig {
    ServiceConfig {
        backend: Backend::Cpu,
        n_ctx: 256,
        slots: 2,
        threads: Some(2),
        scheduler: SchedulerConfig::default(),
    }
}

/// Text and usage of one streamed request.
async fn collect(target: &dyn Target, request: Request) -> (String, Usage) {
    let mut stream = target.send(request);
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        match item.unwrap_or_else(|e| panic!("{}: {e}", target.describe())) {
            Event::Tokens { text: t, .. } => text.push_str(&t),
            Event::Done { usage, .. } => return (text, usage.expect("usage")),
            Event::Accepted { .. } => {}
        }
    }
    panic!("{}: stream ended without done", target.describe())
}

/// Greedy continuation of `prompt` (tokenized like the server does) by `engine::generate`.
fn oracle(model: &Path, prompt: &str, n: usize) -> (String, usize, usize) {
    let (tok, ids, out) = greedy(model, prompt, n);
    (tok.decode(&out), ids.len(), out.len())
}

/// The tokenizer, the prompt's tokens and the greedy continuation's tokens.
fn greedy(model: &Path, prompt: &str, n: usize) -> (Tokenizer, Vec<u32>, Vec<u32>) {
    let f = Arc::new(GgufFile::open(model).unwrap());
    let tok = Tokenizer::from_gguf(&f).unwrap();
    let ids = tok.encode(prompt, true, true).unwrap();
    let mut eng = CpuEngine::load(f, 256, Some(2)).unwrap();
    let mut sampler = Sampler::new(SamplerParams::greedy()).unwrap();
    let mut out = Vec::new();
    generate(
        &mut eng,
        &ids,
        n,
        &mut sampler,
        &|t| tok.is_eog(t),
        &mut |t| {
            out.push(t);
            Ok(true)
        },
    )
    .unwrap();
    (tok, ids, out)
}

/// Parses Prometheus text exposition strictly: every sample belongs to a family declared by
/// `# HELP` and `# TYPE` lines before it; returns samples by `name{labels}` (labels sorted).
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut declared: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split_whitespace().next().expect("HELP name");
            helped.insert(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(
                declared.insert(name.into(), kind.into()).is_none(),
                "declared twice: {line}"
            );
            continue;
        }
        assert!(
            !line.trim().is_empty() && !line.starts_with('#'),
            "{line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, String::new()),
            Some((n, l)) => {
                let l = l.strip_suffix("\"}").expect("closing quote and brace");
                let mut pairs: Vec<String> = l
                    .split("\",")
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").expect("label=\"value\"");
                        assert!(
                            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                            "{line}"
                        );
                        assert!(!v.contains('\n'));
                        format!("{k}=\"{v}\"")
                    })
                    .collect();
                pairs.sort();
                (n, pairs.join(","))
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| declared.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(declared.contains_key(family), "undeclared family: {line}");
        let key = if labels.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{labels}}}")
        };
        assert!(samples.insert(key, value).is_none(), "duplicate: {line}");
    }
    samples
}

/// Checks a histogram family: cumulative buckets, `+Inf` = `_count`; returns the count.
fn histogram_count(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&format!("{name}_bucket{{le=\""))?;
            let le = le.strip_suffix("\"}")?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            Some((bound, *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 2, "{name}: no buckets");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "{name}: not cumulative"
    );
    let (last_bound, last) = *buckets.last().unwrap();
    assert!(last_bound.is_infinite());
    assert_eq!(samples[&format!("{name}_count")], last, "{name}");
    assert!(samples.contains_key(&format!("{name}_sum")));
    last
}

/// The test model served on an ephemeral loopback port (`None` without the model).
async fn serving() -> Option<(PathBuf, Arc<ModelService>, Server)> {
    let model = common::test_model()?;
    let service = Arc::new(ModelService::load(&model, &config()).unwrap());
    let server = Server::bind(service.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Some((model, service, server))
}

/// Waits until the scheduler counts `cancelled` cancelled requests and runs none.
async fn wait_freed(service: &ModelService, cancelled: u64) {
    let sched = service.scheduler();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sched.metrics().cancelled < cancelled || sched.metrics().running > 0 {
        assert!(Instant::now() < deadline, "{:?}", sched.metrics());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_in_process_give_the_oracle_text_and_metrics_count_them() {
    let Some((model, service, server)) = serving().await else {
        return;
    };
    let http = |endpoint| -> Box<dyn Target> {
        let c = OpenAiHttpConfig::new(server.base_url(), endpoint, "any");
        Box::new(OpenAiHttpTarget::new(c).unwrap())
    };
    let local =
        |endpoint| -> Box<dyn Target> { Box::new(EngineTarget::new(service.clone(), endpoint)) };

    // Completions: greedy, 6 tokens.
    let prompt = "The capital of France is";
    let mut request = Request::text(prompt, 6);
    request.temperature = Some(0.0);
    let (want, n_prompt, n_gen) = oracle(&model, prompt, 6);
    let (a, ua) = collect(&*local(Endpoint::Completions), request.clone()).await;
    let (b, ub) = collect(&*http(Endpoint::Completions), request.clone()).await;
    assert_eq!(a, want, "in process");
    assert_eq!(b, want, "over HTTP");
    let usage = Usage {
        prompt_tokens: n_prompt as u64,
        completion_tokens: n_gen as u64,
    };
    assert_eq!((ua, ub), (usage, usage));

    // Chat: the ChatML frame, then greedy.
    let mut chat = Request::chat(
        vec![ChatMessage {
            role: "user".into(),
            content: "What is 2+2?".into(),
        }],
        5,
    );
    chat.temperature = Some(0.0);
    let rendered = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
    let (want_chat, _, n_chat) = oracle(&model, rendered, 5);
    let (a, _) = collect(&*local(Endpoint::Chat), chat.clone()).await;
    let (b, _) = collect(&*http(Endpoint::Chat), chat).await;
    assert_eq!(
        (a.as_str(), b.as_str()),
        (want_chat.as_str(), want_chat.as_str())
    );

    // The same completion, not streamed.
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base_url());
    let whole = json_reply(
        client
            .post(url("/v1/completions"))
            .json(&serde_json::json!({ "prompt": prompt, "max_tokens": 6, "temperature": 0 })),
    )
    .await;
    assert_eq!(whole["choices"][0]["text"], want.as_str());
    assert_eq!(whole["usage"]["completion_tokens"], n_gen);

    // A malformed request is a 400 naming the field.
    let bad = client
        .post(url("/v1/completions"))
        .json(&serde_json::json!({ "prompt": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("prompt"));

    // A client that goes away mid-stream frees its slot.
    let mut long = client
        .post(url("/v1/completions"))
        .json(
            &serde_json::json!({ "prompt": prompt, "max_tokens": 200, "stream": true,
                                   "ignore_eos": true, "temperature": 0 }),
        )
        .send()
        .await
        .unwrap();
    let first = long.chunk().await.unwrap().expect("a first chunk");
    assert!(String::from_utf8_lossy(&first).contains("data:"));
    drop(long);
    wait_freed(&service, 1).await;

    let models = json_reply(client.get(url("/v1/models"))).await;
    assert_eq!(models["data"][0]["id"], "SmolLM2-135M-Instruct.Q4_1");
    let health = client.get(url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let metrics = client.get(url("/metrics")).send().await.unwrap();
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = parse_prometheus(&metrics.text().await.unwrap());
    let req = |endpoint: &str, outcome: &str| {
        m[&format!("rawrxd_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}}")]
    };
    // Over HTTP: 2 completions (streamed and whole) and 1 chat completed, 1 invalid, 1
    // cancelled; the in-process requests never touched the HTTP layer.
    assert_eq!(req("completions", "ok"), 2.0);
    assert_eq!(req("chat", "ok"), 1.0);
    assert_eq!(req("completions", "invalid"), 1.0);
    assert_eq!(req("completions", "cancelled"), 1.0);
    assert_eq!(req("completions", "rejected"), 0.0);
    assert_eq!(
        histogram_count(&m, "rawrxd_time_to_first_token_seconds"),
        4.0
    );
    assert_eq!(
        histogram_count(&m, "rawrxd_e2e_request_latency_seconds"),
        3.0
    );
    histogram_count(&m, "rawrxd_inter_token_latency_seconds");
    assert_eq!(
        m["rawrxd_generation_tokens_total"],
        (2 * n_gen + n_chat) as f64
    );
    assert_eq!(m["rawrxd_slots"], 2.0);
    assert_eq!(m["rawrxd_running_sequences"], 0.0);
    assert_eq!(m["rawrxd_queue_depth"], 0.0);
    assert_eq!(
        m["rawrxd_scheduler_requests_total{outcome=\"cancelled\"}"],
        1.0
    );
    assert!(m["rawrxd_memory_bytes{device=\"false\",kind=\"weights\"}"] > 50e6);
    assert!(m["rawrxd_memory_bytes{device=\"false\",kind=\"kv_cache\"}"] > 0.0);
    server.shutdown().await.unwrap();
}

/// The JSON body of the reply to `req`.
async fn json_reply(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// The text and finish reason of a streamed answer, from its server-sent events.
async fn sse_text(resp: reqwest::Response) -> (String, String) {
    let body = resp.text().await.unwrap();
    let mut text = String::new();
    let mut finish = String::new();
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        if let Some(c) = v["choices"].get(0) {
            text.push_str(c["text"].as_str().unwrap_or_default());
            if let Some(f) = c["finish_reason"].as_str() {
                finish = f.to_string();
            }
        }
    }
    (text, finish)
}

/// `stop` over HTTP and in process: the answer is the oracle's greedy text cut before the first
/// occurrence of a stop string (taken across a token boundary in the middle of that text), whole
/// and streamed, and through the pool's targets, with `finish_reason` "stop"; the request is cancelled in the
/// scheduler (its slot freed); a stop string that never occurs changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sequences_end_the_answer_before_them() {
    let Some((model, service, server)) = serving().await else {
        return;
    };
    let prompt = "The capital of France is";
    let n = 24;
    let (tok, _, out) = greedy(&model, prompt, n);
    let full = tok.decode(&out);
    // The stop string: two chars either side of the boundary between two tokens in the middle,
    // so that the server sees its first part one token before it is complete.
    let at = (n / 2..n)
        .map(|k| tok.decode(&out[..k]).len())
        .find(|&b| full.is_char_boundary(b) && b >= 2)
        .expect("a token boundary in the middle");
    let chars: Vec<usize> = full.char_indices().map(|(i, _)| i).collect();
    let ci = chars.iter().position(|&i| i == at).unwrap();
    assert!(
        ci >= 2 && ci + 2 < chars.len(),
        "the oracle's text is too short: {full:?}"
    );
    let stop = &full[chars[ci - 2]..chars[ci + 2]];
    let want = &full[..full.find(stop).unwrap()];
    let client = reqwest::Client::new();
    let url = format!("{}/v1/completions", server.base_url());
    let ask = |stream: bool, stops: serde_json::Value| {
        client.post(&url).json(&serde_json::json!({
            "prompt": prompt, "max_tokens": n, "temperature": 0, "stream": stream, "stop": stops,
        }))
    };

    let whole = json_reply(ask(false, serde_json::json!(["never here", stop]))).await;
    assert_eq!(
        whole["choices"][0]["text"], want,
        "stop {stop:?} in {full:?}"
    );
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    assert!(whole["usage"]["completion_tokens"].as_u64().unwrap() < n as u64);

    let streamed = sse_text(ask(true, serde_json::json!(stop)).send().await.unwrap()).await;
    assert_eq!(streamed, (want.to_string(), "stop".to_string()));

    // The pool's targets, in process and over HTTP, with `stop` among the extra fields.
    let mut request = Request::text(prompt, n as u32);
    request.temperature = Some(0.0);
    request
        .extra
        .insert("stop".into(), serde_json::json!([stop]));
    let c = OpenAiHttpConfig::new(server.base_url(), Endpoint::Completions, "any");
    let targets: [Box<dyn Target>; 2] = [
        Box::new(EngineTarget::new(service.clone(), Endpoint::Completions)),
        Box::new(OpenAiHttpTarget::new(c).unwrap()),
    ];
    for t in &targets {
        let (text, usage) = collect(&**t, request.clone()).await;
        assert_eq!(text, want, "{}", t.describe());
        assert!(usage.completion_tokens < n as u64, "{}", t.describe());
    }

    // All four requests were cut short in the scheduler, and their slots are free.
    wait_freed(&service, 4).await;

    let untouched = sse_text(
        ask(true, serde_json::json!(["never here"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(untouched, (full.clone(), "length".to_string()));
    server.shutdown().await.unwrap();
}

/// A child process killed when dropped (so a failing test leaves no server behind).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the `rawrxd serve` binary on an ephemeral port; returns it and its base URL.
fn spawn_server(model: &Path) -> (Reaped, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rawrxd"))
        .args(["serve", "--backend", "cpu", "--port", "0", "--slots", "2"])
        .args(["--ctx", "256", "--threads", "2", "-m"])
        .arg(model)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rawrxd serve");
    let stdout = child.stdout.take().unwrap();
    let child = Reaped(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}

/// Runs the Phase 2 script with `args` and a fresh results database; returns the database.
fn phase2(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/phase2_concurrency.lua");
    let db = dir.join(format!("{name}.sqlite"));
    let mut all: Vec<String> = ["--streams", "1,2", "--requests", "2", "--max-tokens", "3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.extend(args.iter().map(|s| s.to_string()));
    let plot = dir.join(name);
    all.extend(["--db".to_string(), db.to_string_lossy().into_owned()]);
    all.extend(["--plot".to_string(), plot.to_string_lossy().into_owned()]);
    let host = rawrxd::lua::Host::new(&script, &all).unwrap();
    assert_eq!(host.run().unwrap(), 0, "{name}: the script reported errors");
    for suffix in ["_tps.svg", "_tps.png", "_latency.svg", "_latency.png"] {
        let file = dir.join(format!("{name}{suffix}"));
        assert!(file.is_file(), "{} was not written", file.display());
    }
    db
}

/// (measurement name and streams tag) → value, and the ITL histogram counts, of the one run.
fn stored(db: &Path) -> (BTreeMap<(String, String), f64>, BTreeMap<String, u64>) {
    let store = Store::open(db).unwrap();
    let runs = store.list_runs(&Default::default()).unwrap();
    assert_eq!(runs.len(), 1);
    let run = runs[0].id;
    let mut values = BTreeMap::new();
    for m in store.measurements(run).unwrap() {
        let streams = m
            .tags
            .get("streams")
            .map(|v| v.to_string())
            .unwrap_or_default();
        values.insert((m.name, streams), m.value);
    }
    let mut hists = BTreeMap::new();
    for (name, _) in store.histogram_names(run).unwrap() {
        let h = store.histogram(run, &name).unwrap().unwrap();
        hists.insert(name, h.len());
    }
    (values, hists)
}

#[test]
fn the_phase2_script_measures_the_engine_in_process_and_over_http() {
    let Some(model) = common::test_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let m = model.to_string_lossy().into_owned();
    let local = phase2(
        dir.path(),
        "engine",
        &[
            "--model",
            &m,
            "--backend",
            "cpu",
            "--ctx",
            "256",
            "--threads",
            "2",
        ],
    );
    let (mut child, url) = spawn_server(&model);
    let remote = phase2(dir.path(), "http", &["--target", &url]);

    let (a, ha) = stored(&local);
    let (b, hb) = stored(&remote);
    for streams in ["1", "2"] {
        let get = |v: &BTreeMap<(String, String), f64>, name: &str| {
            v[&(name.to_string(), streams.to_string())]
        };
        for v in [&a, &b] {
            assert_eq!(get(v, "phase2.completed"), 2.0, "streams {streams}");
            assert_eq!(get(v, "phase2.errors"), 0.0);
            assert!(get(v, "phase2.output_tps") > 0.0);
            assert!(get(v, "phase2.ttft_p50") > 0.0);
        }
        assert!(a.contains_key(&("phase2.scaling_efficiency".to_string(), streams.into())));
    }
    // The same histograms for both targets, one sample per completed request; in process every
    // token is seen (2 requests × 3 tokens → 4 gaps per level), over HTTP only tokens that
    // produced text (an end-of-text token generated under `ignore_eos` renders as nothing).
    assert_eq!(ha.keys().collect::<Vec<_>>(), hb.keys().collect::<Vec<_>>());
    for streams in [1, 2] {
        let name = |m: &str| format!("phase2.{m}{{concurrency={streams},streams={streams}}}");
        assert_eq!(ha[&name("e2e")], 2);
        assert_eq!(hb[&name("e2e")], 2);
        assert_eq!(ha[&name("itl")], 4, "{ha:?}");
        assert!((1..=4).contains(&hb[&name("itl")]), "{hb:?}");
    }

    // Ctrl-C: the server stops gracefully.
    let status = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(code) = child.0.try_wait().unwrap() {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "rawrxd serve did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "exit status {code}");
}
