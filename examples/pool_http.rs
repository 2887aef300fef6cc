//! A short closed-loop and open-loop load against an OpenAI-compatible streaming endpoint.
//!
//! `cargo run --example pool_http -- <base-url | fake> [model] [--chat] [--users N] [--rate R]
//! [--seconds S] [--max-tokens N]`
//!
//! `fake` starts rawrxd's loopback fake server (20 ms TTFT, 5 ms per token) and loads that. Runs
//! a closed loop of `--users` (default 4) and then a Poisson open loop at `--rate` requests/s
//! (default 20), each for `--seconds` (default 5), and prints their percentile tables.

use std::sync::Arc;
use std::time::Duration;

use rawrxd::pool::fake::{FakeConfig, FakeServer};
use rawrxd::pool::{
    run, Arrivals, CancellationToken, Endpoint, Load, OpenAiHttpConfig, OpenAiHttpTarget,
    PoolConfig, Request, RequestSource, Slo, Target,
};
use rawrxd::{Error, Result};

struct Args {
    url: String,
    model: String,
    endpoint: Endpoint,
    users: u32,
    rate: f64,
    seconds: f64,
    max_tokens: u32,
}

fn parse() -> Result<Args> {
    let mut args = Args {
        url: String::new(),
        model: "default".into(),
        endpoint: Endpoint::Completions,
        users: 4,
        rate: 20.0,
        seconds: 5.0,
        max_tokens: 64,
    };
    let mut positional = Vec::new();
    let mut it = std::env::args().skip(1);
    let bad = |flag: &str| Error::Invalid(format!("{flag}: expected a number"));
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| bad(flag));
        match arg.as_str() {
            "--chat" => args.endpoint = Endpoint::Chat,
            "--users" => args.users = value("--users")?.parse().map_err(|_| bad("--users"))?,
            "--rate" => args.rate = value("--rate")?.parse().map_err(|_| bad("--rate"))?,
            "--seconds" => {
                args.seconds = value("--seconds")?.parse().map_err(|_| bad("--seconds"))?
            }
            "--max-tokens" => {
                args.max_tokens = value("--max-tokens")?
                    .parse()
                    .map_err(|_| bad("--max-tokens"))?
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    args.url = positional.next().ok_or_else(|| {
        Error::Invalid("usage: pool_http <base-url | fake> [model] [--chat] [--users N] [--rate R] [--seconds S] [--max-tokens N]".into())
    })?;
    if let Some(model) = positional.next() {
        args.model = model;
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse()?;
    let _fake; // keeps the fake server alive for the whole run
    let url = if args.url == "fake" {
        let server = FakeServer::start(FakeConfig {
            ttft: Duration::from_millis(20),
            token_delay: Duration::from_millis(5),
            jitter: 0.3,
            ..FakeConfig::default()
        })
        .await
        .map_err(|e| Error::Invalid(format!("fake server: {e}")))?;
        let url = server.base_url();
        _fake = server;
        url
    } else {
        args.url.clone()
    };
    let target: Arc<dyn Target> = Arc::new(OpenAiHttpTarget::new(OpenAiHttpConfig::new(
        url,
        args.endpoint,
        args.model.clone(),
    ))?);
    println!("target: {}", target.describe());
    let max_tokens = args.max_tokens;
    let mut source = RequestSource::from_fn(move |i| {
        let mut request = Request::text(
            format!("Request {i}: write a short story about a lighthouse keeper."),
            max_tokens,
        );
        request.temperature = Some(0.0);
        request
            .extra
            .insert("ignore_eos".into(), serde_json::Value::Bool(true));
        Ok(request)
    });
    let duration = Duration::from_secs_f64(args.seconds);
    let slo = Slo {
        ttft_ms: Some(500.0),
        tpot_ms: Some(50.0),
        ..Slo::new()
    };
    let loads = [
        (
            format!("closed loop, {} users", args.users),
            Load::Closed {
                users: args.users,
                think: Duration::ZERO,
            },
        ),
        (
            format!("open loop, Poisson {} req/s", args.rate),
            Load::Open {
                arrivals: Arrivals::Poisson {
                    rate: args.rate,
                    seed: 1,
                },
                max_in_flight: 1024,
            },
        ),
    ];
    for (name, load) in loads {
        let config = PoolConfig {
            slo: Some(slo.clone()),
            progress: true,
            ..PoolConfig::new(load, duration)
        };
        let result = run(
            target.clone(),
            &mut source,
            &config,
            CancellationToken::new(),
        )
        .await?;
        println!(
            "\n== {name} (SLO: TTFT ≤ 500 ms, TPOT ≤ 50 ms)\n{}",
            result.table()
        );
        for (kind, examples) in &result.error_examples {
            println!("  {kind}: {}", examples[0]);
        }
    }
    Ok(())
}
