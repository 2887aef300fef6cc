//! `VulkanEngine`: the llama-family forward pass on the device.
//!
//! Invariants: weights are uploaded once (`DeviceModel`); the KV cache is on the device in f16,
//! one K and one V buffer per layer, [slot][n_head_kv][n_ctx][head_dim] with `n_slots` slots of
//! `n_ctx` positions (one sequence each). Activations live in scratch buffers sized for
//! `max_batch` token rows; longer inputs run in chunks. Every token row carries its own
//! (position, slot) pair in the host-visible `rows` buffer, so one pass can hold a prompt chunk of
//! one sequence or one decode token of each of up to [`DECODE_MAX_BATCH`] sequences.
//!
//! A decode step of B sequences (one token each) runs as the step recorded for the smallest
//! bucket of [`DECODE_BUCKETS`] holding B, padded with copies of the last row (which write the
//! same cache entries with the same values; their logits are dropped). Each bucket's step is
//! recorded once and replayed: tokens, positions and slots come from the `tokens` and `rows`
//! buffers, written before each submission. Short prompt chunks (at most [`ROWS_MAX`] tokens)
//! run the same way as *rows steps*, recorded per bucket too: any rows of any slots, several of
//! one slot at consecutive positions (a rope_kv pass stores every row's key and value before the
//! split attention reads them), so a scheduler step's short prompts share passes with each other
//! and with the decode tokens. Buckets keep the pipelines and recordings few enough to prepare
//! all of them before serving ([`BatchEngine::prepare`]). Each row's result does not depend on
//! the other rows of the step (the matvec, attention and norm kernels compute rows
//! independently, in the same order for every B, and a decode step's fused attention equals the
//! rows step's rope_kv and attention bit for bit), so a sequence decoded in a batch gives the
//! tokens it gives alone. Longer prompt chunks run as prefill passes (tiled attention, matmuls),
//! recorded per call. Barriers come from the recorder's hazard tracking.

use super::buffer::{BufRange, GpuBuffer};
use super::command::Recorder;
use super::context::{Gpu, GpuOptions};
use super::error::VkResult;
use super::kernels::attention::{self, AttnShape};
use super::kernels::eltwise::{self, EltOp};
use super::kernels::matmul_q8;
use super::kernels::matvec::{self, Act, Output, MATVEC_MAX_BATCH};
use super::kernels::matvec_q8::{self, Q8Order};
use super::kernels::norm;
use super::kernels::rope::{self, RopeMode, RopeShape};
use super::kernels::WeightMatrix;
use super::memory::MemoryClass;
use super::model::{DeviceModel, GateUp, Qkv};
use super::pipeline::DescriptorCache;
use super::profile::Profile;
use crate::engine::batch::{check_items, BatchEngine, BatchItem};
use crate::engine::{Engine, MemoryUsage};
use crate::gguf::GgufFile;
use crate::model::{LlamaHParams, LlamaWeights};
use crate::{Error, Result};

/// How to build a `VulkanEngine`.
#[derive(Clone, Debug)]
pub struct VulkanEngineOptions {
    /// Context device options.
    pub gpu: GpuOptions,
    /// KV-cache positions; 0 means min(n_ctx_train, 4096).
    pub n_ctx: usize,
    /// Most tokens per forward chunk (scratch buffers are sized for it); 512 by default, as
    /// llama.cpp's `n_ubatch` (on an H100 a 7B's 4096-row products need that many tokens to fill
    /// the GPU with tensor-core tiles).
    pub max_batch: usize,
    /// Time every dispatch with GPU timestamps (serialises dispatches).
    pub profile: bool,
    /// KV cache slots: sequences held at once (at least 1).
    pub n_slots: usize,
    /// Use the tensor-core matmul where the device has it (see `matvec::route`). Off, every
    /// product runs in f32 and a sequence's results do not depend on what it is batched with.
    pub coopmat: bool,
    /// Products of up to `MATVEC_MAX_BATCH` vectors (decode and rows steps) on Q8 activations
    /// with integer dot products where the device has them (see `matvec_q8`, and
    /// `RAWRXD_INTDOT=0`); longer prompt chunks take the matmuls. Off, those products run in f32.
    pub int_dot: bool,
    /// Batched products on Q8 activations (`q8_tiles_min_batch` ..= 16 vectors) on integer
    /// tiles (`matmul_q8`), with `coopmat` and `int_dot` on, where the device and the build
    /// have the tiles named. Default from `RAWRXD_MMQ` (`matmul_q8::engine_tiles`): none, so
    /// that batched sequences equal themselves alone bit for bit; the tiles sum rows in another
    /// order than matvec_q8 (and on an H100 are faster from 6 vectors: `matmul_q8::min_batch`),
    /// so batches equal sequences alone again only with the tiles from one vector on.
    pub q8_tiles: Option<matmul_q8::Tiles>,
    /// The smallest batch `q8_tiles` take (default `matmul_q8::min_batch`, from
    /// `RAWRXD_MMQ_MIN_BATCH`); 1 puts every product of the Q8 route on them.
    pub q8_tiles_min_batch: usize,
    /// With `q8_tiles` taken, also keep the K-quant matrices in the tiles' load order
    /// (`WeightPiece::tile_order`): on an H100, 7B Q4_K_M, +5–10 % at 12–16 sequences, for as
    /// much device memory again as those matrices take. Default from `RAWRXD_MMQ_TILE_ORDER`
    /// (`matmul_q8::engine_tile_order`: on unless `0`).
    pub q8_tile_order: bool,
    /// Prompt chunks of 2 ..= `rows_max` tokens run as rows steps (see [`ROWS_MAX`], its default
    /// and upper bound); longer ones as prefill passes. 1 sends every chunk of several tokens
    /// to a prefill pass (tests of that path).
    pub rows_max: usize,
    /// One vector's products on matvec_q8 compute their input's RMS norm themselves
    /// (`matvec_q8::matvec_q8_normed`, bit-equal to the rmsnorm_q8 pass), so a decode token
    /// records no norm dispatches. Default from `RAWRXD_NORM_IN` (`matvec_q8::norm_in_default`):
    /// off unless `1`, since it measured slower than the pass on an H200 (docs/BENCHMARKS.md,
    /// "What the norms and the attention cost a decode token").
    pub norm_in: bool,
}

impl Default for VulkanEngineOptions {
    fn default() -> Self {
        VulkanEngineOptions {
            gpu: GpuOptions::from_env(),
            n_ctx: 0,
            max_batch: 512,
            profile: false,
            n_slots: 1,
            coopmat: true,
            int_dot: true,
            q8_tiles: matmul_q8::engine_tiles(),
            q8_tiles_min_batch: matmul_q8::min_batch(),
            q8_tile_order: matmul_q8::engine_tile_order(),
            rows_max: ROWS_MAX,
            norm_in: matvec_q8::norm_in_default(),
        }
    }
}

/// Most sequences one decode step advances together (the matvec kernel's batch limit); larger
/// batches run as several steps.
pub const DECODE_MAX_BATCH: usize = MATVEC_MAX_BATCH;

/// The batch sizes decode steps are recorded for; a step of B sequences runs as the smallest
/// bucket >= B (at most a third of its rows are padding past 2).
pub const DECODE_BUCKETS: [usize; 8] = [1, 2, 3, 4, 6, 8, 12, 16];

