//! SHA-256 of model files, streamed, and cached in the database by (path, size, mtime) so a
//! multi-gigabyte model is hashed once, not on every run.
//!
//! Invariant: a cache row is used only when the file's canonical path, size and modification time
//! (nanoseconds) all match; any change re-hashes and replaces the row.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use super::{DbResultExt, Store};
use crate::{Error, Result};

/// SHA-256 of everything `reader` yields, as lowercase hex.
pub fn sha256_hex(reader: &mut impl Read, path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl Store {
    /// SHA-256 (hex) of the file at `path`, from the cache when the file is unchanged since it
    /// was last hashed.
    pub fn file_sha256(&self, path: &Path) -> Result<String> {
        let canon = path.canonicalize().map_err(|e| Error::io(path, e))?;
        let meta = std::fs::metadata(&canon).map_err(|e| Error::io(path, e))?;
        let size = meta.len() as i64;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let key = canon.to_string_lossy().into_owned();
        let cached: Option<String> = self
            .conn
            .query_row(
                "SELECT sha256 FROM file_hashes WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3",
                params![key, size, mtime_ns],
                |r| r.get(0),
            )
            .optional()
            .db(&self.path)?;
        if let Some(h) = cached {
            return Ok(h);
        }
        let mut file = File::open(&canon).map_err(|e| Error::io(path, e))?;
        let hash = sha256_hex(&mut file, path)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, sha256)
                 VALUES (?1, ?2, ?3, ?4)",
                params![key, size, mtime_ns, hash],
            )
            .db(&self.path)?;
        Ok(hash)
    }
}
