//! `rawrxd serve -m MODEL`: the engine behind an OpenAI-compatible HTTP API with Prometheus
//! metrics, until Ctrl-C.
//!
//! Binds 127.0.0.1 unless `--host` says otherwise. Once listening it prints one line,
//! `listening on http://HOST:PORT`, on stdout (with the real port when `--port 0` asked for an
//! ephemeral one). The first Ctrl-C stops accepting connections and lets the answers in flight
//! finish; a second one exits at once.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rawrxd::engine::scheduler::SchedulerConfig;
use rawrxd::engine::service::{ModelService, ServiceConfig};
use rawrxd::engine::Backend;
use rawrxd::serve::Server;

/// Arguments of `rawrxd serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The GGUF model to serve.
    #[arg(short, long)]
    pub model: PathBuf,
    /// Backend: cpu, vulkan or auto.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Sequences served at once (KV cache slots).
    #[arg(long, default_value_t = 4)]
    pub slots: usize,
    /// KV cache positions per sequence.
    #[arg(short = 'c', long = "ctx", default_value_t = 2048)]
    pub ctx: usize,
    /// CPU threads (default: one per core).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Requests that may wait for a slot; more are answered with HTTP 503.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// Prompt tokens prefilled per engine step, over all sequences (while others decode, also
    /// at most what fills the engine's 16-row pass).
    #[arg(long, default_value_t = 256)]
    pub prefill_chunk: usize,
    /// Limit on one request, seconds (default: none).
    #[arg(long)]
    pub timeout: Option<f64>,
}

impl ServeArgs {
    /// The validated service settings.
    fn config(&self) -> anyhow::Result<ServiceConfig> {
        let backend: Backend = self.backend.parse()?;
        anyhow::ensure!(self.slots >= 1, "--slots must be at least 1");
        anyhow::ensure!(self.ctx >= 1, "--ctx must be at least 1");
        anyhow::ensure!(self.queue >= 1, "--queue must be at least 1");
        let default_timeout = match self.timeout {
            None => None,
            Some(s) => Some(
                Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .with_context(|| format!("--timeout {s}: expected positive seconds"))?,
            ),
        };
        Ok(ServiceConfig {
            backend,
            n_ctx: self.ctx,
            slots: self.slots,
            threads: self.threads,
            scheduler: SchedulerConfig {
                queue_capacity: self.queue,
                max_batch: None,
                prefill_chunk: self.prefill_chunk.max(1),
                default_timeout,
            },
        })
    }
}

/// Loads the model and serves it until Ctrl-C.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let service = ModelService::load(&args.model, &config)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let s = service.scheduler();
    log::info!(
        "{}: {} on {}, {} slots of {} positions",
        service.id(),
        s.backend(),
        s.device(),
        s.n_slots(),
        s.n_ctx()
    );
    let service = Arc::new(service);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let addr = SocketAddr::new(args.host, args.port);
        let server = Server::bind(service.clone(), addr).await?;
        let mut out = std::io::stdout();
        writeln!(out, "listening on {}", server.base_url())?;
        out.flush()?;
        server
            .serve_until(async {
                let _ = tokio::signal::ctrl_c().await;
                log::info!("shutting down: waiting for the answers in flight (Ctrl-C again quits)");
                tokio::spawn(async {
                    let _ = tokio::signal::ctrl_c().await;
                    std::process::exit(130);
                });
            })
            .await?;
        anyhow::Ok(())
    })?;
    drop(runtime);
    // The last reference: stops the scheduler thread.
    drop(service);
    Ok(())
}
