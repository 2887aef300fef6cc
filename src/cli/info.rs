//! `rawrxd info MODEL`: what a GGUF file holds, for people (a table) or machines (`--json`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use rawrxd::gguf::GgufFile;
use rawrxd::model::LlamaHParams;

/// Arguments of `rawrxd info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The GGUF file.
    pub model: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print every metadata key (arrays summarised).
    #[arg(long)]
    pub metadata: bool,
}

/// Prints the summary of `args.model`.
pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let f = GgufFile::open(&args.model)?;
    let hp = LlamaHParams::from_gguf(&f).ok();
    let tok_model = f.get("tokenizer.ggml.model").and_then(|v| v.as_str());
    let tok_pre = f.get("tokenizer.ggml.pre").and_then(|v| v.as_str());
    let n_tokens = f
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .map(|a| a.len());
    let n_merges = f
        .get("tokenizer.ggml.merges")
        .and_then(|v| v.as_array())
        .map(|a| a.len());
    let file_type = f.get("general.file_type").and_then(|v| v.as_u64());
    let mut out = std::io::stdout().lock();

    if args.json {
        let tensors: Vec<_> = f
            .tensors()
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name, "type": t.ty.ggml_name(), "shape": t.dims,
                    "bytes": t.n_bytes, "offset": t.offset,
                })
            })
            .collect();
        let metadata: serde_json::Map<String, serde_json::Value> = f
            .metadata()
            .iter()
            .filter(|(k, _)| args.metadata || !k.starts_with("tokenizer.ggml."))
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        let j = serde_json::json!({
            "path": f.path(), "gguf_version": f.version(), "architecture": f.architecture().ok(),
            "name": f.get("general.name").and_then(|v| v.as_str()),
            "file_type": file_type,
            "hparams": hp, "tokenizer": {"model": tok_model, "pre": tok_pre, "tokens": n_tokens, "merges": n_merges},
            "n_params": f.n_params(), "file_size": f.file_size(), "tensor_bytes": f.tensor_bytes(),
            "bits_per_weight": f.bits_per_weight(), "metadata": metadata, "tensors": tensors,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        return Ok(());
    }

    writeln!(out, "file:          {}", f.path().display())?;
    writeln!(out, "gguf version:  {}", f.version())?;
    writeln!(
        out,
        "architecture:  {}",
        f.architecture().unwrap_or("(none)")
    )?;
    if let Some(name) = f.get("general.name").and_then(|v| v.as_str()) {
        writeln!(out, "name:          {name}")?;
    }
    if let Some(hp) = &hp {
        writeln!(
            out,
            "hparams:       n_vocab={} n_embd={} n_layer={} n_head={} n_head_kv={} head_dim={} n_ff={} n_ctx_train={} rope_base={} rms_eps={} tied={}",
            hp.n_vocab, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff,
            hp.n_ctx_train, hp.rope_freq_base, hp.rms_norm_eps, hp.tied_embeddings
        )?;
    }
    writeln!(
        out,
        "tokenizer:     model={} pre={} tokens={} merges={}",
        tok_model.unwrap_or("-"),
        tok_pre.unwrap_or("-"),
        n_tokens.map_or("-".into(), |n| n.to_string()),
        n_merges.map_or("-".into(), |n| n.to_string())
    )?;
    let params = f.n_params();
    writeln!(
        out,
        "parameters:    {params} ({:.2} M)",
        params as f64 / 1e6
    )?;
    writeln!(
        out,
        "file size:     {} bytes ({:.2} MiB)",
        f.file_size(),
        f.file_size() as f64 / (1 << 20) as f64
    )?;
    writeln!(out, "bits/weight:   {:.3}", f.bits_per_weight())?;
    if args.metadata {
        writeln!(out, "\nmetadata:")?;
        for (k, v) in f.metadata() {
            writeln!(out, "  {k:<48} {}", v.summary())?;
        }
    }
    let mut counts = std::collections::BTreeMap::new();
    for t in f.tensors() {
        *counts.entry(t.ty).or_insert(0usize) += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(t, n)| format!("{t}: {n}")).collect();
    writeln!(out, "tensor types:  {}", summary.join(", "))?;
    writeln!(
        out,
        "\n{:<40} {:>6} {:>20} {:>12}",
        "tensor", "type", "shape", "bytes"
    )?;
    for t in f.tensors() {
        writeln!(
            out,
            "{:<40} {:>6} {:>20} {:>12}",
            t.name,
            t.ty.ggml_name(),
            t.shape_string(),
            t.n_bytes
        )?;
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}