/// What a recorded pass holds, which decides how its attention runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// A prompt chunk of one sequence (more than [`ROWS_MAX`] tokens): the rope_kv pass, then
    /// the tiled prefill attention.
    Prompt,
    /// Rows of several sequences, several tokens of one sequence allowed (short prompt chunks
    /// next to decode tokens): the rope_kv pass, then the split attention, row by row.
    Rows,
    /// One token of each of several sequences: the split attention rotates and stores the new
    /// key itself (no rope_kv pass); its results equal [`Pass::Rows`]'s bit for bit.
    Decode,
}

/// Prompt chunks of at most this many tokens run as [`Pass::Rows`] steps of up to
/// [`DECODE_MAX_BATCH`] rows (the products' Q8 batched route), so that the short prompts of a
/// step share passes with each other and with the decode tokens: a row's result does not depend
/// on the other rows, so a prompt gives the same results alone, in steps of its own or merged
/// with others. Measured on an H100 (7B Q4_K_M): a 16-row step takes ~15 ms, a prefill pass of
/// 17-64 tokens 42-45 ms (its tensor-core products first expand each matrix to f16), so three
/// rows steps cost what one short prefill pass does.
pub const ROWS_MAX: usize = 3 * DECODE_MAX_BATCH;

/// Index in [`DECODE_BUCKETS`] of the smallest bucket holding `b` (1..=DECODE_MAX_BATCH).
fn bucket_of(b: usize) -> usize {
    DECODE_BUCKETS
        .iter()
        .position(|&k| k >= b)
        .unwrap_or(DECODE_BUCKETS.len() - 1)
}

/// Scratch activations (f32), each sized for `max_batch` tokens.
struct Scratch {
    x: GpuBuffer,
    xb: GpuBuffer,
    qkv: GpuBuffer,
    /// Byte offsets of the k and v regions when q/k/v are separate matrices.
    k_region: u64,
    v_region: u64,
    qr: GpuBuffer,
    att: GpuBuffer,
    partials: GpuBuffer,
    /// Counters of workgroups done: the split attention's per (row, head), the GLU product's per
    /// 32-row output block (zeroed at creation; each dispatch leaves them zeroed, and the
    /// dispatches that use them run one after another).
    counters: GpuBuffer,
    gu: GpuBuffer,
    up_region: u64,
    h: GpuBuffer,
    logits: GpuBuffer,
    readback: GpuBuffer,
    tokens: GpuBuffer,
    /// (position, slot) u32 pairs, one per token row.
    rows: GpuBuffer,
    angles: GpuBuffer,
    /// Q8 activations of one decode product's input (`matvec_q8::quantize_q8`).
    xq: GpuBuffer,
    /// A second one: a product that writes Q8 activations for the next (the GLU product) writes
    /// them into whichever of the two it does not read.
    xq2: GpuBuffer,
}

/// Prompt-sized products on tensor cores take the staged path (see `matvec::matmul_coopmat_staged`).
const STAGED_ROUTE: matvec::Route = matvec::Route::Coopmat("w");

/// Largest staging scratch the engine allocates: enough for every layer matrix of a 70B-class
/// model (8192 x 28672 f16 is 448 MiB, so those take the unstaged path) without doubling a small
/// model's footprint.
const STAGING_CAP: u64 = 256 << 20;

/// Staging buffers the staged products rotate through. With one, every product's dequant pass
/// waits for the previous product's matmul (they share it) and independent products (Q, K, V)
/// no longer overlap; with two, a product's dequant runs beside the previous one's matmul.
const STAGING_RING: usize = 2;

/// The staging scratch for `model`: [`STAGING_RING`] buffers sized for its largest product matrix
/// that fits [`STAGING_CAP`] and one binding, or none when the tensor-core path is off or absent.
fn staging_buffers(
    gpu: &Gpu,
    model: &DeviceModel,
    coopmat: bool,
    max_batch: usize,
) -> VkResult<Vec<GpuBuffer>> {
    let cap = STAGING_CAP.min(gpu.caps().limits.max_storage_buffer_range);
    let need = model
        .products()
        .into_iter()
        .filter(|w| coopmat && matvec::has_coopmat(gpu, w.ty))
        .map(|w| matvec::staged_bytes(w, max_batch))
        .filter(|&b| b <= cap)
        .max();
    match need {
        Some(b) => (0..STAGING_RING)
            .map(|_| gpu.buffer(b, MemoryClass::Device))
            .collect(),
        None => Ok(Vec::new()),
    }
}

/// Everything the graph reads while being recorded.
struct State {
    gpu: Gpu,
    hp: LlamaHParams,
    n_ctx: usize,
    n_slots: usize,
    max_batch: usize,
    decode_splits: usize,
    /// Positions a decode split covers at least (`AttnShape::split_chunk`).
    decode_split_chunk: usize,
    model: DeviceModel,
    kv: Vec<(GpuBuffer, GpuBuffer)>,
    s: Scratch,
    /// `VulkanEngineOptions::coopmat`.
    coopmat: bool,
    /// Scratch for the staged tensor-core matmul (f16 copies of one matrix each), when the
    /// tensor-core path is on; matrices larger than it take the unstaged path. Consecutive
    /// products take turns (see [`STAGING_RING`]).
    staging: Vec<GpuBuffer>,
    /// The staging buffer the next staged product takes.
    staging_next: std::cell::Cell<usize>,
    /// Per staging buffer, the matrix (its address) whose weights were dequantized into it ahead
    /// of its product ([`State::prestage_next`]) in the recording under way; reset by
    /// [`State::record`].
    staging_holds: std::cell::RefCell<Vec<Option<usize>>>,
    /// `VulkanEngineOptions::int_dot`.
    int_dot: bool,
    /// `VulkanEngineOptions::q8_tiles`, when `coopmat` is on too.
    q8_tiles: Option<matmul_q8::Tiles>,
    /// `VulkanEngineOptions::q8_tiles_min_batch`.
    q8_tiles_min_batch: usize,
    /// What the Q8 scratch last written holds, set by the kernel that wrote it and read by the
    /// products after it (see [`State::mul`]).
    xq_holds: std::cell::Cell<Option<Q8Held>>,
    /// A norm of one vector left to the products that read it ([`State::norm`]), until they
    /// are recorded.
    norm_pending: std::cell::Cell<Option<PendingNorm>>,
    /// `VulkanEngineOptions::norm_in`.
    norm_in: bool,
}

/// y = rms_norm(x) * w, not recorded: the products reading y compute it.
#[derive(Clone, Copy, Debug)]
struct PendingNorm {
    x: Act,
    w: BufRange,
    y: Act,
}

/// The Q8 form of `n` vectors of `ncols` of `x`, in `order`, held by `s.xq` (or, when `second`,
/// `s.xq2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Q8Held {
    x: Act,
    n: usize,
    ncols: usize,
    order: Q8Order,
    second: bool,
}

/// The Vulkan backend of `Engine` (and, with several slots, `BatchEngine`) for llama-family
/// models.
pub struct VulkanEngine {
    st: State,
    descs: DescriptorCache,
    /// `decode[i]`: the recorded decode step of `DECODE_BUCKETS[i]` sequences, once prepared.
    decode: Vec<Option<Recorder>>,
    /// `rows[i]`: the recorded [`Pass::Rows`] step of `DECODE_BUCKETS[i]` rows, once prepared.
    rows: Vec<Option<Recorder>>,
    prefill: Recorder,
    /// `VulkanEngineOptions::rows_max`, clamped to 1 ..= [`ROWS_MAX`].
    rows_max: usize,
    /// Cached positions per slot.
    n_past: Vec<usize>,
    profile: Option<Profile>,
    /// Peak bandwidth: the datasheet's for known cards, else measured by a copy on first use.
    peak: std::sync::OnceLock<Option<f64>>,
}

