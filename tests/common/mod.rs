//! Helpers shared by integration tests: locating the test model, writing tiny synthetic models.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rawrxd::gguf::{GgufWriter, MetaValue, TensorPlan};
use rawrxd::quant::{self, GgmlType};

/// The SmolLM2 test model: `$RAWRXD_TEST_MODEL` or `models/SmolLM2-135M-Instruct.Q4_1.gguf`.
/// Panics if it is missing, unless `RAWRXD_ALLOW_MISSING_MODEL=1` (then `None`).
pub fn test_model() -> Option<PathBuf> {
    let p = std::env::var_os("RAWRXD_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    if p.exists() {
        return Some(p);
    }
    if std::env::var("RAWRXD_ALLOW_MISSING_MODEL").as_deref() == Ok("1") {
        eprintln!("skipping: test model {} is missing", p.display());
        return None;
    }
    panic!(
        "test model {} is missing (set RAWRXD_TEST_MODEL, or RAWRXD_ALLOW_MISSING_MODEL=1 to skip)",
        p.display()
    );
}

/// Shape and flavour of a synthetic llama-family model.
#[derive(Clone, Debug)]
pub struct Synth {
    pub arch: &'static str,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub n_rot: usize,
    pub freq_base: f32,
    pub eps: f32,
    /// Q/K/V biases (qwen2).
    pub bias: bool,
    /// A separate `output.weight` (else tied to `token_embd`).
    pub untied: bool,
    /// Type of the projection matrices.
    pub ty: GgmlType,
}

/// One tensor of a synthetic model: name, ggml dims, type and the f32 values it was made from.
pub struct SynthTensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub values: Vec<f32>,
}

impl Synth {
    /// Every tensor with seeded random values (norm weights near 1).
    pub fn tensors(&self, seed: u64) -> Vec<SynthTensor> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (e, hd) = (self.n_embd, self.n_embd / self.n_head);
        let kv = self.n_head_kv * hd;
        let mut out = Vec::new();
        let mut add = |name: String, dims: Vec<usize>, ty: GgmlType, scale: f32, around: f32| {
            let n: usize = dims.iter().product();
            let values = (0..n)
                .map(|_| around + rng.gen_range(-scale..scale))
                .collect();
            out.push(SynthTensor {
                name,
                dims: dims.iter().map(|&d| d as u64).collect(),
                ty,
                values,
            });
        };
        add(
            "token_embd.weight".into(),
            vec![e, self.n_vocab],
            GgmlType::Q8_0,
            1.0,
            0.0,
        );
        add(
            "output_norm.weight".into(),
            vec![e],
            GgmlType::F32,
            0.2,
            1.0,
        );
        if self.untied {
            add(
                "output.weight".into(),
                vec![e, self.n_vocab],
                self.ty,
                0.3,
                0.0,
            );
        }
        let s = 1.0 / (e as f32).sqrt();
        for l in 0..self.n_layer {
            let n = |x: &str| format!("blk.{l}.{x}");
            add(n("attn_norm.weight"), vec![e], GgmlType::F32, 0.2, 1.0);
            add(n("attn_q.weight"), vec![e, e], self.ty, 3.0 * s, 0.0);
            add(n("attn_k.weight"), vec![e, kv], self.ty, 3.0 * s, 0.0);
            add(n("attn_v.weight"), vec![e, kv], self.ty, 2.0 * s, 0.0);
            if self.bias {
                add(n("attn_q.bias"), vec![e], GgmlType::F32, 0.5, 0.0);
                add(n("attn_k.bias"), vec![kv], GgmlType::F32, 0.5, 0.0);
                add(n("attn_v.bias"), vec![kv], GgmlType::F32, 0.5, 0.0);
            }
            add(n("attn_output.weight"), vec![e, e], self.ty, 2.0 * s, 0.0);
            add(n("ffn_norm.weight"), vec![e], GgmlType::F32, 0.2, 1.0);
            add(
                n("ffn_gate.weight"),
                vec![e, self.n_ff],
                self.ty,
                2.0 * s,
                0.0,
            );
            add(
                n("ffn_up.weight"),
                vec![e, self.n_ff],
                self.ty,
                2.0 * s,
                0.0,
            );
            let sf = 1.0 / (self.n_ff as f32).sqrt();
            add(
                n("ffn_down.weight"),
                vec![self.n_ff, e],
                self.ty,
                2.0 * sf,
                0.0,
            );
        }
        out
    }

    /// Writes the model to `path` and returns its tensors (values as stored, i.e. after a
    /// quantize/dequantize round trip).
    pub fn write(&self, path: &Path, seed: u64) -> Vec<SynthTensor> {
        let a = self.arch;
        let u = |v: usize| MetaValue::U32(v as u32);
        let meta = vec![
            (
                "general.architecture".to_string(),
                MetaValue::String(a.into()),
            ),
            (format!("{a}.embedding_length"), u(self.n_embd)),
            (format!("{a}.block_count"), u(self.n_layer)),
            (format!("{a}.feed_forward_length"), u(self.n_ff)),
            (format!("{a}.attention.head_count"), u(self.n_head)),
            (format!("{a}.attention.head_count_kv"), u(self.n_head_kv)),
            (format!("{a}.context_length"), u(256)),
            (
                format!("{a}.attention.layer_norm_rms_epsilon"),
                MetaValue::F32(self.eps),
            ),
            (
                format!("{a}.rope.freq_base"),
                MetaValue::F32(self.freq_base),
            ),
            (format!("{a}.rope.dimension_count"), u(self.n_rot)),
        ];
        let mut tensors = self.tensors(seed);
        let plan = tensors
            .iter()
            .map(|t| TensorPlan {
                name: t.name.clone(),
                dims: t.dims.clone(),
                ty: t.ty,
            })
            .collect();
        let mut w = GgufWriter::create(path, &meta, plan).unwrap();
        for t in tensors.iter_mut() {
            let row = t.dims[0] as usize;
            let bytes = quant::quantize_rows(t.ty, &t.values, row).unwrap();
            t.values = quant::dequantize_rows(t.ty, &bytes, row).unwrap();
            w.write_tensor(&t.name, &bytes).unwrap();
        }
        w.finish().unwrap();
        tensors
    }
}

