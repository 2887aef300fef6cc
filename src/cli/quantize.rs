//! `rawrxd quantize IN OUT TYPE | --scheme FILE.lua`: convert a GGUF model to a standard mix or a
//! hybrid scheme, printing one line per tensor and a total.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use rawrxd::gguf::GgufFile;
use rawrxd::model::LlamaHParams;
use rawrxd::quant::convert::{quantize_file, ConvertOptions, TensorReport};
use rawrxd::quant::mix::mix_types;
use rawrxd::quant::{GgmlType, Mix, MixModel, Scheme};

/// Arguments of `rawrxd quantize`.
#[derive(Debug, clap::Args)]
pub struct QuantizeArgs {
    /// Input GGUF model.
    pub input: PathBuf,
    /// Output GGUF file.
    pub output: PathBuf,
    /// Target mix, named as llama-quantize names it: Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S,
    /// Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, F16, BF16, F32 (Q3_K, Q4_K and
    /// Q5_K mean the _M mixes). Omit it when --scheme is given.
    #[arg(value_name = "TYPE")]
    pub mix: Option<String>,
    /// A Lua hybrid scheme mapping every tensor to a type (see schemes/hybrid_example.lua).
    #[arg(long, value_name = "FILE.lua")]
    pub scheme: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Allow converting tensors that are already quantized (errors compound).
    #[arg(long)]
    pub allow_requantize: bool,
}

/// The types to write and the file type to declare, from a mix or a scheme.
pub(crate) enum Target {
    Mix(Mix),
    Scheme(Scheme),
}

impl Target {
    /// Parses exactly one of a mix name and a scheme path.
    pub(crate) fn from_args(mix: Option<&str>, scheme: Option<&PathBuf>) -> anyhow::Result<Target> {
        match (mix, scheme) {
            (Some(m), None) => Ok(Target::Mix(m.parse::<Mix>().map_err(anyhow::Error::msg)?)),
            (None, Some(p)) => Ok(Target::Scheme(Scheme::load(p)?)),
            (Some(_), Some(_)) => bail!("give either a TYPE or --scheme, not both"),
            (None, None) => bail!("give a TYPE (e.g. Q4_K_M) or --scheme FILE.lua"),
        }
    }
}

/// Sizes rayon's global pool to `threads` workers (all cores when `None`). Call it before any
/// parallel work.
pub(crate) fn init_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        b = b.num_threads(n);
    }
    b.build_global().context("starting worker threads")
}

/// MiB, for the report lines.
pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// The per-tensor line: `[  3/272] blk.0.attn_q.weight  [576, 576]  q4_1 → q5_0  0.20 → 0.22 MiB`.
pub(crate) fn tensor_line(r: &TensorReport, n: usize) -> String {
    let dims: Vec<String> = r.dims.iter().map(|d| d.to_string()).collect();
    format!(
        "[{:>4}/{n}] {:<36} {:>16} {:>5} → {:<5} {:>9.3} MiB → {:>9.3} MiB",
        r.index + 1,
        r.name,
        format!("[{}]", dims.join(", ")),
        r.from.ggml_name(),
        r.to.ggml_name(),
        mib(r.bytes_in),
        mib(r.bytes_out),
    )
}

/// Converts `args.input` into `args.output`.
pub fn run(args: &QuantizeArgs) -> anyhow::Result<()> {
    init_threads(args.threads)?;
    let target = Target::from_args(args.mix.as_deref(), args.scheme.as_ref())?;
    let input = GgufFile::open(&args.input)?;
    let hp = LlamaHParams::from_gguf(&input)?;
    let (types, file_type): (Vec<GgmlType>, u32) = match &target {
        Target::Mix(m) => (
            mix_types(*m, &MixModel::from_file(&input, &hp), input.tensors()),
            m.file_type(),
        ),
        Target::Scheme(s) => {
            let r = s.resolve(&input, &hp)?;
            (r.types(), r.file_type)
        }
    };
    let opts = ConvertOptions {
        allow_requantize: args.allow_requantize,
        file_type,
    };
    let n = input.tensors().len();
    let mut out = std::io::stdout().lock();
    let mut write_err = None;
    let summary = quantize_file(&input, &args.output, &types, &opts, |r| {
        if write_err.is_none() {
            write_err = writeln!(out, "{}", tensor_line(r, n)).err();
        }
    })?;
    if let Some(e) = write_err {
        return Err(e).context("writing to stdout");
    }
    writeln!(
        out,
        "{}: {} tensors, data {:.2} MiB → {:.2} MiB, file {} → {} bytes ({:.3} → {:.3} bits/weight), {:.2} s",
        args.output.display(),
        summary.n_tensors,
        mib(summary.bytes_in),
        mib(summary.bytes_out),
        summary.file_size_in,
        summary.file_size_out,
        summary.bytes_in as f64 * 8.0 / input.n_params() as f64,
        summary.bytes_out as f64 * 8.0 / input.n_params() as f64,
        summary.seconds
    )?;
    out.flush().context("writing to stdout")?;
    Ok(())
}
