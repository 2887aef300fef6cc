//! The CPU reference backend: llama.cpp's llama/qwen2 graph in plain f32, the oracle every other
//! backend is tested against.
//!
//! Invariants: weights stay quantized in the memory-mapped file (held by an `Arc`) and each
//! matrix row is dequantized on the fly ([`ops::matmul`]); activations and the KV cache are f32.
//! Under [`Numerics::Ggml`] the same graph additionally rounds where llama.cpp's CPU backend does
//! (activations before each matrix product, the KV cache to f16, attention as its flash
//! attention); the default [`Numerics::F32`] never rounds. Under `Ggml` attention depends on the
//! batch size as llama.cpp's does (64 or more query rows in one call take its f32 path), so the
//! bit-identity between batch splits stated below holds for `F32` only.
//! The engine holds `n_slots` KV caches (one per sequence, see [`BatchEngine`]); the
//! single-sequence [`Engine`] calls use slot 0. A batched step stacks every sequence's tokens into
//! one activation matrix, so each weight row is dequantized once and dotted with every
//! sequence's row before the next; only attention reads per-sequence state (its own slot).
//! Work runs on a private rayon pool of the requested size. Every kernel is deterministic and
//! independent of how tokens are batched, so feeding tokens one at a time gives bit-identical
//! logits to one prefill of the same tokens, and a sequence decoded in a batch gets bit-identical
//! logits to the same sequence decoded alone.
//!
//! Layout: `weights.rs` (matrices by byte range), `ops.rs` (norm, matmul, softmax, SwiGLU),
//! `rope.rs`, `attention.rs`, `kv_cache.rs`, `numerics.rs`; the graph itself is
//! [`CpuEngine::forward`].

mod attention;
mod kv_cache;
mod numerics;
pub mod ops;
pub mod rope;
mod weights;

use std::borrow::Cow;
use std::sync::Arc;

use rayon::prelude::*;

use crate::engine::batch::{check_items, BatchEngine, BatchItem};
use crate::engine::{Engine, MemoryUsage};
use crate::gguf::GgufFile;
use crate::model::{LlamaHParams, LlamaWeights};
use crate::quant;
use crate::{Error, Result};

pub use attention::{attention, attention_f16_online, AttnShape};
pub use kv_cache::KvCache;
pub use numerics::Numerics;
pub use rope::Rope;
use weights::Weights;

/// The f32 reference engine for one model and `n_slots` sequences.
pub struct CpuEngine {
    file: Arc<GgufFile>,
    hp: LlamaHParams,
    weights: Weights,
    rope: Rope,
    /// One KV cache per sequence slot.
    caches: Vec<KvCache>,
    /// Bytes of every tensor the forward pass reads, and of one decode step.
    weight_bytes: u64,
    decode_bytes: u64,
    pool: Arc<rayon::ThreadPool>,
    numerics: Numerics,
}

impl std::fmt::Debug for CpuEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuEngine")
            .field("file", &self.file.path())
            .field("n_ctx", &self.n_ctx())
            .field("n_slots", &self.caches.len())
            .field("threads", &self.pool.current_num_threads())
            .field("numerics", &self.numerics)
            .finish()
    }
}