fn align(v: u64) -> u64 {
    v.div_ceil(256) * 256
}

impl State {
    fn buf(gpu: &Gpu, floats: usize) -> VkResult<GpuBuffer> {
        gpu.buffer((floats.max(1) * 4) as u64, MemoryClass::Device)
    }

    /// The kernel for `n` vectors times `w` on this engine. With `int_dot`, every product of
    /// up to `MATVEC_MAX_BATCH` vectors takes the Q8 route, decode steps and short prompt
    /// chunks alike (a 16-token chunk in f32 took ~4x the time on an H100); longer chunks take
    /// the matmuls. A prompt's rounding therefore depends on its chunk sizes (as it already did
    /// between the f32 and the tensor-core paths).
    fn route(&self, w: &WeightMatrix, n: usize) -> matvec::Route {
        matvec::route_with(&self.gpu, w.ty, n, self.coopmat, self.int_dot)
    }

    /// The Q8 scratch `xq_holds` calls first (`s.xq`) or second (`s.xq2`).
    fn xq_buf(&self, second: bool) -> BufRange {
        if second {
            self.s.xq2.range()
        } else {
            self.s.xq.range()
        }
    }

    /// Whether one vector's product with `w` computes its input's norm itself
    /// (`matvec_q8::matvec_q8_normed`): the option is on, the product takes matvec_q8 (not the
    /// integer tiles) and its NORM_IN variant runs here.
    fn takes_normed(&self, w: &WeightMatrix) -> bool {
        self.norm_in
            && self.route(w, 1) == matvec::Route::MatvecQ8
            && w.ncols == self.hp.n_embd
            && self.tiles_for(w, 1).is_none()
            && matvec_q8::has_norm_in(&self.gpu, w)
    }

    /// The integer tiles that take `n` vectors times `w` on the Q8 route, where the options ask
    /// for them (their sums are ordered differently from matvec_q8's, so only with tensor cores
    /// on); with the tiles from one vector on, one sequence's products too.
    fn tiles_for(&self, w: &WeightMatrix, n: usize) -> Option<matmul_q8::Tiles> {
        self.q8_tiles
            .filter(|&t| matmul_q8::takes(&self.gpu, t, w.ty, n, self.q8_tiles_min_batch))
    }

    /// Records that the first Q8 scratch now holds X's Q8 form for products of `next`'s format
    /// (`q8`), or that no scratch holds anything reusable.
    fn q8_written(&self, q8: bool, x: Act, n: usize, ncols: usize, next: &WeightMatrix) {
        self.xq_holds.set(q8.then_some(Q8Held {
            x,
            n,
            ncols,
            order: Q8Order::for_product(next.ty, n),
            second: false,
        }));
    }

    /// X's Q8 form in the word order of `w`'s format, for a product on the Q8 route, and which
    /// scratch holds it: reused when `xq_holds` names X in that order (the kernel that wrote X,
    /// a norm, the attention or a product, also wrote it, just before), else made by a quantize
    /// pass into the scratch not holding the last (products still reading that one then need no
    /// barrier before the pass).
    fn q8_input(
        &self,
        rec: &mut Recorder,
        descs: &mut DescriptorCache,
        x: Act,
        w: &WeightMatrix,
        n: usize,
    ) -> VkResult<bool> {
        let want = Q8Held {
            x,
            n,
            ncols: w.ncols,
            order: Q8Order::for_product(w.ty, n),
            second: false,
        };
        match self.xq_holds.get() {
            Some(h) if Q8Held { second: false, ..h } == want => Ok(h.second),
            held => {
                let second = held.is_some_and(|h| !h.second);
                let out = self.xq_buf(second);
                matvec_q8::quantize_q8(&self.gpu, rec, descs, x, w.ncols, n, out, want.order)?;
                self.xq_holds.set(Some(Q8Held { second, ..want }));
                Ok(second)
            }
        }
    }

    /// Records Y = W X with [`Self::route`]'s kernel. On the Q8 route, X's Q8 form comes from
    /// [`Self::q8_input`], and a GLU product given `next` (the down projection) also writes its
    /// output's Q8 form for it (into the other scratch): one dispatch fewer per layer.
    #[allow(clippy::too_many_arguments)]
    fn mul(
        &self,
        rec: &mut Recorder,
        descs: &mut DescriptorCache,
        w: &WeightMatrix,
        x: Act,
        y: Act,
        n: usize,
        out: Output,
    ) -> VkResult<()> {
        self.mul_then(rec, descs, w, x, y, n, out, None)
    }

    /// [`Self::mul`], naming the product that reads Y next.
    #[allow(clippy::too_many_arguments)]
    fn mul_then(
        &self,
        rec: &mut Recorder,
        descs: &mut DescriptorCache,
        w: &WeightMatrix,
        x: Act,
        y: Act,
        n: usize,
        out: Output,
        next: Option<&WeightMatrix>,
    ) -> VkResult<()> {
        let route = self.route(w, n);
        // X a norm left to its products ([`Self::norm`]): this one computes it (one vector on
        // matvec_q8), or, for any other kernel, the norm is recorded now after all.
        let normed = match self.norm_pending.get().filter(|p| p.y == x) {
            Some(p) if n == 1 && self.takes_normed(w) => Some(p),
            Some(p) => {
                self.norm_pending.set(None);
                norm::rms_norm_into(
                    &self.gpu,
                    rec,
                    descs,
                    p.x,
                    p.w,
                    p.y,
                    self.hp.n_embd,
                    1,
                    self.hp.rms_norm_eps,
                    None,
                )?;
                None
            }
            None => None,
        };
        if route == matvec::Route::MatvecQ8 {
            let norm_in = normed.map(|p| matvec_q8::NormIn {
                x: p.x,
                w: p.w,
                eps: self.hp.rms_norm_eps,
            });
            // With the norm in the product there is no Q8 input; its GLU output goes to the
            // second scratch.
            let second = match norm_in {
                Some(_) => false,
                None => self.q8_input(rec, descs, x, w, n)?,
            };
            let xq = self.xq_buf(second);
            // Batches on integer tiles where the options ask for them (the GLU's Q8 output
            // below is matvec_q8's).
            if let Some(tiles) = self.tiles_for(w, n) {
                return matmul_q8::matmul_q8(&self.gpu, rec, descs, w, xq, y, n, out, tiles);
            }
            let glu_next = next.filter(|nx| {
                out == Output::Glu
                    && y.off == 0
                    && nx.ncols == w.nrows / 2
                    && self.route(nx, n) == matvec::Route::MatvecQ8
                    && matvec_q8::glu_q8_pays(self.gpu.caps(), n)
            });
            if let Some(nx) = glu_next {
                let order = Q8Order::for_product(nx.ty, n);
                let q8_out = matvec_q8::Q8Out {
                    range: self.xq_buf(!second),
                    order,
                    counters: self.s.counters.range(),
                };
                match norm_in {
                    Some(nm) => matvec_q8::matvec_q8_normed(
                        &self.gpu,
                        rec,
                        descs,
                        w,
                        nm,
                        y,
                        out,
                        Some(q8_out),
                    )?,
                    None => matvec_q8::matvec_q8_glu_into(
                        &self.gpu,
                        rec,
                        descs,
                        w,
                        xq,
                        y,
                        n,
                        q8_out.range,
                        order,
                        q8_out.counters,
                    )?,
                }
                self.xq_holds.set(Some(Q8Held {
                    x: y,
                    n,
                    ncols: w.nrows / 2,
                    order,
                    second: !second,
                }));
                return Ok(());
            }
            if let Some(nm) = norm_in {
                return matvec_q8::matvec_q8_normed(&self.gpu, rec, descs, w, nm, y, out, None);
            }
            return matvec_q8::matvec_q8(&self.gpu, rec, descs, w, xq, y, n, out);
        }
        let i = self.staging_next.get();
        match self.staging.get(i) {
            Some(st) if route == STAGED_ROUTE && matvec::staged_bytes(w, n) <= st.size() => {
                self.staging_next.set((i + 1) % self.staging.len());
                let key = w as *const WeightMatrix as usize;
                let held = self.staging_holds.borrow_mut()[i].take() == Some(key);
                matvec::matmul_coopmat_staged(
                    &self.gpu,
                    rec,
                    descs,
                    w,
                    st.range(),
                    x,
                    y,
                    n,
                    out,
                    held,
                    None,
                )?;
                self.prestage_next(rec, descs, w, n)
            }
            _ => matvec::mul_via(route, &self.gpu, rec, descs, w, x, y, n, out),
        }
    }

