//! Ctrl-C (SIGINT) for soaks: the first interrupt ends every running soak cleanly (it writes its
//! summary and ends its run `interrupted`); an interrupt while no soak runs, or a second one while
//! a soak is already stopping, exits the process with status 130 as an unhandled SIGINT would.
//!
//! Why a process-wide listener: once tokio has installed its SIGINT handler it stays installed for
//! the life of the process, so without this listener a Ctrl-C after a soak returned would be
//! swallowed. The listener runs on its own thread with a one-thread runtime, started on first use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio_util::sync::CancellationToken;

static ACTIVE: Mutex<Vec<(u64, CancellationToken)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static LISTENER: OnceLock<bool> = OnceLock::new();

fn active() -> std::sync::MutexGuard<'static, Vec<(u64, CancellationToken)>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the listener thread once; `false` if it could not start (then Ctrl-C keeps its default
/// behaviour of killing the process, and the run is reconciled as interrupted later).
fn ensure_listener() -> bool {
    *LISTENER.get_or_init(|| {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(_) => return false,
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("rawrxd-sigint".into())
            .spawn(move || {
                runtime.block_on(async move {
                    // Registering the handler is what `ctrl_c()` does on first poll; do it
                    // before reporting ready, so no interrupt between the two is lost.
                    let mut sigint = match tokio::signal::unix::signal(
                        tokio::signal::unix::SignalKind::interrupt(),
                    ) {
                        Ok(s) => s,
                        Err(_) => {
                            let _ = ready_tx.send(false);
                            return;
                        }
                    };
                    let _ = ready_tx.send(true);
                    while sigint.recv().await.is_some() {
                        let tokens = active();
                        if tokens.is_empty() || tokens.iter().any(|(_, t)| t.is_cancelled()) {
                            eprintln!("rawrxd: interrupted");
                            std::process::exit(130);
                        }
                        eprintln!("rawrxd: interrupt: ending the soak (Ctrl-C again to quit now)");
                        for (_, t) in tokens.iter() {
                            t.cancel();
                        }
                    }
                });
            });
        spawned.is_ok() && ready_rx.recv().unwrap_or(false)
    })
}

/// While alive, a SIGINT cancels `token` instead of killing the process.
pub struct InterruptGuard {
    id: Option<u64>,
}

impl InterruptGuard {
    /// Routes SIGINT to `token` until the guard is dropped.
    pub fn new(token: CancellationToken) -> InterruptGuard {
        let id = ensure_listener().then(|| {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            active().push((id, token));
            id
        });
        InterruptGuard { id }
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            active().retain(|(i, _)| *i != id);
        }
    }
}
