//! Reopening an ended run so a restarted process can append to it (a resumed soak).
//!
//! Invariant: only a run whose owner is gone can be reopened — `ok`, `failed` and `interrupted`
//! runs, or a `running` one whose process is dead (reconciled first). Reopening makes this
//! process its owner (host, pid, process start time), clears `ended_at` and `error`, and sets the
//! status back to `running`, so a later crash is reconciled as `interrupted` again.

use rusqlite::params;

use super::{provenance, DbResultExt, RunId, RunStatus, Store, StoreError};
use crate::Result;

impl Store {
    /// Makes the ended run `run` `running` again, owned by this process; see the module header.
    pub fn reopen_run(&self, run: RunId) -> Result<()> {
        self.reconcile()?;
        let status = self.run(run)?.status;
        if status == RunStatus::Running {
            return Err(StoreError::Invalid(format!(
                "run {run} is still running in a live process; it cannot be resumed here"
            ))
            .into());
        }
        self.conn
            .execute(
                "UPDATE runs SET status = 'running', error = NULL, ended_at = NULL,
                     host = ?2, pid = ?3, pid_start = ?4
                 WHERE id = ?1",
                params![
                    run.0,
                    provenance::host_name(),
                    i64::from(std::process::id()),
                    provenance::own_start_time().map(|t| t as i64),
                ],
            )
            .db(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunInfo;

    #[test]
    fn only_an_ended_run_is_reopened_and_it_runs_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("r.sqlite")).unwrap();
        let run = store.begin_run(RunInfo::new("p", "n")).unwrap();
        let err = store.reopen_run(run).unwrap_err().to_string();
        assert!(err.contains("still running"), "{err}");
        store
            .end_run(run, RunStatus::Interrupted, Some("killed"))
            .unwrap();
        store.reopen_run(run).unwrap();
        let r = store.run(run).unwrap();
        assert_eq!(r.status, RunStatus::Running);
        assert_eq!((r.ended_at, r.error), (None, None));
        assert_eq!(r.pid, i64::from(std::process::id()));
        assert!(store.reopen_run(RunId(run.0 + 1)).is_err(), "no such run");
    }
}
