//! `engine:perplexity{text=, ctx=, chunks=, kld_base=}`: perplexity of a text file (llama.cpp's
//! `llama-perplexity` algorithm, in Rust) and, against a base model, KL divergence and top-token
//! agreement.
//!
//! The base's log-probabilities are computed once per (base file, text, backend, ctx, chunks) and
//! kept in the cache directory, so a sweep over many variants runs the base model once. A base
//! given as an `Engine` is used as is (its log-probabilities go to a temporary file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlua::{Lua, Table, Value};

use super::load::{open_engine, LoadSettings};
use super::EngineHandle;
use crate::engine::variant::{default_cache_dir, file_sha256};
use crate::engine::{kl_divergence, perplexity, Backend, PerplexityParams};
use crate::gguf::GgufFile;
use crate::lua::bench::bar;
use crate::lua::error::lua_err;
use crate::lua::model::model_arg;
use crate::lua::opts::Opts;
use crate::{Error, Result};

const PPL: &str = "engine:perplexity";
const FIELDS: &[&str] = &["text", "ctx", "chunks", "kld_base", "progress", "cache"];

/// The KLD base a script named.
enum Base {
    Engine(EngineHandle),
    File(Arc<GgufFile>),
}

fn base_arg(v: Value) -> mlua::Result<Option<Base>> {
    match v {
        Value::Nil => Ok(None),
        Value::UserData(ref ud) if ud.is::<EngineHandle>() => {
            Ok(Some(Base::Engine(ud.borrow::<EngineHandle>()?.clone())))
        }
        v => Ok(Some(Base::File(model_arg(&v, PPL)?.file))),
    }
}

/// `path` read and tokenized by the engine's model (BOS added when the vocabulary adds it).
fn tokens_of(h: &EngineHandle, path: &Path) -> Result<(Vec<u32>, Option<u32>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let tok = h.tokenizer()?;
    let tokens = tok.encode(&text, true, false)?;
    let bos = if tok.adds_bos() { tok.bos() } else { None };
    Ok((tokens, bos))
}

fn short_sha(s: &str) -> &str {
    &s[..16.min(s.len())]
}

/// Makes sure the base log-probabilities exist at `out`: runs `base` over `tokens`.
fn write_base(
    base: &mut dyn crate::engine::Engine,
    tokens: &[u32],
    params: &PerplexityParams,
    out: &Path,
    progress: bool,
) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = out.with_extension(format!("tmp-{}", std::process::id()));
    let n = params
        .n_chunks
        .unwrap_or(tokens.len() / params.n_ctx.max(1));
    let pb = bar(n as u64, "kld base".into(), progress);
    let r = perplexity(base, tokens, params, Some(&tmp), &mut |_, ppl| {
        pb.inc(1);
        pb.set_message(format!("ppl {ppl:.3}"));
    });
    pb.finish_and_clear();
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))
}

