//! `rawrxd generate`: complete a prompt, streaming the text to stdout, then report prefill and
//! decode speed on stderr (or everything as JSON with `--json`).

use std::io::Write;

use rawrxd::engine::{generate, GenerateStats};
use rawrxd::model::tokenizer::Tokenizer;
use rawrxd::model::{Sampler, SamplerParams};

use super::engine_args::EngineArgs;

/// Arguments of `rawrxd generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The prompt (special tokens such as `<|im_start|>` are recognised).
    #[arg(short = 'p', long)]
    pub prompt: String,
    /// Tokens to generate at most.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    pub n_predict: usize,
    /// KV cache size in tokens (default: prompt + n-predict).
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx_size: Option<usize>,
    /// Temperature; 0 samples greedily.
    #[arg(long, default_value_t = 0.8)]
    pub temp: f32,
    /// Top-k sampling (0 = off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Top-p (nucleus) sampling (1 = off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p sampling (0 = off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty looks at (0 = off).
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Seed of the sampler (default: random, printed on stderr).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON object (text, token ids, timings) instead of streaming.
    #[arg(long)]
    pub json: bool,
}

/// Turns token bytes into printable text, holding back an incomplete UTF-8 sequence at the end
/// until the bytes that complete it arrive. Invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds `bytes` and returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete sequence at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + n);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left (an unfinished sequence becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

fn summary(stats: &GenerateStats) -> String {
    format!(
        "prefill: {} tokens in {:.1} ms ({:.2} tokens/s) | decode: {} tokens in {:.1} ms ({:.2} tokens/s) | stop: {}",
        stats.n_prompt,
        stats.prefill.as_secs_f64() * 1e3,
        stats.prefill_tps(),
        stats.n_decoded,
        stats.decode.as_secs_f64() * 1e3,
        stats.decode_tps(),
        stats.stop.as_str()
    )
}

/// Runs `rawrxd generate`.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let model = args.engine.open()?;
    let tok = Tokenizer::from_gguf(&model)?;
    let prompt = tok.encode(&args.prompt, true, true)?;
    if prompt.is_empty() {
        anyhow::bail!("the prompt is empty after tokenization");
    }
    let n_ctx = args
        .ctx_size
        .unwrap_or(prompt.len() + args.n_predict.max(1));
    if prompt.len() > n_ctx {
        anyhow::bail!(
            "the prompt has {} tokens but the context is {n_ctx} (raise --ctx-size)",
            prompt.len()
        );
    }
    let mut engine = args.engine.load(model, n_ctx)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let params = SamplerParams {
        temp: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: args.repeat_last_n,
        seed,
    };
    let mut sampler = Sampler::new(params.clone())?;
    if !args.json {
        log::info!(
            "{} on {}: {} prompt tokens, seed {seed}",
            args.engine.model.display(),
            engine.device_name(),
            prompt.len()
        );
    }

    let mut out = std::io::stdout().lock();
    let mut utf8 = Utf8Stream::default();
    let mut ids = Vec::new();
    let mut text = String::new();
    let stats = generate(
        engine.as_mut(),
        &prompt,
        args.n_predict,
        &mut sampler,
        &|t| tok.is_eog(t),
        &mut |t| {
            ids.push(t);
            if tok.is_control(t) {
                return Ok(true);
            }
            let s = utf8.push(tok.token_bytes(t));
            if args.json {
                text.push_str(&s);
            } else {
                out.write_all(s.as_bytes())
                    .and_then(|_| out.flush())
                    .map_err(|e| rawrxd::Error::io("<stdout>", e))?;
            }
            Ok(true)
        },
    )?;
    let rest = utf8.finish();
    if args.json {
        text.push_str(&rest);
        let j = serde_json::json!({
            "model": args.engine.model,
            "backend": engine.backend(),
            "numerics": args.engine.numerics_ran(engine.as_ref()),
            "device": engine.device_name(),
            "n_ctx": n_ctx,
            "sampler": params,
            "prompt_tokens": prompt,
            "tokens": ids,
            "text": text,
            "stop": stats.stop,
            "n_prompt": stats.n_prompt,
            "n_generated": stats.n_generated,
            "n_decoded": stats.n_decoded,
            "prefill_ms": stats.prefill.as_secs_f64() * 1e3,
            "decode_ms": stats.decode.as_secs_f64() * 1e3,
            "prefill_tokens_per_s": stats.prefill_tps(),
            "decode_tokens_per_s": stats.decode_tps(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        writeln!(out, "{rest}")?;
        eprintln!("{}", summary(&stats));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Utf8Stream;

    #[test]
    fn utf8_stream_holds_back_split_sequences() {
        let mut s = Utf8Stream::default();
        let e = "é€😀".as_bytes(); // 2 + 3 + 4 bytes
        assert_eq!(s.push(&e[..1]), "");
        assert_eq!(s.push(&e[1..3]), "é");
        assert_eq!(s.push(&e[3..4]), "");
        assert_eq!(s.push(&e[4..6]), "€");
        assert_eq!(s.push(&e[6..8]), "");
        assert_eq!(s.push(&e[8..]), "😀");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn utf8_stream_replaces_invalid_bytes() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(s.push(b"\xe2\x82"), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }
}