    /// After staged product `w` of `n` vectors: dequantizes the product that follows it in a
    /// pass (the next of [`DeviceModel::products`], the order [`Self::record`] multiplies in; not
    /// the output matrix, which a prompt pass multiplies for one row) into the next staging
    /// buffer, so that this work runs beside `w`'s product rather than before its own. Only
    /// one-piece matrices that take the staged route with `n` too; `RAWRXD_PRESTAGE=0` turns it
    /// off.
    fn prestage_next(
        &self,
        rec: &mut Recorder,
        descs: &mut DescriptorCache,
        w: &WeightMatrix,
        n: usize,
    ) -> VkResult<()> {
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if *OFF.get_or_init(|| super::kernels::env_off("RAWRXD_PRESTAGE")) {
            return Ok(());
        }
        let products = self.model.products();
        let Some(k) = products.iter().position(|p| std::ptr::eq(*p, w)) else {
            return Ok(());
        };
        let Some(&next) = products[..products.len() - 1].get(k + 1) else {
            return Ok(());
        };
        let j = self.staging_next.get();
        match self.staging.get(j) {
            Some(st)
                if next.pieces.len() == 1
                    && self.route(next, n) == STAGED_ROUTE
                    && matvec::staged_bytes(next, n) <= st.size() =>
            {
                matvec::prestage(&self.gpu, rec, descs, next, st.range())?;
                self.staging_holds.borrow_mut()[j] = Some(next as *const WeightMatrix as usize);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Records y = rms_norm(x) * w for `n` rows of `n_embd`; when `next`, the first product that
    /// reads y, takes the Q8 route, the norm also writes y's Q8 form (then read by
    /// [`Self::mul`] without a quantize pass).
    #[allow(clippy::too_many_arguments)]
    fn norm(
        &self,
        rec: &mut Recorder,
        descs: &mut DescriptorCache,
        x: Act,
        w: &GpuBuffer,
        y: Act,
        n: usize,
        next: &WeightMatrix,
    ) -> VkResult<()> {
        let e = self.hp.n_embd;
        let q8 = self.route(next, n) == matvec::Route::MatvecQ8 && next.ncols == e;
        // One vector whose products compute the norm themselves: no dispatch here (see
        // [`Self::mul_then`]).
        if n == 1 && self.takes_normed(next) {
            self.norm_pending
                .set(Some(PendingNorm { x, w: w.range(), y }));
            self.xq_holds.set(None);
            return Ok(());
        }
        self.norm_pending.set(None);
        let xq = q8.then(|| (self.s.xq.range(), Q8Order::for_product(next.ty, n)));
        norm::rms_norm_into(
            &self.gpu,
            rec,
            descs,
            x,
            w.range(),
            y,
            e,
            n,
            self.hp.rms_norm_eps,
            xq,
        )?;
        self.q8_written(q8, y, n, e, next);
        Ok(())
    }

    fn attn_shape(&self, n_split: usize) -> AttnShape {
        AttnShape {
            n_head: self.hp.n_head,
            n_head_kv: self.hp.n_head_kv,
            head_dim: self.hp.head_dim,
            n_ctx: self.n_ctx,
            n_split,
            // (One split leaves nothing to choose: every row takes it.)
            split_chunk: self.decode_split_chunk,
        }
    }

    /// Writes the next pass's rows: each row's token id and its (position, slot).
    fn write_rows(&self, rows: impl Iterator<Item = (u32, usize, usize)>) -> Result<()> {
        let (tokens, at): (Vec<u32>, Vec<[u32; 2]>) = rows
            .map(|(token, pos, slot)| (token, [pos as u32, slot as u32]))
            .unzip();
        self.s.tokens.write(0, bytemuck::cast_slice(&tokens))?;
        self.s.rows.write(0, bytemuck::cast_slice(&at))?;
        Ok(())
    }

    /// Submits the recorded `rec` and waits, adds its kernel times to `profile`, and reads back
    /// the first `rows` logit rows.
    fn submit_and_read(
        &self,
        rec: &mut Recorder,
        profile: &mut Option<Profile>,
        rows: usize,
    ) -> Result<Vec<f32>> {
        rec.submit_wait()?;
        if let (Some(p), Some(run)) = (profile.as_mut(), rec.profile()?) {
            p.merge(&run);
        }
        let mut out = vec![0f32; rows * self.hp.n_vocab];
        self.s
            .readback
            .read(0, bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }

    /// Records the forward pass of `n` token rows (ids in `tokens`, (position, slot) pairs in
    /// `rows`) holding what `pass` names; returns the number of logit rows written to the
    /// readback buffer (n or 1, the last).
    fn record(
        &self,
        rec: &mut Recorder,
        descs: &mut DescriptorCache,
        n: usize,
        all_logits: bool,
        pass: Pass,
    ) -> VkResult<usize> {
        // Weights dequantized ahead in another recording are not counted on.
        self.staging_holds.borrow_mut().fill(None);
        self.norm_pending.set(None);
        let gpu = &self.gpu;
        let hp = &self.hp;
        let s = &self.s;
        let (e, nq, nkv, nff) = (hp.n_embd, hp.n_embd_q(), hp.n_embd_kv(), hp.n_ff);
        let m = &self.model;
        let x = Act::packed(s.x.range(), e);
        let xb = Act::packed(s.xb.range(), e);

        matvec::get_rows(gpu, rec, descs, &m.token_embd, s.tokens.range(), 0, x, n)?;
        let n_split = if pass == Pass::Prompt {
            1
        } else {
            self.decode_splits
        };
        let rope_shape = RopeShape {
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim: hp.head_dim,
            n_rot: hp.n_rot,
            mode: match hp.rope_mode {
                crate::model::RopeMode::Normal => RopeMode::Normal,
                crate::model::RopeMode::Neox => RopeMode::Neox,
            },
            n_ctx: self.n_ctx,
        };
        for (l, (kc, vc)) in m.layers.iter().zip(&self.kv) {
            // This layer's q|k|v products (matrix, first output float, output row width) and
            // where q, k and v land in the scratch (first float, row stride): one matrix's rows
            // packed q | k | v, q|k packed and v at v's region, or each at its own region.
            let (ko, vo) = ((s.k_region / 4) as usize, (s.v_region / 4) as usize);
            let (products, at) = match &l.qkv {
                Qkv::Fused(w) => {
                    let st = nq + 2 * nkv;
                    (vec![(w, 0, st)], [(0, st), (nq, st), (nq + nkv, st)])
                }
                Qkv::QkFused { qk, v } => {
                    // (q|k's rows end before v's region: it lies past q's and k's.)
                    let st = nq + nkv;
                    (
                        vec![(qk, 0, st), (v, vo, nkv)],
                        [(0, st), (nq, st), (vo, nkv)],
                    )
                }
                Qkv::Split { q, k, v } => (
                    vec![(q, 0, nq), (k, ko, nkv), (v, vo, nkv)],
                    [(0, nq), (ko, nkv), (vo, nkv)],
                ),
            };
            self.norm(rec, descs, x, &l.attn_norm, xb, n, products[0].0)?;
            // The biases are one vector q | k | v, in the products' order.
            let mut bias_off = 0;
            for (w, off, width) in products {
                let r = s.qkv.slice((off * 4) as u64, (n * width * 4) as u64);
                let y = Act::packed(r, width);
                self.mul(rec, descs, w, xb, y, n, Output::Store)?;
                if let Some(b) = &l.qkv_bias {
                    let bias = Act {
                        range: b.range(),
                        off: bias_off,
                        stride: 0,
                    };
                    eltwise::eltwise(gpu, rec, descs, EltOp::Add, y, bias, y, width, n)?;
                }
                bias_off += width;
            }
            let whole = s.qkv.range();
            let [q, k, v] = at.map(|(off, stride)| Act {
                range: whole,
                off,
                stride,
            });
            let att = Act::packed(s.att.range(), nq);
            // A decode step's attention rotates q and the new key and stores the new key and
            // value itself; other passes take the rope_kv pass (their rows may read each
            // other's keys).
            let fused_rope = (pass == Pass::Decode).then_some(attention::DecodeRope {
                n_rot: hp.n_rot,
                mode: rope_shape.mode,
                k,
                v,
                angles: s.angles.range(),
            });
            let qr = if fused_rope.is_some() {
                q
            } else {
                let qr = Act::packed(s.qr.range(), nq);
                rope::rope_kv(
                    gpu,
                    rec,
                    descs,
                    rope_shape,
                    q,
                    k,
                    v,
                    qr,
                    kc.range(),
                    vc.range(),
                    s.angles.range(),
                    s.rows.range(),
                    n,
                )?;
                qr
            };
            if pass == Pass::Prompt && n > 1 && hp.head_dim <= attention::PREFILL_MAX_HEAD_DIM {
                let shape = self.attn_shape(1);
                // On tensor cores only with the engine's tensor-core option on.
                let tc = self.coopmat && attention::prefill_on_tensor_cores(gpu, &shape);
                attention::attention_prefill(
                    gpu,
                    rec,
                    descs,
                    shape,
                    qr,
                    kc.range(),
                    vc.range(),
                    s.rows.range(),
                    att,
                    n,
                    tc,
                )?;
            } else {
                // On Q8 activations the attention also writes them for the output projection.
                let q8 = self.route(&l.wo, n) == matvec::Route::MatvecQ8
                    && hp.head_dim % 32 == 0
                    && l.wo.ncols == nq;
                attention::attention_into(
                    gpu,
                    rec,
                    descs,
                    self.attn_shape(n_split),
                    qr,
                    kc.range(),
                    vc.range(),
                    s.partials.range(),
                    s.counters.range(),
                    s.rows.range(),
                    att,
                    n,
                    q8.then(|| (s.xq.range(), Q8Order::for_product(l.wo.ty, n))),
                    fused_rope,
                )?;
                self.q8_written(q8, att, n, nq, &l.wo);
            }
            self.mul(rec, descs, &l.wo, att, x, n, Output::Accumulate)?;
            self.norm(rec, descs, x, &l.ffn_norm, xb, n, l.gate_up.matrices()[0])?;
            let h = Act::packed(s.h.range(), nff);
            match &l.gate_up {
                GateUp::Fused(w)
                    if matches!(
                        self.route(w, n),
                        matvec::Route::Matvec | matvec::Route::MatvecQ8
                    ) =>
                {
                    self.mul_then(rec, descs, w, xb, h, n, Output::Glu, Some(&l.down))?;
                }
                GateUp::Fused(w) => {
                    let gu = s.gu.range();
                    self.mul(
                        rec,
                        descs,
                        w,
                        xb,
                        Act::packed(gu, 2 * nff),
                        n,
                        Output::Store,
                    )?;
                    let g = Act {
                        range: gu,
                        off: 0,
                        stride: 2 * nff,
                    };
                    let u = Act {
                        range: gu,
                        off: nff,
                        stride: 2 * nff,
                    };
                    eltwise::eltwise(gpu, rec, descs, EltOp::SwiGlu, g, u, h, nff, n)?;
                }
                GateUp::Split { gate, up } => {
                    let gr = s.gu.slice(0, (n * nff * 4) as u64);
                    let ur = s.gu.slice(s.up_region, (n * nff * 4) as u64);
                    self.mul(rec, descs, gate, xb, Act::packed(gr, nff), n, Output::Store)?;
                    self.mul(rec, descs, up, xb, Act::packed(ur, nff), n, Output::Store)?;
                    eltwise::eltwise(
                        gpu,
                        rec,
                        descs,
                        EltOp::SwiGlu,
                        Act::packed(gr, nff),
                        Act::packed(ur, nff),
                        h,
                        nff,
                        n,
                    )?;
                }
            }
            self.mul(rec, descs, &l.down, h, x, n, Output::Accumulate)?;
        }
        let rows = if all_logits { n } else { 1 };
        let first = n - rows;
        let xs = Act {
            range: s.x.range(),
            off: first * e,
            stride: e,
        };
        self.norm(rec, descs, xs, &m.output_norm, xb, rows, m.output())?;
        let logits_bytes = (rows * hp.n_vocab * 4) as u64;
        let lr = s.logits.slice(0, logits_bytes);
        self.mul(
            rec,
            descs,
            m.output(),
            xb,
            Act::packed(lr, hp.n_vocab),
            rows,
            Output::Store,
        )?;
        rec.copy(lr, s.readback.slice(0, logits_bytes))?;
        Ok(rows)
    }
}

impl VulkanEngine {
    /// Opens a context and uploads the model in `file`.
    pub fn load(file: &GgufFile, opts: &VulkanEngineOptions) -> Result<Self> {
        let hp = LlamaHParams::from_gguf(file)?;
        let weights = LlamaWeights::from_gguf(file, &hp)?;
        let gpu = Gpu::new(&opts.gpu)?;
        Self::with_gpu(gpu, &hp, &weights, opts)
    }

    /// Uploads a model on an existing context.
    pub fn with_gpu(
        gpu: Gpu,
        hp: &LlamaHParams,
        w: &LlamaWeights<'_>,
        opts: &VulkanEngineOptions,
    ) -> Result<Self> {
        let n_ctx = if opts.n_ctx == 0 {
            hp.n_ctx_train.clamp(1, 4096)
        } else {
            opts.n_ctx
        };
        let max_batch = opts.max_batch.clamp(1, 4096);
        if hp.head_dim % 2 != 0 || hp.head_dim > 256 {
            return Err(Error::Model(format!(
                "head_dim {} is not supported by the Vulkan attention kernel",
                hp.head_dim
            )));
        }
        let n_slots = opts.n_slots.max(1);
        let (nq, nkv, nff) = (hp.n_embd_q(), hp.n_embd_kv(), hp.n_ff);
        let kv_floats = n_slots * nkv * n_ctx / 2; // f16 pairs per u32 word
        let range = gpu.caps().limits.max_storage_buffer_range;
        if (kv_floats * 4) as u64 > range {
            return Err(Error::Invalid(format!(
                "KV cache of {n_slots} slots x {n_ctx} positions needs {} MiB per layer and \
                 cache, more than the device binds at once ({} MiB): use fewer slots or a \
                 smaller context",
                (kv_floats * 4) >> 20,
                range >> 20
            )));
        }
        // Integer tiles only with tensor cores on; their tile-ordered copies only where they run.
        let q8_tiles = opts.q8_tiles.filter(|_| opts.coopmat);
        let tile_order = opts.q8_tile_order
            && q8_tiles.is_some_and(|t| matmul_q8::available(&gpu, t, crate::quant::GgmlType::Q4K));
        let model = DeviceModel::upload(&gpu, hp, w, tile_order)?;
        if tile_order {
            let extra: u64 = model.products().iter().map(|m| m.tile_order_bytes()).sum();
            log::info!(
                "integer tiles: the K-quant matrices also in tile order, {} MiB more device memory \
                 (RAWRXD_MMQ_TILE_ORDER=0 keeps one copy)",
                extra >> 20
            );
        }
        let decode_splits = attention::decode_splits(n_ctx, hp.n_head);
        let decode_split_chunk = attention::decode_split_chunk();
        let mut kv = Vec::with_capacity(hp.n_layer);
        for _ in 0..hp.n_layer {
            kv.push((State::buf(&gpu, kv_floats)?, State::buf(&gpu, kv_floats)?));
        }
        // Scratch rows: a prompt chunk, or a decode or rows step (a rows step may fill the
        // largest bucket whatever the slot count), whichever is larger.
        let b = max_batch.max(DECODE_MAX_BATCH);
        let k_region = align((b * nq * 4) as u64);
        let v_region = k_region + align((b * nkv * 4) as u64);
        let up_region = align((b * nff * 4) as u64);
        let partial_floats = (b * hp.n_head * (hp.head_dim + 2))
            .max(DECODE_MAX_BATCH * hp.n_head * decode_splits * (hp.head_dim + 2));
        let logits_bytes = (b.max(DECODE_MAX_BATCH) * hp.n_vocab * 4) as u64;
        let angles = rope::angle_table(n_ctx, hp.n_rot, hp.rope_freq_base as f64);
        let s = Scratch {
            x: State::buf(&gpu, b * hp.n_embd)?,
            xb: State::buf(&gpu, b * hp.n_embd)?,
            qkv: gpu.buffer(v_region + (b * nkv * 4) as u64, MemoryClass::Device)?,
            k_region,
            v_region,
            qr: State::buf(&gpu, b * nq)?,
            att: State::buf(&gpu, b * nq)?,
            partials: State::buf(&gpu, partial_floats)?,
            counters: gpu.buffer(
                ((b.max(DECODE_MAX_BATCH) * hp.n_head).max(nff.div_ceil(32)) * 4) as u64,
                MemoryClass::Device,
            )?,
            gu: gpu.buffer(up_region + (b * nff * 4) as u64, MemoryClass::Device)?,
            up_region,
            h: State::buf(&gpu, b * nff)?,
            logits: gpu.buffer(logits_bytes, MemoryClass::Device)?,
            readback: gpu.buffer(logits_bytes, MemoryClass::Readback)?,
            tokens: gpu.buffer((b.max(DECODE_MAX_BATCH) * 4) as u64, MemoryClass::Upload)?,
            rows: gpu.buffer((b.max(DECODE_MAX_BATCH) * 8) as u64, MemoryClass::Upload)?,
            angles: State::buf(&gpu, angles.len())?,
            xq: gpu.buffer(
                matvec_q8::q8_bytes(hp.n_embd.max(nq).max(nff), DECODE_MAX_BATCH),
                MemoryClass::Device,
            )?,
            xq2: gpu.buffer(
                matvec_q8::q8_bytes(hp.n_embd.max(nq).max(nff), DECODE_MAX_BATCH),
                MemoryClass::Device,
            )?,
        };
        gpu.upload(&s.angles, 0, bytemuck::cast_slice(&angles))?;
        // The caches start zeroed so that unused positions never hold NaN bit patterns; the
        // workgroup counters must (see `Scratch::counters`).
        let mut rec = Recorder::new(&gpu, false)?;
        rec.begin()?;
        rec.fill(s.counters.range(), 0)?;
        for (k, v) in &kv {
            rec.fill(k.range(), 0)?;
            rec.fill(v.range(), 0)?;
        }
        rec.submit_wait()?;
        let descs = DescriptorCache::new(&gpu);
        let staging = staging_buffers(&gpu, &model, opts.coopmat, opts.max_batch)?;
        let staging_holds = std::cell::RefCell::new(vec![None; staging.len()]);
        let st = State {
            gpu: gpu.clone(),
            hp: hp.clone(),
            n_ctx,
            n_slots,
            max_batch,
            decode_splits,
            decode_split_chunk,
            model,
            kv,
            s,
            coopmat: opts.coopmat,
            staging,
            staging_holds,
            staging_next: std::cell::Cell::new(0),
            int_dot: opts.int_dot,
            q8_tiles,
            q8_tiles_min_batch: opts.q8_tiles_min_batch,
            xq_holds: std::cell::Cell::new(None),
            norm_pending: std::cell::Cell::new(None),
            norm_in: opts.norm_in,
        };
        Ok(VulkanEngine {
            decode: DECODE_BUCKETS.iter().map(|_| None).collect(),
            rows: DECODE_BUCKETS.iter().map(|_| None).collect(),
            prefill: Recorder::new(&gpu, opts.profile)?,
            st,
            descs,
            n_past: vec![0; n_slots],
            rows_max: opts.rows_max.clamp(1, ROWS_MAX),
            profile: opts.profile.then(Profile::default),
            peak: std::sync::OnceLock::new(),
        })
    }

    /// The context.
    pub fn gpu(&self) -> &Gpu {
        &self.st.gpu
    }

    /// Per-kernel GPU times accumulated since load or `take_profile` (profile mode only).
    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    /// Returns and clears the accumulated profile.
    pub fn take_profile(&mut self) -> Option<Profile> {
        self.profile.as_mut().map(std::mem::take)
    }

    /// Dispatches and barriers in the recorded single-sequence decode step (0 before the first
    /// decode).
    pub fn decode_step_stats(&self) -> (u32, u32) {
        // decode[0] is the one-sequence bucket.
        match &self.decode[0] {
            Some(rec) => (rec.dispatch_count(), rec.barrier_count()),
            None => (0, 0),
        }
    }

    /// KV cache slots (sequences held at once).
    pub fn n_slots(&self) -> usize {
        self.st.n_slots
    }

    /// Runs `tokens` of the sequence in `slot` at positions `pos..` as one pass (at most
    /// `max_batch` tokens); returns the last token's logits, or every token's if `all_logits`.
    fn run_chunk(
        &mut self,
        tokens: &[u32],
        pos: usize,
        slot: usize,
        all_logits: bool,
    ) -> Result<Vec<f32>> {
        let st = &self.st;
        let n = tokens.len();
        st.write_rows(
            tokens
                .iter()
                .enumerate()
                .map(|(t, &token)| (token, pos + t, slot)),
        )?;
        self.prefill.begin()?;
        st.record(
            &mut self.prefill,
            &mut self.descs,
            n,
            all_logits,
            Pass::Prompt,
        )?;
        self.prefill.finish()?;
        let rows = if all_logits { n } else { 1 };
        st.submit_and_read(&mut self.prefill, &mut self.profile, rows)
    }

    /// The `pass` step (decode or rows) of `b` rows held in `step`, recorded there on first use
    /// (fields rather than `self`, so the caller can go on using the state and the profile).
    fn bucket_step<'a>(
        step: &'a mut Option<Recorder>,
        st: &State,
        descs: &mut DescriptorCache,
        profiling: bool,
        b: usize,
        pass: Pass,
    ) -> Result<&'a mut Recorder> {
        match step {
            Some(rec) => Ok(rec),
            empty => {
                let mut rec = Recorder::new(&st.gpu, profiling)?;
                rec.begin()?;
                st.record(&mut rec, descs, b, true, pass)?;
                rec.finish()?;
                Ok(empty.insert(rec))
            }
        }
    }

    /// One decode step of `steps.len()` (<= DECODE_MAX_BATCH) sequences, each (slot, token,
    /// position): replays the step recorded for its bucket (recording it on first use) and
    /// returns each sequence's logits.
    fn run_decode(&mut self, steps: &[(usize, u32, usize)]) -> Result<Vec<Vec<f32>>> {
        self.run_step(steps, Pass::Decode)
    }

    /// One [`Pass::Rows`] step of `rows.len()` (<= DECODE_MAX_BATCH) token rows, each (slot,
    /// token, position), rows of one slot in position order: returns each row's logits.
    fn run_rows(&mut self, rows: &[(usize, u32, usize)]) -> Result<Vec<Vec<f32>>> {
        self.run_step(rows, Pass::Rows)
    }

    /// Replays the `pass` step recorded for the bucket of `steps` (recording it on first use),
    /// padded with copies of the last row, and returns each row's logits.
    fn run_step(&mut self, steps: &[(usize, u32, usize)], pass: Pass) -> Result<Vec<Vec<f32>>> {
        let b = steps.len();
        debug_assert!((1..=DECODE_MAX_BATCH).contains(&b));
        let bucket = bucket_of(b);
        let last = steps[b - 1];
        self.st.write_rows(
            steps
                .iter()
                .chain(std::iter::repeat(&last))
                .take(DECODE_BUCKETS[bucket])
                .map(|&(slot, token, pos)| (token, pos, slot)),
        )?;
        // Prompt passes are recorded per call (`run_chunk`), never here.
        let recorded = match pass {
            Pass::Decode => &mut self.decode[bucket],
            Pass::Rows | Pass::Prompt => &mut self.rows[bucket],
        };
        let rec = Self::bucket_step(
            recorded,
            &self.st,
            &mut self.descs,
            self.profile.is_some(),
            DECODE_BUCKETS[bucket],
            pass,
        )?;
        let out = self.st.submit_and_read(rec, &mut self.profile, b)?;
        let nv = self.st.hp.n_vocab;
        Ok(out.chunks(nv).map(<[f32]>::to_vec).collect())
    }

    /// Checks that every token id is in the vocabulary.
    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let n_vocab = self.st.hp.n_vocab;
        match tokens.iter().find(|&&t| t as usize >= n_vocab) {
            Some(t) => Err(Error::Invalid(format!(
                "token id {t} is outside the vocabulary of {n_vocab}"
            ))),
            None => Ok(()),
        }
    }

    /// Feeds `tokens` to the sequence in `slot` at `pos..` in chunks of `max_batch` (a single
    /// token runs as a one-sequence decode step, a chunk of at most `rows_max` as rows steps of
    /// up to [`DECODE_MAX_BATCH`] rows); returns the last token's logits, or every token's if
    /// `all_logits`. The caller has checked positions and tokens.
    fn feed(
        &mut self,
        slot: usize,
        tokens: &[u32],
        pos: usize,
        all_logits: bool,
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        let chunks: Vec<&[u32]> = tokens.chunks(self.st.max_batch).collect();
        let last = chunks.len() - 1;
        let mut p = pos;
        for (i, c) in chunks.into_iter().enumerate() {
            let logits = if c.len() == 1 {
                self.run_decode(&[(slot, c[0], p)])?.remove(0)
            } else if c.len() <= self.rows_max {
                let rows: Vec<_> = (0..c.len()).map(|t| (slot, c[t], p + t)).collect();
                let mut per_row = Vec::with_capacity(rows.len());
                for step in rows.chunks(DECODE_MAX_BATCH) {
                    per_row.extend(self.run_rows(step)?);
                }
                if all_logits {
                    per_row.concat()
                } else {
                    per_row.pop().unwrap_or_default()
                }
            } else {
                self.run_chunk(c, p, slot, all_logits)?
            };
            if all_logits || i == last {
                out.extend(logits);
            }
            p += c.len();
            self.n_past[slot] = p;
        }
        Ok(out)
    }

    /// The device's peak memory bandwidth for known cards (bytes/s).
    fn known_bandwidth(name: &str) -> Option<f64> {
        let n = name.to_ascii_lowercase();
        if n.contains("h100") && n.contains("pcie") {
            Some(2.0e12)
        } else if n.contains("h100") {
            Some(3.35e12)
        } else if n.contains("h200") {
            Some(4.8e12)
        } else {
            None
        }
    }
}

impl Engine for VulkanEngine {
    fn backend(&self) -> &'static str {
        "vulkan"
    }

