//! Errors of the results store.

use std::path::PathBuf;

/// Something the results store could not do, naming the database file or the run involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error on the database at `path`.
    #[error("results store {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// The database was written by a newer rawrxd whose schema this build does not know.
    #[error(
        "results store {}: schema version {found} is newer than this rawrxd supports ({supported})",
        path.display()
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The version recorded in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },

    /// A run id that is not in the database.
    #[error("no run with id {0}")]
    NoSuchRun(i64),

    /// A stored value could not be decoded (bad JSON, a damaged histogram blob, an unknown status).
    #[error("results store: run {run}: {what}: {msg}")]
    Corrupt {
        /// The run the row belongs to.
        run: i64,
        /// The column or record that is damaged.
        what: String,
        /// Why it could not be decoded.
        msg: String,
    },

    /// A value handed to the store cannot be recorded (NaN, a histogram that fails to serialize).
    #[error("results store: {0}")]
    Invalid(String),
}
