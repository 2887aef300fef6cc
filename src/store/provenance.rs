//! Where a run comes from: the rawrxd build, the host, the process — and whether that process is
//! still alive, which is how a run left `running` by a crash is told from one in progress.
//!
//! Liveness is judged by (host, pid, process start time): a run is dead when it was begun on this
//! host and no process with that pid and start time exists any more. Runs begun on other hosts
//! cannot be judged and keep their stored status.

use std::process::Command;
use std::sync::OnceLock;

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

/// The rawrxd version compiled in.
pub fn rawrxd_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The git commit rawrxd was built from: `RAWRXD_GIT_COMMIT` at build time when the build set it,
/// else `git rev-parse HEAD` of the source tree at run time (with `+dirty` for uncommitted
/// changes), else `unknown`. Computed once per process.
pub fn git_commit() -> &'static str {
    static COMMIT: OnceLock<String> = OnceLock::new();
    COMMIT.get_or_init(|| match option_env!("RAWRXD_GIT_COMMIT") {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => runtime_git_commit().unwrap_or_else(|| "unknown".to_string()),
    })
}

fn runtime_git_commit() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("git")
        .args(["-C", dir, "rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    if commit.is_empty() {
        return None;
    }
    let dirty = Command::new("git")
        .args(["-C", dir, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    Some(if dirty { commit + "+dirty" } else { commit })
}

/// This machine's host name, or `unknown`.
pub fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| System::host_name().unwrap_or_else(|_| "unknown".to_string()))
}

/// Start time (seconds since the epoch) of process `pid`: `Some(None)` when no such process
/// exists or it is a zombie (dead, not yet reaped by its parent), `None` when the process table
/// cannot be read.
pub fn process_start_time(pid: u32) -> Option<Option<u64>> {
    let mut sys = System::new().ok()?;
    let pid = Pid::from_u32(pid);
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing(),
    );
    Some(
        sys.process(pid)
            .filter(|p| !matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead))
            .map(|p| p.start_time()),
    )
}

/// This process's start time, computed once.
pub fn own_start_time() -> Option<u64> {
    static START: OnceLock<Option<u64>> = OnceLock::new();
    *START.get_or_init(|| process_start_time(std::process::id()).flatten())
}

/// Whether the process that began a run on `host` as `pid` (started at `pid_start`) is gone.
/// `false` when it cannot be told (another host).
pub fn run_owner_is_dead(host: &str, pid: i64, pid_start: Option<i64>) -> bool {
    if host != host_name() {
        return false;
    }
    let Ok(pid) = u32::try_from(pid) else {
        return true;
    };
    if pid == std::process::id() {
        return false;
    }
    match (process_start_time(pid), pid_start) {
        // The process table cannot be read: no verdict.
        (None, _) => false,
        (Some(None), _) => true,
        // A pid reused by a later process: the owner is gone.
        (Some(Some(now)), Some(then)) => now as i64 != then,
        (Some(Some(_)), None) => false,
    }
}
