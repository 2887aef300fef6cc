//! `rawrxd serve`: a [`ModelService`] behind an OpenAI-compatible HTTP API (axum).
//!
//! Routes: `POST /v1/completions` and `POST /v1/chat/completions` (streamed as server-sent
//! events or whole JSON; see [`wire`]), `GET /v1/models`, `GET /health`, `GET /metrics`
//! (Prometheus text; see [`prometheus`]).
//!
//! Lifecycle: [`Server::bind`] listens and serves on the current tokio runtime; [`Server::shutdown`]
//! (or the future given to [`Server::serve_until`]) stops accepting connections and waits for
//! the answers in flight to finish — the graceful shutdown `rawrxd serve` does on Ctrl-C. Small
//! SSE frames are sent with `TCP_NODELAY`, so token timing is not distorted by Nagle's algorithm.

mod routes;
pub mod stop;

pub mod prometheus;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::service::ModelService;
use crate::pool::Endpoint;
use crate::{Error, Result};
use prometheus::HttpMetrics;
use routes::AppState;

/// The router over `service`, counting into `metrics`.
pub fn router(service: Arc<ModelService>, metrics: Arc<HttpMetrics>) -> Router {
    let state = Arc::new(AppState {
        service,
        metrics,
        next_id: AtomicU64::new(0),
    });
    Router::new()
        .route(
            "/v1/completions",
            post(|s: axum::extract::State<Arc<AppState>>, body| {
                routes::generate(s.0, Endpoint::Completions, body)
            }),
        )
        .route(
            "/v1/chat/completions",
            post(|s: axum::extract::State<Arc<AppState>>, body| {
                routes::generate(s.0, Endpoint::Chat, body)
            }),
        )
        .route("/v1/models", get(routes::models))
        .route("/health", get(routes::health))
        .route("/metrics", get(routes::metrics))
        .with_state(state)
}

/// A listening server; see the module header.
pub struct Server {
    addr: SocketAddr,
    metrics: Arc<HttpMetrics>,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Listens on `addr` (port 0: an ephemeral port) and serves `service` on the current tokio
    /// runtime.
    pub async fn bind(service: Arc<ModelService>, addr: SocketAddr) -> Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Invalid(format!("cannot listen on {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Invalid(format!("listening socket: {e}")))?;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let metrics = Arc::new(HttpMetrics::default());
        let app = router(service, metrics.clone());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
        });
        Ok(Server {
            addr,
            metrics,
            stop,
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTP metrics.
    pub fn metrics(&self) -> &Arc<HttpMetrics> {
        &self.metrics
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn serve_until(self, signal: impl Future<Output = ()>) -> Result<()> {
        signal.await;
        self.shutdown().await
    }

    /// Stops accepting connections and waits for the answers in flight.
    pub async fn shutdown(self) -> Result<()> {
        self.stop.cancel();
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Invalid(format!("server on {}: {e}", self.addr))),
            Err(e) => Err(Error::Invalid(format!("server task on {}: {e}", self.addr))),
        }
    }
}
