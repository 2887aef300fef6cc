//! `rawrxd synth --shape SHAPE --type MIX -o OUT`: write a synthetic llama model of any shape with
//! seeded random weights, quantized on the fly.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use rawrxd::gguf::GgufFile;
use rawrxd::model::synth::{builtin_vocab, donor_vocab, write_synthetic, SynthShape, NAMED_SHAPES};
use rawrxd::quant::mix::mix_types;
use rawrxd::quant::MixModel;

use super::quantize::{init_threads, mib, tensor_line, Target};

/// Arguments of `rawrxd synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Model shape: llama-7b, llama-3b, llama-1b, smollm-135m, or a key=value list (n_embd,
    /// n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx, tied, rope_base), optionally after a
    /// preset: `llama-1b,n_layer=4`.
    #[arg(long)]
    pub shape: String,
    /// Mix to quantize to, as llama-quantize names it (Q4_K_M, Q8_0, F16, ...).
    #[arg(long = "type", value_name = "MIX")]
    pub mix: Option<String>,
    /// A Lua hybrid scheme instead of a mix.
    #[arg(long, value_name = "FILE.lua")]
    pub scheme: Option<PathBuf>,
    /// Output GGUF file.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Take the tokenizer from this GGUF (its vocabulary size must equal the shape's n_vocab)
    /// instead of the built-in byte-level BPE one.
    #[arg(long, value_name = "FILE")]
    pub vocab_from: Option<PathBuf>,
}

/// Writes the synthetic model.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    init_threads(args.threads)?;
    let shape = SynthShape::parse(&args.shape)
        .with_context(|| format!("known presets: {}", NAMED_SHAPES.join(", ")))?;
    let target = Target::from_args(args.mix.as_deref(), args.scheme.as_ref())?;
    let tensors = shape.tensors();
    let hp = shape.hparams();
    let (types, file_type) = match &target {
        Target::Mix(m) => (
            mix_types(*m, &MixModel::from_hparams(&hp), &tensors),
            m.file_type(),
        ),
        Target::Scheme(s) => {
            let r = s.resolve_tensors(&tensors, &hp)?;
            (r.types(), r.file_type)
        }
    };
    let vocab = match &args.vocab_from {
        Some(p) => donor_vocab(&GgufFile::open(p)?, shape.n_vocab)?,
        None => builtin_vocab(shape.n_vocab)?,
    };
    let n = tensors.len();
    let mut out = std::io::stdout().lock();
    let mut write_err = None;
    let summary = write_synthetic(
        &args.output,
        &shape,
        &types,
        file_type,
        vocab,
        args.seed,
        |r| {
            if write_err.is_none() {
                write_err = writeln!(out, "{}", tensor_line(r, n)).err();
            }
        },
    )?;
    if let Some(e) = write_err {
        return Err(e).context("writing to stdout");
    }
    writeln!(
        out,
        "{}: {} tensors, {} parameters, data {:.2} MiB, file {} bytes ({:.3} bits/weight), {:.2} s",
        args.output.display(),
        summary.n_tensors,
        summary.n_params,
        mib(summary.bytes),
        summary.file_size,
        summary.bytes as f64 * 8.0 / summary.n_params as f64,
        summary.seconds
    )?;
    out.flush().context("writing to stdout")?;
    Ok(())
}