/// Reads the RoPE settings llama.cpp would use for `f`'s architecture.
fn rope_of(f: &GgufFile, hp: &LlamaHParams) -> Result<Rope> {
    let key = |s: &str| format!("{}.{s}", hp.arch);
    let bad = |msg: String| Error::Model(format!("{}: {msg}", f.path().display()));
    let scaling = match f.get(&key("rope.scaling.type")) {
        Some(_) => f.get_str(&key("rope.scaling.type"))?.to_string(),
        None => "none".to_string(),
    };
    let factor = match (
        f.get(&key("rope.scaling.factor")),
        f.get(&key("rope.scale_linear")),
    ) {
        (Some(_), _) => f.get_f32(&key("rope.scaling.factor"))?,
        (None, Some(_)) => f.get_f32(&key("rope.scale_linear"))?,
        (None, None) => 1.0,
    };
    let freq_scale = match scaling.as_str() {
        "none" => 1.0,
        "linear" if factor > 0.0 => 1.0 / factor,
        "linear" => return Err(bad(format!("rope scaling factor {factor}"))),
        other => return Err(bad(format!("rope scaling '{other}' is not supported"))),
    };
    if hp.n_rot == 0 {
        return Err(bad("rope.dimension_count is 0".into()));
    }
    let freq_factors = match f.tensor("rope_freqs.weight") {
        Some(t) => {
            if t.n_elements() as usize != hp.n_rot / 2 {
                return Err(bad(format!(
                    "rope_freqs.weight has {} elements, expected n_rot/2 = {}",
                    t.n_elements(),
                    hp.n_rot / 2
                )));
            }
            let mut v = vec![0f32; hp.n_rot / 2];
            quant::dequantize(t.ty, f.tensor_data(t), &mut v)?;
            Some(v)
        }
        None => None,
    };
    Ok(Rope {
        mode: hp.rope_mode,
        n_rot: hp.n_rot,
        freq_base: hp.rope_freq_base,
        freq_scale,
        freq_factors,
    })
}

impl CpuEngine {
    /// Loads the llama-family model in `f` with a KV cache of `n_ctx` positions, computing on
    /// `threads` threads (`None`: one per core).
    pub fn load(f: impl Into<Arc<GgufFile>>, n_ctx: usize, threads: Option<usize>) -> Result<Self> {
        CpuEngine::load_batch(f, n_ctx, 1, threads)
    }