    fn hparams(&self) -> &LlamaHParams {
        &self.st.hp
    }

    fn n_ctx(&self) -> usize {
        self.st.n_ctx
    }

    fn forward(&mut self, tokens: &[u32], pos: usize, all_logits: bool) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(Error::Invalid("forward: no tokens".into()));
        }
        if pos > self.n_past[0] {
            return Err(Error::Invalid(format!(
                "forward at position {pos}, but only {} positions are cached",
                self.n_past[0]
            )));
        }
        if pos + tokens.len() > self.st.n_ctx {
            return Err(Error::Invalid(format!(
                "forward of {} tokens at position {pos} exceeds the context of {}",
                tokens.len(),
                self.st.n_ctx
            )));
        }
        self.check_tokens(tokens)?;
        self.feed(0, tokens, pos, all_logits)
    }

    fn reset(&mut self) {
        self.n_past.iter_mut().for_each(|p| *p = 0);
    }

    fn device_name(&self) -> String {
        self.st.gpu.caps().name.clone()
    }

    fn memory(&self) -> MemoryUsage {
        let kv: u64 = self.st.kv.iter().map(|(k, v)| k.size() + v.size()).sum();
        let stats = self.st.gpu.memory_stats();
        MemoryUsage {
            weights: self.st.model.bytes,
            kv_cache: kv,
            scratch: stats
                .allocated_bytes
                .saturating_sub(self.st.model.bytes + kv),
            on_device: self.st.gpu.caps().kind != super::caps::DeviceKind::Cpu,
        }
    }

    fn decode_weight_bytes(&self) -> u64 {
        self.st.model.decode_bytes()
    }

    fn prompt_matmul(&self) -> &'static str {
        let m = &self.st.model;
        let on = self.st.coopmat
            && m.products()
                .iter()
                .any(|w| matvec::has_coopmat(&self.st.gpu, w.ty));
        if on {
            "f16 tensor cores"
        } else {
            "f32"
        }
    }

    fn decode_matvec(&self) -> &'static str {
        let on = self.st.int_dot
            && self
                .st
                .model
                .products()
                .iter()
                .any(|w| matvec_q8::has_matvec_q8(&self.st.gpu, w.ty));
        let tiles = |t| {
            self.st
                .model
                .products()
                .iter()
                .any(|w| matmul_q8::available(&self.st.gpu, t, w.ty))
        };
        // With the tiles from one vector on, single sequences run on them too.
        let every = self.st.q8_tiles_min_batch <= 1;
        match self.st.q8_tiles {
            _ if !on => "f32",
            Some(t @ matmul_q8::Tiles::Tensor) if tiles(t) => {
                if every {
                    "q8 int dot, every product on int8 tensor cores"
                } else {
                    "q8 int dot, batches on int8 tensor cores"
                }
            }
            Some(t @ matmul_q8::Tiles::Emulated) if tiles(t) => {
                if every {
                    "q8 int dot, every product on emulated int8 tiles"
                } else {
                    "q8 int dot, batches on emulated int8 tiles"
                }
            }
            _ => "q8 int dot",
        }
    }

    fn peak_bandwidth(&self) -> Option<f64> {
        *self.peak.get_or_init(|| {
            let caps = self.st.gpu.caps();
            if let Some(bw) = Self::known_bandwidth(&caps.name) {
                return Some(bw);
            }
            // 256 MiB on a GPU (well past its caches); 32 MiB on a CPU implementation.
            let size = if caps.kind == super::caps::DeviceKind::Cpu {
                32 << 20
            } else {
                256 << 20
            };
            match super::bandwidth::measure_copy_bandwidth(&self.st.gpu, size, 3) {
                Ok(bw) => {
                    if let Some(bw) = bw {
                        log::info!(
                            "{}: peak bandwidth measured by a device copy: {:.1} GB/s",
                            caps.name,
                            bw / 1e9
                        );
                    }
                    bw
                }
                Err(e) => {
                    log::warn!("{}: measuring copy bandwidth failed: {e}", caps.name);
                    None
                }
            }
        })
    }

    fn memory_heaps(&self) -> Vec<crate::engine::HeapUsage> {
        self.st
            .gpu
            .memory_budget()
            .into_iter()
            .map(|h| crate::engine::HeapUsage {
                size: h.size,
                device_local: h.device_local,
                budget: h.budget,
                usage: h.usage,
            })
            .collect()
    }

    fn take_profile_report(&mut self) -> Option<String> {
        self.take_profile().map(|p| p.to_string())
    }

    fn can_replace_tensors(&self) -> bool {
        true
    }

    fn replace_tensor(
        &mut self,
        name: &str,
        ty: crate::quant::GgmlType,
        bytes: &[u8],
    ) -> Result<()> {
        // Nothing is in flight (every submit is waited on); the recorded decode step and the
        // cached descriptor sets name the old buffers, so both are rebuilt, and the cached
        // positions were computed with the old weights.
        let st = &mut self.st;
        st.model.replace(&st.gpu, &st.hp, name, ty, bytes)?;
        self.descs = DescriptorCache::new(&st.gpu);
        self.decode.iter_mut().for_each(|d| *d = None);
        self.rows.iter_mut().for_each(|d| *d = None);
        self.reset();
        Ok(())
    }
}

