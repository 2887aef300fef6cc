//! `VulkanEngine`: the llama-family forward pass on the device.
//!
//! Invariants: weights are uploaded once (`DeviceModel`); the KV cache is on the device in f16,
//! one K and one V buffer per layer, [n_head_kv][n_ctx][head_dim]. Activations live in scratch
//! buffers sized for `max_batch` tokens; longer inputs run in chunks. The single-token decode
//! step's command buffer is recorded once and replayed: its position and token come from small
//! host-visible buffers (`step` = [pos, ntok], `tokens`), written before each submission.
//! Prefill chunks are recorded per call. Barriers come from the recorder's hazard tracking.

use super::buffer::GpuBuffer;
use super::command::Recorder;
use super::context::{Gpu, GpuOptions};
use super::error::VkResult;
use super::kernels::attention::{self, AttnShape};
use super::kernels::eltwise::{self, EltOp};
use super::kernels::matvec::{self, Act, Output, MATVEC_MAX_BATCH};
use super::kernels::norm;
use super::kernels::rope::{self, RopeMode, RopeShape};
use super::memory::MemoryClass;
use super::model::{DeviceModel, GateUp, Qkv};
use super::pipeline::DescriptorCache;
use super::profile::Profile;
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
    /// Most tokens per forward chunk (scratch buffers are sized for it).
    pub max_batch: usize,
    /// Time every dispatch with GPU timestamps (serialises dispatches).
    pub profile: bool,
}

impl Default for VulkanEngineOptions {
    fn default() -> Self {
        VulkanEngineOptions {
            gpu: GpuOptions::from_env(),
            n_ctx: 0,
            max_batch: 256,
            profile: false,
        }
    }
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
    gu: GpuBuffer,
    up_region: u64,
    h: GpuBuffer,
    logits: GpuBuffer,
    readback: GpuBuffer,
    tokens: GpuBuffer,
    step: GpuBuffer,
    angles: GpuBuffer,
}

/// Everything the graph reads while being recorded.
struct State {
    gpu: Gpu,
    hp: LlamaHParams,
    n_ctx: usize,
    max_batch: usize,
    decode_splits: usize,
    model: DeviceModel,
    kv: Vec<(GpuBuffer, GpuBuffer)>,
    s: Scratch,
}

/// The Vulkan backend of `Engine` for llama-family models.
pub struct VulkanEngine {
    st: State,
    descs: DescriptorCache,
    decode: Recorder,
    decode_recorded: bool,
    prefill: Recorder,
    n_past: usize,
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

    fn attn_shape(&self, n_split: usize) -> AttnShape {
        AttnShape {
            n_head: self.hp.n_head,
            n_head_kv: self.hp.n_head_kv,
            head_dim: self.hp.head_dim,
            n_ctx: self.n_ctx,
            n_split,
        }
    }

