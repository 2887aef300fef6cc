//! The `--kld-base` file: the tokens a perplexity run evaluated and the full log-probability
//! distribution at every scored position, for a later KL-divergence comparison.
//!
//! Layout (little-endian): the 8-byte magic `RXDLOGP1`; `u32` n_ctx, n_vocab, n_chunk, first;
//! `n_chunk × n_ctx` `u32` tokens (the text's tokens, before any BOS substitution); then for each
//! chunk, `n_ctx - 1 - first` rows of `n_vocab` `f32` log-probabilities (row `j` is the
//! distribution predicting token `first + j + 1` of the chunk). Unlike llama.cpp's uint16
//! compression this keeps full precision; the file is ours alone.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"RXDLOGP1";

/// The header of a log-probability file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogProbHeader {
    pub n_ctx: usize,
    pub n_vocab: usize,
    pub n_chunk: usize,
    /// First position of each chunk whose logits are scored.
    pub first: usize,
}

impl LogProbHeader {
    /// Scored rows per chunk.
    pub fn rows_per_chunk(&self) -> usize {
        self.n_ctx - 1 - self.first
    }
}

/// Writes a log-probability file chunk by chunk.
pub struct LogProbWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl LogProbWriter {
    /// Creates `path` and writes the header and `tokens` (`n_chunk × n_ctx` of them).
    pub fn create(path: &Path, h: &LogProbHeader, tokens: &[u32]) -> Result<LogProbWriter> {
        let io = |e| Error::io(path, e);
        let mut out = BufWriter::new(File::create(path).map_err(io)?);
        let mut head = MAGIC.to_vec();
        for v in [h.n_ctx, h.n_vocab, h.n_chunk, h.first] {
            head.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for &t in &tokens[..h.n_chunk * h.n_ctx] {
            head.extend_from_slice(&t.to_le_bytes());
        }
        out.write_all(&head).map_err(io)?;
        Ok(LogProbWriter {
            path: path.to_path_buf(),
            out,
        })
    }

    /// Appends one row of log-probabilities.
    pub fn row(&mut self, log_probs: &[f32]) -> Result<()> {
        let bytes: Vec<u8> = log_probs.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.out
            .write_all(&bytes)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Flushes the file.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// Reads a log-probability file row by row.
pub struct LogProbReader {
    path: PathBuf,
    input: BufReader<File>,
    /// The header.
    pub header: LogProbHeader,
    /// The evaluated tokens, `n_chunk × n_ctx`.
    pub tokens: Vec<u32>,
    buf: Vec<u8>,
}

impl LogProbReader {
    /// Opens `path` and reads its header and tokens, checking the sizes against the file length.
    pub fn open(path: &Path) -> Result<LogProbReader> {
        let io = |e| Error::io(path, e);
        let bad = |msg: &str| Error::Invalid(format!("{}: {msg}", path.display()));
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut input = BufReader::new(file);
        let mut head = [0u8; 24];
        input
            .read_exact(&mut head)
            .map_err(|_| bad("too short to be a rawrxd log-probability file"))?;
        if &head[..8] != MAGIC {
            return Err(bad("not a rawrxd log-probability file (bad magic)"));
        }
        let u = |i: usize| {
            let b = &head[8 + 4 * i..12 + 4 * i];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        let header = LogProbHeader {
            n_ctx: u(0),
            n_vocab: u(1),
            n_chunk: u(2),
            first: u(3),
        };
        if header.n_ctx < 2 || header.first >= header.n_ctx - 1 || header.n_vocab == 0 {
            return Err(bad(&format!("inconsistent header {header:?}")));
        }
        let n_tok = header.n_chunk as u64 * header.n_ctx as u64;
        let rows = header.n_chunk as u64 * header.rows_per_chunk() as u64;
        let want = 24 + 4 * n_tok + 4 * rows * header.n_vocab as u64;
        if len != want {
            return Err(bad(&format!(
                "{len} bytes, but the header {header:?} implies {want}"
            )));
        }
        let mut raw = vec![0u8; 4 * n_tok as usize];
        input.read_exact(&mut raw).map_err(io)?;
        let tokens = raw
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(LogProbReader {
            path: path.to_path_buf(),
            input,
            buf: vec![0u8; 4 * header.n_vocab],
            header,
            tokens,
        })
    }

    /// Reads the next row of log-probabilities into `out` (`n_vocab` long).
    pub fn row(&mut self, out: &mut [f32]) -> Result<()> {
        self.input
            .read_exact(&mut self.buf)
            .map_err(|e| Error::io(&self.path, e))?;
        for (o, b) in out.iter_mut().zip(self.buf.chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }
}
