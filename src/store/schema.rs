//! The database schema and its migrations.
//!
//! Invariants: `schema_version` holds exactly one row, the number of migrations applied. Migrations
//! are append-only — a released migration is never edited, a change is a new entry — and each is
//! applied in its own transaction together with the version bump, so a crash mid-migration leaves
//! the previous version intact. Timestamps are REAL seconds since the Unix epoch (UTC); JSON columns
//! hold objects serialised by serde_json.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::error::StoreError;
use super::DbResultExt;
use crate::Result;

/// The migrations, in order; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: runs, measurements, histograms, series, events, the file-hash cache.
    r#"
    CREATE TABLE runs (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        phase             TEXT    NOT NULL,
        name              TEXT    NOT NULL,
        rawrxd_version    TEXT    NOT NULL,
        git_commit        TEXT    NOT NULL,
        host              TEXT    NOT NULL,
        pid               INTEGER NOT NULL,
        pid_start         INTEGER,
        device            TEXT,
        driver            TEXT,
        model_path        TEXT,
        model_sha256      TEXT,
        variant           TEXT,
        params            TEXT    NOT NULL DEFAULT '{}',
        config_generation INTEGER NOT NULL DEFAULT 0,
        started_at        REAL    NOT NULL,
        ended_at          REAL,
        status            TEXT    NOT NULL
                          CHECK (status IN ('running', 'ok', 'failed', 'interrupted')),
        error             TEXT
    );
    CREATE INDEX runs_by_phase_name ON runs (phase, name);
    CREATE INDEX runs_by_status ON runs (status);

    CREATE TABLE measurements (
        id                INTEGER PRIMARY KEY,
        run_id            INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name              TEXT    NOT NULL,
        value             REAL    NOT NULL,
        unit              TEXT    NOT NULL DEFAULT '',
        tags              TEXT    NOT NULL DEFAULT '{}',
        config_generation INTEGER NOT NULL,
        ts                REAL    NOT NULL
    );
    CREATE INDEX measurements_by_run ON measurements (run_id, name);

    CREATE TABLE histograms (
        id                INTEGER PRIMARY KEY,
        run_id            INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name              TEXT    NOT NULL,
        unit              TEXT    NOT NULL DEFAULT '',
        config_generation INTEGER NOT NULL,
        ts                REAL    NOT NULL,
        data              BLOB    NOT NULL
    );
    CREATE INDEX histograms_by_run ON histograms (run_id, name);

    CREATE TABLE series (
        id     INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name   TEXT    NOT NULL,
        ts     REAL    NOT NULL,
        value  REAL    NOT NULL
    );
    CREATE INDEX series_by_run ON series (run_id, name, ts);

    CREATE TABLE events (
        id      INTEGER PRIMARY KEY,
        run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        ts      REAL    NOT NULL,
        kind    TEXT    NOT NULL,
        payload TEXT    NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_by_run ON events (run_id, ts);

    CREATE TABLE file_hashes (
        path     TEXT    PRIMARY KEY,
        size     INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256   TEXT    NOT NULL
    );
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database at `path` up to [`SCHEMA_VERSION`], creating it when empty.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .db(path)?;
    loop {
        // IMMEDIATE: two processes opening a fresh file at once must not both run a migration.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .db(path)?;
        let found: Option<i64> = tx
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()
            .db(path)?;
        let version = match found {
            Some(v) => v,
            None => {
                tx.execute("INSERT INTO schema_version (version) VALUES (0)", [])
                    .db(path)?;
                0
            }
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            }
            .into());
        }
        if version == SCHEMA_VERSION {
            return tx.commit().db(path);
        }
        tx.execute_batch(MIGRATIONS[version as usize]).db(path)?;
        tx.execute("UPDATE schema_version SET version = ?1", [version + 1])
            .db(path)?;
        tx.commit().db(path)?;
    }
}

/// The schema version recorded in the database.
pub(crate) fn version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .db(path)
}