impl BatchEngine for VulkanEngine {
    fn n_slots(&self) -> usize {
        self.st.n_slots
    }

    /// Items of more than `rows_max` ([`ROWS_MAX`]) tokens (long prompt chunks) run one by one
    /// as prefill passes. The others run together: when every one is a single token, as decode
    /// steps of up to [`DECODE_MAX_BATCH`] sequences; else (short prompt chunks among them) as
    /// rows steps of up to [`DECODE_MAX_BATCH`] token rows, a chunk's rows in order and possibly
    /// split between two steps. Either way a row's logits do not depend on the other rows (see
    /// the module header).
    fn forward_batch(&mut self, items: &[BatchItem<'_>]) -> Result<Vec<Vec<f32>>> {
        check_items(items, self.st.n_slots, self.st.n_ctx)?;
        for (i, it) in items.iter().enumerate() {
            if it.pos > self.n_past[it.slot] {
                return Err(Error::Invalid(format!(
                    "forward_batch item {i}: position {} but slot {} caches only 0..{}",
                    it.pos, it.slot, self.n_past[it.slot]
                )));
            }
            self.check_tokens(it.tokens)?;
        }
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); items.len()];
        // (item, (slot, token, position)) of every row the steps below run, item by item.
        let mut rows = Vec::new();
        for (i, it) in items.iter().enumerate() {
            if it.tokens.len() > self.rows_max {
                out[i] = self.feed(it.slot, it.tokens, it.pos, false)?;
            } else {
                rows.extend(
                    it.tokens
                        .iter()
                        .enumerate()
                        .map(|(t, &token)| (i, (it.slot, token, it.pos + t))),
                );
            }
        }
        let pass = if rows.len() == items.iter().filter(|it| it.tokens.len() == 1).count() {
            Pass::Decode
        } else {
            Pass::Rows
        };
        for group in rows.chunks(DECODE_MAX_BATCH) {
            let steps: Vec<_> = group.iter().map(|(_, s)| *s).collect();
            let logits = self.run_step(&steps, pass)?;
            // A chunk's last row comes last: its logits are the item's.
            for ((i, (slot, _, pos)), l) in group.iter().zip(logits) {
                out[*i] = l;
                self.n_past[*slot] = pos + 1;
            }
        }
        Ok(out)
    }

    fn clear_slot(&mut self, slot: usize) {
        if let Some(p) = self.n_past.get_mut(slot) {
            *p = 0;
        }
    }

    /// Decode and rows steps run [`DECODE_MAX_BATCH`] rows a pass (a bucket's recorded step).
    fn pass_rows(&self) -> Option<usize> {
        Some(DECODE_MAX_BATCH)
    }

    /// Records the decode step of every bucket up to the slot count and the rows step of every
    /// bucket (one sequence's short prompt chunk fills every rows step it needs), and runs one
    /// throwaway prompt chunk just too long for rows steps through slot 0 (cleared after), whose
    /// prefill pass builds the pipelines longer prompts take: so that no request waits for a
    /// pipeline compile or a recording (on an H100, the first long prompt waited ~1.2 s).
    fn prepare(&mut self) -> Result<()> {
        let top = bucket_of(self.st.n_slots.min(DECODE_MAX_BATCH));
        let profiling = self.profile.is_some();
        for (step, &b) in self.decode.iter_mut().zip(&DECODE_BUCKETS).take(top + 1) {
            Self::bucket_step(step, &self.st, &mut self.descs, profiling, b, Pass::Decode)?;
        }
        for (step, &b) in self.rows.iter_mut().zip(&DECODE_BUCKETS) {
            Self::bucket_step(step, &self.st, &mut self.descs, profiling, b, Pass::Rows)?;
        }
        let long = self.rows_max + 1;
        if long <= self.n_ctx() {
            // Its dispatches are not part of what a profile measures.
            let kept = self.take_profile();
            let tokens = vec![0u32; long];
            self.forward_batch(&[BatchItem {
                slot: 0,
                tokens: &tokens,
                pos: 0,
            }])?;
            self.clear_slot(0);
            if kept.is_some() {
                self.profile = kept;
            }
        }
        Ok(())
    }
}