    /// Records the forward pass of `n` tokens (ids in `tokens`, positions step.pos ..); returns
    /// the number of logit rows written to the readback buffer (n or 1).
    fn record(
        &self,
        rec: &mut Recorder,
        descs: &mut DescriptorCache,
        n: usize,
        all_logits: bool,
    ) -> VkResult<usize> {
        let gpu = &self.gpu;
        let hp = &self.hp;
        let s = &self.s;
        let (e, nq, nkv, nff) = (hp.n_embd, hp.n_embd_q(), hp.n_embd_kv(), hp.n_ff);
        let m = &self.model;
        let x = Act::packed(s.x.range(), e);
        let xb = Act::packed(s.xb.range(), e);

        matvec::get_rows(gpu, rec, descs, &m.token_embd, s.tokens.range(), 0, x, n)?;
        let n_split = if n == 1 { self.decode_splits } else { 1 };
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
            norm::rms_norm(
                gpu,
                rec,
                descs,
                x,
                l.attn_norm.range(),
                xb,
                e,
                n,
                hp.rms_norm_eps,
            )?;
            let whole = s.qkv.range();
            let (q, k, v) = match &l.qkv {
                Qkv::Fused(w) => {
                    let st = nq + 2 * nkv;
                    matvec::mul(
                        gpu,
                        rec,
                        descs,
                        w,
                        xb,
                        Act::packed(whole, st),
                        n,
                        Output::Store,
                    )?;
                    if let Some(b) = &l.qkv_bias {
                        let bias = Act {
                            range: b.range(),
                            off: 0,
                            stride: 0,
                        };
                        let y = Act::packed(whole, st);
                        eltwise::eltwise(gpu, rec, descs, EltOp::Add, y, bias, y, st, n)?;
                    }
                    (
                        Act {
                            range: whole,
                            off: 0,
                            stride: st,
                        },
                        Act {
                            range: whole,
                            off: nq,
                            stride: st,
                        },
                        Act {
                            range: whole,
                            off: nq + nkv,
                            stride: st,
                        },
                    )
                }
                Qkv::Split { q, k, v } => {
                    let qr = s.qkv.slice(0, (n * nq * 4) as u64);
                    let kr = s.qkv.slice(s.k_region, (n * nkv * 4) as u64);
                    let vr = s.qkv.slice(s.v_region, (n * nkv * 4) as u64);
                    matvec::mul(
                        gpu,
                        rec,
                        descs,
                        q,
                        xb,
                        Act::packed(qr, nq),
                        n,
                        Output::Store,
                    )?;
                    matvec::mul(
                        gpu,
                        rec,
                        descs,
                        k,
                        xb,
                        Act::packed(kr, nkv),
                        n,
                        Output::Store,
                    )?;
                    matvec::mul(
                        gpu,
                        rec,
                        descs,
                        v,
                        xb,
                        Act::packed(vr, nkv),
                        n,
                        Output::Store,
                    )?;
                    if let Some(b) = &l.qkv_bias {
                        for (r, off, w) in [(qr, 0, nq), (kr, nq, nkv), (vr, nq + nkv, nkv)] {
                            let bias = Act {
                                range: b.range(),
                                off,
                                stride: 0,
                            };
                            let y = Act::packed(r, w);
                            eltwise::eltwise(gpu, rec, descs, EltOp::Add, y, bias, y, w, n)?;
                        }
                    }
                    (
                        Act {
                            range: whole,
                            off: 0,
                            stride: nq,
                        },
                        Act {
                            range: whole,
                            off: (s.k_region / 4) as usize,
                            stride: nkv,
                        },
                        Act {
                            range: whole,
                            off: (s.v_region / 4) as usize,
                            stride: nkv,
                        },
                    )
                }
            };
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
                s.step.range(),
                n,
            )?;
            let att = Act::packed(s.att.range(), nq);
            attention::attention(
                gpu,
                rec,
                descs,
                self.attn_shape(n_split),
                qr,
                kc.range(),
                vc.range(),
                s.partials.range(),
                s.step.range(),
                att,
                n,
            )?;
            matvec::mul(gpu, rec, descs, &l.wo, att, x, n, Output::Accumulate)?;
            norm::rms_norm(
                gpu,
                rec,
                descs,
                x,
                l.ffn_norm.range(),
                xb,
                e,
                n,
                hp.rms_norm_eps,
            )?;
            let h = Act::packed(s.h.range(), nff);
            match &l.gate_up {
                GateUp::Fused(w) if n <= MATVEC_MAX_BATCH => {
                    matvec::matvec(gpu, rec, descs, w, xb, h, n, Output::Glu)?;
                }
                GateUp::Fused(w) => {
                    let gu = s.gu.range();
                    matvec::mul(
                        gpu,
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
                    matvec::mul(
                        gpu,
                        rec,
                        descs,
                        gate,
                        xb,
                        Act::packed(gr, nff),
                        n,
                        Output::Store,
                    )?;
                    matvec::mul(
                        gpu,
                        rec,
                        descs,
                        up,
                        xb,
                        Act::packed(ur, nff),
                        n,
                        Output::Store,
                    )?;
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
            matvec::mul(gpu, rec, descs, &l.down, h, x, n, Output::Accumulate)?;
        }
        let rows = if all_logits { n } else { 1 };
        let first = n - rows;
        let xs = Act {
            range: s.x.range(),
            off: first * e,
            stride: e,
        };
        norm::rms_norm(
            gpu,
            rec,
            descs,
            xs,
            m.output_norm.range(),
            xb,
            e,
            rows,
            hp.rms_norm_eps,
        )?;
        let logits_bytes = (rows * hp.n_vocab * 4) as u64;
        let lr = s.logits.slice(0, logits_bytes);
        matvec::mul(
            gpu,
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
        let model = DeviceModel::upload(&gpu, hp, w)?;
        let (nq, nkv, nff) = (hp.n_embd_q(), hp.n_embd_kv(), hp.n_ff);
        let decode_splits = attention::decode_splits(n_ctx, hp.n_head);
        let kv_floats = nkv * n_ctx / 2; // f16 pairs per u32 word
        let mut kv = Vec::with_capacity(hp.n_layer);
        for _ in 0..hp.n_layer {
            kv.push((State::buf(&gpu, kv_floats)?, State::buf(&gpu, kv_floats)?));
        }
        let b = max_batch;
        let k_region = align((b * nq * 4) as u64);
        let v_region = k_region + align((b * nkv * 4) as u64);
        let up_region = align((b * nff * 4) as u64);
        let partial_floats =
            (b * hp.n_head * (hp.head_dim + 2)).max(hp.n_head * decode_splits * (hp.head_dim + 2));
        let logits_bytes = (b * hp.n_vocab * 4) as u64;
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
            gu: gpu.buffer(up_region + (b * nff * 4) as u64, MemoryClass::Device)?,
            up_region,
            h: State::buf(&gpu, b * nff)?,
            logits: gpu.buffer(logits_bytes, MemoryClass::Device)?,
            readback: gpu.buffer(logits_bytes, MemoryClass::Readback)?,
            tokens: gpu.buffer((b * 4) as u64, MemoryClass::Upload)?,
            step: gpu.buffer(16, MemoryClass::Upload)?,
            angles: State::buf(&gpu, angles.len())?,
        };
        gpu.upload(&s.angles, 0, bytemuck::cast_slice(&angles))?;
        // The caches start zeroed so that unused positions never hold NaN bit patterns.
        let mut rec = Recorder::new(&gpu, false)?;
        rec.begin()?;
        for (k, v) in &kv {
            rec.fill(k.range(), 0)?;
            rec.fill(v.range(), 0)?;
        }
        rec.submit_wait()?;
        let descs = DescriptorCache::new(&gpu);
        let st = State {
            gpu: gpu.clone(),
            hp: hp.clone(),
            n_ctx,
            max_batch,
            decode_splits,
            model,
            kv,
            s,
        };
        Ok(VulkanEngine {
            decode: Recorder::new(&gpu, opts.profile)?,
            prefill: Recorder::new(&gpu, opts.profile)?,
            st,
            descs,
            decode_recorded: false,
            n_past: 0,
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

    /// Dispatches and barriers in the recorded decode step (0 before the first decode).
    pub fn decode_step_stats(&self) -> (u32, u32) {
        if self.decode_recorded {
            (self.decode.dispatch_count(), self.decode.barrier_count())
        } else {
            (0, 0)
        }
    }

    fn run_chunk(&mut self, tokens: &[u32], pos: usize, all_logits: bool) -> Result<Vec<f32>> {
        let st = &self.st;
        let n = tokens.len();
        st.s.tokens.write(0, bytemuck::cast_slice(tokens))?;
        st.s.step
            .write(0, bytemuck::cast_slice(&[pos as u32, n as u32]))?;
        let rec = if n == 1 {
            if !self.decode_recorded {
                self.decode.begin()?;
                st.record(&mut self.decode, &mut self.descs, 1, false)?;
                self.decode.finish()?;
                self.decode_recorded = true;
            }
            &mut self.decode
        } else {
            self.prefill.begin()?;
            st.record(&mut self.prefill, &mut self.descs, n, all_logits)?;
            self.prefill.finish()?;
            &mut self.prefill
        };
        rec.submit_wait()?;
        if let (Some(p), Some(run)) = (self.profile.as_mut(), rec.profile()?) {
            p.merge(&run);
        }
        let rows = if all_logits { n } else { 1 };
        let mut out = vec![0f32; rows * st.hp.n_vocab];
        st.s.readback.read(0, bytemuck::cast_slice_mut(&mut out))?;
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
        let hp = &self.st.hp;
        if tokens.is_empty() {
            return Err(Error::Invalid("forward: no tokens".into()));
        }
        if pos > self.n_past {
            return Err(Error::Invalid(format!(
                "forward at position {pos}, but only {} positions are cached",
                self.n_past
            )));
        }
        if pos + tokens.len() > self.st.n_ctx {
            return Err(Error::Invalid(format!(
                "forward of {} tokens at position {pos} exceeds the context of {}",
                tokens.len(),
                self.st.n_ctx
            )));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= hp.n_vocab) {
            return Err(Error::Invalid(format!(
                "token id {t} is outside the vocabulary of {}",
                hp.n_vocab
            )));
        }
        let mut out = Vec::new();
        let chunks: Vec<&[u32]> = tokens.chunks(self.st.max_batch).collect();
        let last = chunks.len() - 1;
        let mut p = pos;
        for (i, c) in chunks.into_iter().enumerate() {
            let want_all = all_logits;
            let logits = self.run_chunk(c, p, want_all)?;
            if all_logits || i == last {
                out.extend(logits);
            }
            p += c.len();
            self.n_past = p;
        }
        Ok(out)
    }

    fn reset(&mut self) {
        self.n_past = 0;
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
        self.decode_recorded = false;
        self.n_past = 0;
        Ok(())
    }
}