/// `engine:perplexity{...}`.
pub(crate) fn run(lua: &Lua, h: &EngineHandle, opts: Option<Table>) -> mlua::Result<Table> {
    let o = Opts::maybe(lua, opts, PPL, FIELDS)?;
    let text = o
        .string("text")?
        .map(PathBuf::from)
        .ok_or_else(|| o.error("option 'text' (a text file) is required"))?;
    let progress = o.bool("progress")?.unwrap_or(true);
    let chunks = o.usize("chunks", 1)?;
    let base = base_arg(o.value("kld_base")?)?;
    let settings = h.settings();
    let cache = o
        .string("cache")?
        .map(PathBuf::from)
        .or_else(|| settings.as_ref().map(|s| s.cache.clone()))
        .unwrap_or_else(default_cache_dir);
    let n_ctx = o
        .usize("ctx", 4)?
        .unwrap_or_else(|| h.info().n_ctx.min(512));
    let (tokens, bos) = tokens_of(h, &text).map_err(lua_err)?;
    let params = PerplexityParams {
        n_ctx,
        n_chunks: chunks,
        bos,
    };
    let n_chunks = chunks
        .unwrap_or(usize::MAX)
        .min(tokens.len() / n_ctx.max(1));

    // The base's log-probabilities, when asked for.
    let base_file: Option<(PathBuf, bool)> = match base {
        None => None,
        Some(Base::Engine(b)) => {
            let dir = tempfile_dir(&cache).map_err(lua_err)?;
            let out = dir.join(format!("kld-base-{}.bin", std::process::id()));
            b.with_engine(lua, |e, _| write_base(e, &tokens, &params, &out, progress))
                .map_err(lua_err)?;
            Some((out, true))
        }
        Some(Base::File(f)) => {
            let base_sha = file_sha256(f.path()).map_err(lua_err)?;
            let text_sha = file_sha256(&text).map_err(lua_err)?;
            let s = settings.clone().unwrap_or(LoadSettings {
                backend: Backend::Cpu,
                device: None,
                threads: None,
                cache: cache.clone(),
                progress,
            });
            let backend = h.info().backend.clone();
            let out = cache.join(format!(
                "kld-{}-{}-{backend}-c{n_ctx}-n{n_chunks}.bin",
                short_sha(&base_sha),
                short_sha(&text_sha)
            ));
            if !out.is_file() {
                let s = LoadSettings {
                    backend: backend.parse().unwrap_or(s.backend),
                    ..s
                };
                let mut e = open_engine(f, &s, n_ctx).map_err(lua_err)?;
                write_base(e.as_mut(), &tokens, &params, &out, progress).map_err(lua_err)?;
            }
            Some((out, false))
        }
    };

    let t = lua.create_table()?;
    let pb = bar(
        n_chunks as u64,
        format!("ppl {}", h.info().variant),
        progress,
    );
    let outcome = h.with_engine(lua, |e, _| match &base_file {
        None => {
            let r = perplexity(e, &tokens, &params, None, &mut |_, ppl| {
                pb.inc(1);
                pb.set_message(format!("{ppl:.3}"));
            })?;
            Ok((r.ppl, None, r.chunk_ppl, r.n_ctx, r.n_chunks, r.n_scored))
        }
        Some((path, _)) => {
            let r = kl_divergence(e, path, bos, chunks, &mut |_, kld| {
                pb.inc(1);
                pb.set_message(format!("kld {kld:.5}"));
            })?;
            Ok((
                r.ppl,
                Some(r.clone()),
                Vec::new(),
                r.n_ctx,
                r.n_chunks,
                r.n_scored,
            ))
        }
    });
    pb.finish_and_clear();
    if let Some((p, true)) = &base_file {
        let _ = std::fs::remove_file(p);
    }
    let (ppl, kld, chunk_ppl, ctx, n, scored) = outcome.map_err(lua_err)?;
    t.set("ppl", ppl.value)?;
    t.set("ppl_err", ppl.err)?;
    t.set("ctx", ctx)?;
    t.set("chunks", n)?;
    t.set("n_scored", scored)?;
    t.set("n_tokens", tokens.len())?;
    t.set("text", text.to_string_lossy().into_owned())?;
    if !chunk_ppl.is_empty() {
        t.set("chunk_ppl", chunk_ppl)?;
    }
    if let Some(k) = kld {
        t.set("kld", k.kld.value)?;
        t.set("kld_err", k.kld.err)?;
        t.set("kld_max", k.kld_max)?;
        t.set("same_top", k.same_top.value)?;
        t.set("same_top_err", k.same_top.err)?;
        t.set("base_ppl", k.ppl_base.value)?;
        t.set("base_ppl_err", k.ppl_base.err)?;
    }
    Ok(t)
}

/// A directory for temporary files next to the cache.
fn tempfile_dir(cache: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(cache).map_err(|e| Error::io(cache, e))?;
    Ok(cache.to_path_buf())
}