/// The first index of the largest value.
pub fn argmax(v: &[f32]) -> u32 {
    let mut b = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[b] {
            b = i;
        }
    }
    b as u32
}

/// Greedy tokens and the logits of each of `gen` steps of `prompt`, run alone on `eng` (reset
/// first): the oracle of the batched-decoding tests.
pub fn greedy_alone(
    eng: &mut dyn rawrxd::engine::Engine,
    prompt: &[u32],
    gen: usize,
) -> (Vec<u32>, Vec<Vec<f32>>) {
    eng.reset();
    let mut logits = eng.forward(prompt, 0, false).unwrap();
    let (mut out, mut all) = (Vec::new(), Vec::new());
    for step in 0..gen {
        let t = argmax(&logits);
        out.push(t);
        let next = if step + 1 < gen {
            eng.forward(&[t], prompt.len() + step, false).unwrap()
        } else {
            Vec::new()
        };
        all.push(std::mem::replace(&mut logits, next));
    }
    (out, all)
}

/// The tokens `engine::generate` streams for `prompt` run alone on `eng` (at most `gen`),
/// sampled with `params`: the reference a scheduled request must reproduce.
pub fn generate_alone(
    eng: &mut dyn rawrxd::engine::Engine,
    prompt: &[u32],
    gen: usize,
    params: rawrxd::model::SamplerParams,
    is_eog: &dyn Fn(u32) -> bool,
) -> Vec<u32> {
    let mut sampler = rawrxd::model::Sampler::new(params).unwrap();
    let mut got = Vec::new();
    rawrxd::engine::generate(eng, prompt, gen, &mut sampler, is_eog, &mut |t| {
        got.push(t);
        Ok(true)
    })
    .unwrap();
    got
}

/// Advances `prompts` together on `batch`, sequence s in slot `slots[s]`; sequences 0 and 1
/// start first and the others join one step later, so steps mix prefill and decode. Every step's
/// logits must equal `reference[s]`'s (from [`greedy_alone`]) exactly, and each sequence's greedy
/// tokens its tokens alone.
pub fn check_batched_schedule(
    batch: &mut dyn rawrxd::engine::BatchEngine,
    prompts: &[Vec<u32>],
    slots: &[usize],
    reference: &[(Vec<u32>, Vec<Vec<f32>>)],
) {
    use rawrxd::engine::BatchItem;
    let n = prompts.len();
    let gen = reference[0].0.len();
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut pos: Vec<usize> = vec![0; n];
    let mut pending: Vec<Vec<u32>> = prompts.to_vec();
    let mut step = 0;
    while out.iter().any(|o| o.len() < gen) {
        let active: Vec<usize> = (0..n)
            .filter(|&s| (s < 2 || step >= 1) && out[s].len() < gen)
            .collect();
        let items: Vec<BatchItem<'_>> = active
            .iter()
            .map(|&s| BatchItem {
                slot: slots[s],
                tokens: &pending[s],
                pos: pos[s],
            })
            .collect();
        let logits = batch.forward_batch(&items).unwrap();
        assert_eq!(logits.len(), active.len());
        for (&s, l) in active.iter().zip(&logits) {
            let k = out[s].len();
            let want = &reference[s].1[k];
            let diff = l
                .iter()
                .zip(want)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                l == want,
                "sequence {s}, token {k} (step {step}, {} in the step): batched logits differ \
                 from the sequence alone by up to {diff}",
                active.len()
            );
            let t = argmax(l);
            out[s].push(t);
            pos[s] += pending[s].len();
            pending[s] = vec![t];
        }
        step += 1;
    }
    for s in 0..n {
        assert_eq!(out[s], reference[s].0, "sequence {s}");
    }
}

/// Prompts of different lengths (1 to 9 tokens on SmolLM2), as token ids: the batched-decoding
/// tests' sequences.
pub fn batch_prompts(tok: &rawrxd::model::tokenizer::Tokenizer) -> Vec<Vec<u32>> {
    [
        "The capital of France is",
        "Once",
        "def fibonacci(n):\n    ",
        "Water boils at a temperature of",
    ]
    .iter()
    .map(|t| tok.encode(t, true, false).unwrap())
    .collect()
}
