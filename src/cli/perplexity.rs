//! `rawrxd perplexity`: llama-perplexity's measurement of a model over a text file, and the KL
//! divergence of one model's distributions from a base run's (`--kld-base` then `--kld`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use rawrxd::engine::{kl_divergence, perplexity, PerplexityParams};
use rawrxd::model::tokenizer::Tokenizer;

use super::engine_args::EngineArgs;

/// Arguments of `rawrxd perplexity`.
#[derive(Debug, clap::Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The text to evaluate (not needed with --kld: the base file holds the tokens).
    #[arg(short = 'f', long = "file", required_unless_present = "kld")]
    pub file: Option<PathBuf>,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    pub ctx_size: usize,
    /// Evaluate at most this many chunks.
    #[arg(long)]
    pub chunks: Option<usize>,
    /// Save every scored distribution to FILE, as the base of a later --kld run.
    #[arg(long, value_name = "FILE", conflicts_with = "kld")]
    pub kld_base: Option<PathBuf>,
    /// Report the KL divergence from the distributions saved in FILE by --kld-base.
    #[arg(long, value_name = "FILE")]
    pub kld: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Reads the text as llama.cpp's `-f` does: the whole file, minus one trailing newline.
fn read_text(path: &PathBuf) -> anyhow::Result<String> {
    let mut s =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if s.ends_with('\n') {
        s.pop();
    }
    Ok(s)
}

/// Adds which backend and numerics produced a JSON result object.
fn with_engine(
    mut j: serde_json::Value,
    args: &PerplexityArgs,
    engine: &dyn rawrxd::engine::Engine,
) -> serde_json::Value {
    if let Some(o) = j.as_object_mut() {
        o.insert("backend".into(), engine.backend().into());
        o.insert("numerics".into(), args.engine.numerics_ran(engine).into());
    }
    j
}

/// Runs `rawrxd perplexity`.
pub fn run(args: &PerplexityArgs) -> anyhow::Result<()> {
    let model = args.engine.open()?;
    let tok = Tokenizer::from_gguf(&model)?;
    if tok.adds_eos() {
        anyhow::bail!(
            "perplexity: the model's vocabulary appends EOS, which llama-perplexity rejects too"
        );
    }
    let bos = if tok.adds_bos() { tok.bos() } else { None };
    let show = !args.json;
    let mut progress = |i: usize, v: f64| {
        if show {
            eprint!("[{}]{v:.4},", i + 1);
        }
    };
    let mut out = std::io::stdout().lock();

    if let Some(base) = &args.kld {
        let n_ctx = rawrxd::engine::logprobs::LogProbReader::open(base)?
            .header
            .n_ctx;
        let mut engine = args.engine.load(model, n_ctx)?;
        let r = kl_divergence(engine.as_mut(), base, bos, args.chunks, &mut progress)?;
        if args.json {
            let j = with_engine(serde_json::to_value(&r)?, args, engine.as_ref());
            writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        } else {
            eprintln!();
            writeln!(
                out,
                "chunks: {}, n_ctx: {}, scored tokens: {}",
                r.n_chunks, r.n_ctx, r.n_scored
            )?;
            writeln!(out, "PPL(Q)    = {:.4} +/- {:.5}", r.ppl.value, r.ppl.err)?;
            writeln!(
                out,
                "PPL(base) = {:.4} +/- {:.5}",
                r.ppl_base.value, r.ppl_base.err
            )?;
            writeln!(out, "Mean KLD  = {:.6} +/- {:.6}", r.kld.value, r.kld.err)?;
            writeln!(out, "Max KLD   = {:.6}", r.kld_max)?;
            writeln!(
                out,
                "Same top  = {:.3} +/- {:.3} %",
                100.0 * r.same_top.value,
                100.0 * r.same_top.err
            )?;
        }
        return Ok(());
    }

    let Some(file) = &args.file else {
        anyhow::bail!("perplexity: give the text with -f FILE");
    };
    let text = read_text(file)?;
    let tokens = tok.encode(&text, true, false)?;
    let mut engine = args.engine.load(model, args.ctx_size)?;
    if show {
        log::info!(
            "{}: {} tokens, {} chunks of {} on {}",
            file.display(),
            tokens.len(),
            tokens.len() / args.ctx_size.max(1),
            args.ctx_size,
            engine.device_name()
        );
    }
    let params = PerplexityParams {
        n_ctx: args.ctx_size,
        n_chunks: args.chunks,
        bos,
    };
    let r = perplexity(
        engine.as_mut(),
        &tokens,
        &params,
        args.kld_base.as_deref(),
        &mut progress,
    )?;
    if args.json {
        let j = with_engine(serde_json::to_value(&r)?, args, engine.as_ref());
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        eprintln!();
        writeln!(out, "PPL = {:.4} +/- {:.5}", r.ppl.value, r.ppl.err)?;
        if let Some(p) = &args.kld_base {
            eprintln!(
                "saved log-probabilities of {} positions to {}",
                r.n_scored,
                p.display()
            );
        }
    }
    Ok(())
}