    /// Like [`CpuEngine::load`] with `n_slots` KV caches of `n_ctx` positions each, for batched
    /// decoding of that many sequences. The caches' memory is reserved lazily by the operating
    /// system (zeroed pages), so unused slots cost address space rather than RAM.
    pub fn load_batch(
        f: impl Into<Arc<GgufFile>>,
        n_ctx: usize,
        n_slots: usize,
        threads: Option<usize>,
    ) -> Result<Self> {
        let file: Arc<GgufFile> = f.into();
        let hp = LlamaHParams::from_gguf(&file)?;
        if n_ctx == 0 {
            return Err(Error::Invalid("context size must be at least 1".into()));
        }
        if n_slots == 0 {
            return Err(Error::Invalid("the engine needs at least one slot".into()));
        }
        let weights = Weights::resolve(&file, &hp)?;
        let (weight_bytes, decode_bytes) = {
            let w = LlamaWeights::from_gguf(&file, &hp)?;
            (file.tensor_bytes(), w.decode_bytes())
        };
        let rope = rope_of(&file, &hp)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.unwrap_or(0))
            .thread_name(|i| format!("rawrxd-cpu-{i}"))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot start the CPU thread pool: {e}")))?;
        let pool = Arc::new(pool);
        let caches = (0..n_slots)
            .map(|_| KvCache::new(hp.n_layer, n_ctx, hp.n_embd_kv()))
            .collect();
        Ok(CpuEngine {
            file,
            hp,
            weights,
            rope,
            caches,
            weight_bytes,
            decode_bytes,
            pool,
            numerics: Numerics::F32,
        })
    }

    /// Switches the arithmetic (see [`Numerics`]); forgets every cached sequence, whose keys and
    /// values were rounded under the old setting.
    pub fn set_numerics(&mut self, numerics: Numerics) {
        self.numerics = numerics;
        self.caches.iter_mut().for_each(KvCache::clear);
    }

    /// The arithmetic the engine runs.
    pub fn numerics(&self) -> Numerics {
        self.numerics
    }

    /// Threads the engine computes on.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The model file.
    pub fn file(&self) -> &Arc<GgufFile> {
        &self.file
    }

    /// Bytes of the KV caches of every slot.
    pub fn kv_bytes(&self) -> usize {
        self.caches.iter().map(KvCache::bytes).sum()
    }

    fn check(&self, tokens: &[u32], pos: usize) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::Invalid("forward: no tokens".into()));
        }
        if pos > self.caches[0].len() {
            return Err(Error::Invalid(format!(
                "forward: position {pos} but only positions 0..{} are cached",
                self.caches[0].len()
            )));
        }
        if pos + tokens.len() > self.n_ctx() {
            return Err(Error::Invalid(format!(
                "context full: positions {pos}..{} do not fit a context of {}",
                pos + tokens.len(),
                self.n_ctx()
            )));
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= self.hp.n_vocab) {
            return Err(Error::Invalid(format!(
                "token id {t} is outside the vocabulary of {}",
                self.hp.n_vocab
            )));
        }
        Ok(())
    }

    /// Checks a batch: slots, positions and token ids.
    fn check_batch(&self, items: &[BatchItem<'_>]) -> Result<()> {
        check_items(items, self.caches.len(), self.n_ctx())?;
        for (i, it) in items.iter().enumerate() {
            let cached = self.caches[it.slot].len();
            if it.pos > cached {
                return Err(Error::Invalid(format!(
                    "forward_batch item {i}: position {} but slot {} caches only 0..{cached}",
                    it.pos, it.slot
                )));
            }
            if let Some(&t) = it.tokens.iter().find(|&&t| t as usize >= self.hp.n_vocab) {
                return Err(Error::Invalid(format!(
                    "forward_batch item {i}: token id {t} is outside the vocabulary of {}",
                    self.hp.n_vocab
                )));
            }
        }
        Ok(())
    }

    /// The graph over every item's tokens stacked into one batch: embeddings, `n_layer` blocks
    /// (attention per item, against its own slot), final norm, output projection. Returns the
    /// logits of every token of the single item if `all_logits`, else of each item's last token,
    /// row-major in item order. Items have been checked and their slots rewound to `pos`.
    fn run(&mut self, items: &[BatchItem<'_>], all_logits: bool) -> Result<Vec<f32>> {
        debug_assert!(!all_logits || items.len() == 1);
        let hp = &self.hp;
        let image = self.file.bytes();
        let w = &self.weights;
        let n: usize = items.iter().map(|it| it.tokens.len()).sum();
        let (e, nq, nkv, hd) = (hp.n_embd, hp.n_embd_q(), hp.n_embd_kv(), hp.head_dim);
        let shape = AttnShape {
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim: hd,
        };
        // First row of each item in the stacked batch.
        let offsets: Vec<usize> = items
            .iter()
            .scan(0, |row, it| {
                let first = *row;
                *row += it.tokens.len();
                Some(first)
            })
            .collect();

        let mut x = vec![0f32; n * e];
        let emb = &w.token_embd;
        let rb = emb.row_bytes();
        let embd = emb.data(image);
        let tokens = items.iter().flat_map(|it| it.tokens.iter());
        for (&t, row) in tokens.zip(x.chunks_exact_mut(e)) {
            let t = t as usize;
            quant::dequantize(emb.ty, &embd[t * rb..(t + 1) * rb], row)?;
        }

        let mut angles = vec![0f32; n * hp.n_rot];
        let positions = items.iter().flat_map(|it| it.pos..it.pos + it.tokens.len());
        for (p, a) in positions.zip(angles.chunks_exact_mut(hp.n_rot)) {
            self.rope.angles(p, a);
        }

        let ggml = self.numerics == Numerics::Ggml;
        let mm = |m: &weights::Mat, x: &[f32], n_tok: usize, y: &mut [f32]| {
            let shape_err = |e: Error| Error::Shape {
                name: m.name.clone(),
                msg: e.to_string(),
            };
            let x = match quant::activation::vec_dot_type(m.ty) {
                t if ggml && t != quant::GgmlType::F32 => {
                    let mut r = x.to_vec();
                    quant::activation::round_to(t, &mut r).map_err(shape_err)?;
                    Cow::Owned(r)
                }
                _ => Cow::Borrowed(x),
            };
            ops::matmul(m.ty, m.data(image), m.n_in, &x, n_tok, y).map_err(shape_err)
        };
        let mut xn = vec![0f32; n * e];
        let (mut q, mut k, mut v) = (vec![0f32; n * nq], vec![0f32; n * nkv], vec![0f32; n * nkv]);
        let mut att = vec![0f32; n * nq];
        let mut proj = vec![0f32; n * e];
        let (mut gate, mut up) = (vec![0f32; n * hp.n_ff], vec![0f32; n * hp.n_ff]);
        for (il, l) in w.layers.iter().enumerate() {
            xn.copy_from_slice(&x);
            ops::rms_norm(&mut xn, &l.attn_norm, hp.rms_norm_eps);
            mm(&l.wq, &xn, n, &mut q)?;
            mm(&l.wk, &xn, n, &mut k)?;
            mm(&l.wv, &xn, n, &mut v)?;
            for (b, y) in [(&l.bq, &mut q), (&l.bk, &mut k), (&l.bv, &mut v)] {
                if let Some(b) = b {
                    ops::add_rows(y, b);
                }
            }
            for t in 0..n {
                let a = &angles[t * hp.n_rot..(t + 1) * hp.n_rot];
                self.rope.apply(&mut q[t * nq..(t + 1) * nq], hd, a);
                self.rope.apply(&mut k[t * nkv..(t + 1) * nkv], hd, a);
            }
            if ggml {
                // llama.cpp's default f16 KV cache.
                quant::activation::round_to(quant::GgmlType::F16, &mut k)?;
                quant::activation::round_to(quant::GgmlType::F16, &mut v)?;
            }
            for (it, &o) in items.iter().zip(&offsets) {
                let rows = o * nkv..(o + it.tokens.len()) * nkv;
                self.caches[it.slot].store(il, it.pos, &k[rows.clone()], &v[rows]);
            }
            // Each item attends to its own slot; items run in parallel, and so do the (token,
            // head) pairs inside one.
            let mut outs: Vec<&mut [f32]> = Vec::with_capacity(items.len());
            let mut rest = &mut att[..];
            for it in items {
                let (head, tail) = rest.split_at_mut(it.tokens.len() * nq);
                outs.push(head);
                rest = tail;
            }
            let caches = &self.caches;
            items
                .par_iter()
                .zip(&offsets)
                .zip(outs)
                .for_each(|((it, &o), out)| {
                    let (keys, values) = caches[it.slot].layer(il, it.pos + it.tokens.len());
                    let qs = &q[o * nq..(o + it.tokens.len()) * nq];
                    // ggml's flash attention takes its f32 tiled path from 64 query rows up.
                    if ggml && n < 64 {
                        attention_f16_online(shape, qs, keys, values, it.pos, out);
                    } else {
                        attention(shape, qs, keys, values, it.pos, out);
                    }
                });
            mm(&l.wo, &att, n, &mut proj)?;
            for (xi, pi) in x.iter_mut().zip(&proj) {
                *xi += pi;
            }

            xn.copy_from_slice(&x);
            ops::rms_norm(&mut xn, &l.ffn_norm, hp.rms_norm_eps);
            mm(&l.ffn_gate, &xn, n, &mut gate)?;
            mm(&l.ffn_up, &xn, n, &mut up)?;
            ops::swiglu(&mut gate, &up);
            mm(&l.ffn_down, &gate, n, &mut proj)?;
            for (xi, pi) in x.iter_mut().zip(&proj) {
                *xi += pi;
            }
        }
        for it in items {
            self.caches[it.slot].set_len(it.pos + it.tokens.len());
        }

        // Only the rows whose logits are wanted go through the final norm and output projection.
        let mut rows = if all_logits {
            x
        } else {
            let mut last = Vec::with_capacity(items.len() * e);
            for (it, &o) in items.iter().zip(&offsets) {
                let r = o + it.tokens.len() - 1;
                last.extend_from_slice(&x[r * e..(r + 1) * e]);
            }
            last
        };
        let n_out = rows.len() / e;
        ops::rms_norm(&mut rows, &w.output_norm, hp.rms_norm_eps);
        let mut logits = vec![0f32; n_out * hp.n_vocab];
        mm(&w.output, &rows, n_out, &mut logits)?;
        Ok(logits)
    }
}

impl Engine for CpuEngine {
    fn backend(&self) -> &'static str {
        "cpu"
    }

    fn hparams(&self) -> &LlamaHParams {
        &self.hp
    }

    fn n_ctx(&self) -> usize {
        self.caches[0].n_ctx()
    }

    fn forward(&mut self, tokens: &[u32], pos: usize, all_logits: bool) -> Result<Vec<f32>> {
        self.check(tokens, pos)?;
        // Rewinding invalidates what lies beyond `pos` even if this call fails midway.
        self.caches[0].set_len(pos);
        let pool = Arc::clone(&self.pool);
        let item = BatchItem {
            slot: 0,
            tokens,
            pos,
        };
        pool.install(|| self.run(&[item], all_logits))
    }

    /// Forgets the sequences of every slot.
    fn reset(&mut self) {
        self.caches.iter_mut().for_each(KvCache::clear);
    }

    fn device_name(&self) -> String {
        format!("cpu ({} threads)", self.threads())
    }

    fn memory(&self) -> MemoryUsage {
        MemoryUsage {
            weights: self.weight_bytes,
            kv_cache: self.kv_bytes() as u64,
            scratch: 0,
            on_device: false,
        }
    }

    fn decode_weight_bytes(&self) -> u64 {
        self.decode_bytes
    }

    fn can_replace_tensors(&self) -> bool {
        true
    }

    fn replace_tensor(&mut self, name: &str, ty: quant::GgmlType, bytes: &[u8]) -> Result<()> {
        let bytes: Arc<[u8]> = Arc::from(bytes);
        let (mut found, mut decode) = (false, self.decode_bytes as i64);
        // The first matrix is token_embd, of which a decode step reads one row; a tied output
        // shares its name and is read whole.
        for (i, m) in self.weights.mats_mut().enumerate() {
            if m.name != name {
                continue;
            }
            let (old_row, old) = (m.row_bytes() as i64, (m.row_bytes() * m.n_out) as i64);
            m.replace(ty, Arc::clone(&bytes))?;
            let (new_row, new) = (m.row_bytes() as i64, bytes.len() as i64);
            decode += if i == 0 { new_row - old_row } else { new - old };
            if !found {
                self.weight_bytes = (self.weight_bytes as i64 + new - old) as u64;
            }
            found = true;
        }
        self.decode_bytes = decode as u64;
        if !found {
            return Err(Error::Invalid(format!(
                "the cpu engine has no matrix '{name}' to replace (norms and biases keep their \
                 type)"
            )));
        }
        self.caches.iter_mut().for_each(KvCache::clear);
        Ok(())
    }
}

impl BatchEngine for CpuEngine {
    fn n_slots(&self) -> usize {
        self.caches.len()
    }

    fn forward_batch(&mut self, items: &[BatchItem<'_>]) -> Result<Vec<Vec<f32>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.check_batch(items)?;
        for it in items {
            self.caches[it.slot].set_len(it.pos);
        }
        let pool = Arc::clone(&self.pool);
        let logits = pool.install(|| self.run(items, false))?;
        Ok(logits
            .chunks_exact(self.hp.n_vocab)
            .map(<[f32]>::to_vec)
            .collect())
    }

    fn clear_slot(&mut self, slot: usize) {
        if let Some(c) = self.caches.get_mut(slot) {
            c.clear();
        }
    }
}
