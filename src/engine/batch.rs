//! Multi-sequence engines: [`BatchEngine`] holds one KV cache *slot* per sequence and advances
//! several sequences in one step, reading every weight once for all of them.
//!
//! Contract of [`BatchEngine::forward_batch`]: every item names a distinct slot; for each item,
//! positions `0..pos` of its slot must be cached (a smaller `pos` rewinds the slot), its tokens are
//! computed at `pos..pos + tokens.len()` and cached, and the logits of its last token come back in
//! item order. A sequence's result must not depend on which other sequences share the step: the
//! greedy output of a sequence run in a batch is token-for-token the output of running it alone.
//! Each slot holds [`Engine::n_ctx`] positions. The single-sequence [`Engine`] methods act on slot
//! 0 (`forward`) or on every slot (`reset`).
//!
//! Both backends batch: [`CpuEngine`] and the Vulkan engine. [`Serial`] turns any
//! single-sequence engine into a one-slot `BatchEngine`, so an engine without batching can still
//! sit behind the scheduler, serving one request at a time.

use std::sync::Arc;

use super::{Backend, CpuEngine, Engine, HeapUsage, LoadOptions, MemoryUsage};
use crate::gguf::GgufFile;
use crate::model::LlamaHParams;
use crate::{Error, Result};

/// One sequence's part of a batched step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchItem<'a> {
    /// The KV cache slot holding the sequence (`< n_slots`).
    pub slot: usize,
    /// Tokens to feed (at least one).
    pub tokens: &'a [u32],
    /// Position of the first token; positions `0..pos` of the slot must be cached.
    pub pos: usize,
}

/// An engine that decodes several sequences at once, each in its own KV cache slot.
pub trait BatchEngine: Engine {
    /// Sequences the engine can hold at once.
    fn n_slots(&self) -> usize;
    /// Advances every item's sequence (see the module header) and returns the logits of each
    /// item's last token (`[n_vocab]` each), in item order.
    fn forward_batch(&mut self, items: &[BatchItem<'_>]) -> Result<Vec<Vec<f32>>>;
    /// Forgets the sequence cached in `slot` (a no-op for a slot out of range).
    fn clear_slot(&mut self, slot: usize);
    /// Gets ready to serve: does now the one-time work (pipeline compiles, recordings) that the
    /// first steps of each batch size would otherwise pay for. The scheduler calls it before
    /// serving. Default: nothing to do.
    fn prepare(&mut self) -> Result<()> {
        Ok(())
    }
    /// Token rows one pass of the engine holds, where a step of more rows runs as several
    /// passes that each cost about a whole one: the scheduler then feeds prompt tokens next to
    /// running decodes only as far as they fill the step's last pass. Default: none (a step
    /// costs by its rows).
    fn pass_rows(&self) -> Option<usize> {
        None
    }
}

/// Checks the item list against `n_slots` and `n_ctx`: slots in range and distinct, tokens
/// present, positions fitting the context. Backends call it before touching any cache.
pub fn check_items(items: &[BatchItem<'_>], n_slots: usize, n_ctx: usize) -> Result<()> {
    let mut seen = vec![false; n_slots];
    for (i, item) in items.iter().enumerate() {
        let bad = |msg: String| Err(Error::Invalid(format!("forward_batch item {i}: {msg}")));
        if item.slot >= n_slots {
            return bad(format!("slot {} but the engine has {n_slots}", item.slot));
        }
        if std::mem::replace(&mut seen[item.slot], true) {
            return bad(format!("slot {} appears twice in one step", item.slot));
        }
        if item.tokens.is_empty() {
            return bad("no tokens".into());
        }
        if item.pos + item.tokens.len() > n_ctx {
            return bad(format!(
                "context full: positions {}..{} do not fit a context of {n_ctx}",
                item.pos,
                item.pos + item.tokens.len()
            ));
        }
    }
    Ok(())
}

/// Loads `model` on `backend` with `n_slots` KV cache slots of `n_ctx` positions each; `threads`
/// sizes the CPU engine's pool (`None`: one per core). `auto` is Vulkan when a device can be
/// used, else the CPU engine.
pub fn load_batch_engine(
    backend: Backend,
    model: Arc<GgufFile>,
    n_ctx: usize,
    n_slots: usize,
    threads: Option<usize>,
) -> Result<Box<dyn BatchEngine>> {
    let opts = LoadOptions {
        n_ctx,
        threads,
        ..LoadOptions::default()
    };
    load_batch_engine_with(backend, model, &opts, n_slots)
}

/// [`load_batch_engine`] with every option of [`LoadOptions`] (device, profiling).
pub fn load_batch_engine_with(
    backend: Backend,
    model: Arc<GgufFile>,
    opts: &LoadOptions,
    n_slots: usize,
) -> Result<Box<dyn BatchEngine>> {
    let vulkan = |model: &Arc<GgufFile>| -> Result<Box<dyn BatchEngine>> {
        let vopts = super::select::vulkan_options(opts, n_slots);
        Ok(Box::new(super::vulkan::VulkanEngine::load(model, &vopts)?))
    };
    let cpu = |model| -> Result<Box<dyn BatchEngine>> {
        Ok(Box::new(CpuEngine::load_batch(
            model,
            opts.n_ctx,
            n_slots,
            opts.threads,
        )?))
    };
    match backend {
        Backend::Cpu => cpu(model),
        Backend::Vulkan => vulkan(&model),
        Backend::Auto => match vulkan(&model) {
            Ok(e) => Ok(e),
            Err(why) => {
                log::info!("backend auto: using cpu ({why})");
                cpu(model)
            }
        },
    }
}

/// A single-sequence engine as a one-slot [`BatchEngine`].
pub struct Serial(pub Box<dyn Engine>);

impl Engine for Serial {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    fn hparams(&self) -> &LlamaHParams {
        self.0.hparams()
    }
    fn n_ctx(&self) -> usize {
        self.0.n_ctx()
    }
    fn forward(&mut self, tokens: &[u32], pos: usize, all_logits: bool) -> Result<Vec<f32>> {
        self.0.forward(tokens, pos, all_logits)
    }
    fn reset(&mut self) {
        self.0.reset()
    }
    fn device_name(&self) -> String {
        self.0.device_name()
    }
    fn memory(&self) -> MemoryUsage {
        self.0.memory()
    }
    fn decode_weight_bytes(&self) -> u64 {
        self.0.decode_weight_bytes()
    }
    fn peak_bandwidth(&self) -> Option<f64> {
        self.0.peak_bandwidth()
    }
    fn memory_heaps(&self) -> Vec<HeapUsage> {
        self.0.memory_heaps()
    }
}

impl BatchEngine for Serial {
    fn n_slots(&self) -> usize {
        1
    }
    fn forward_batch(&mut self, items: &[BatchItem<'_>]) -> Result<Vec<Vec<f32>>> {
        check_items(items, 1, self.0.n_ctx())?;
        items
            .iter()
            .map(|it| self.0.forward(it.tokens, it.pos, false))
            .collect()
    }
    fn clear_slot(&mut self, slot: usize) {
        if slot == 0 {
            self.0.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_checks_name_the_problem() {
        let item = |slot, tokens: &'static [u32], pos| BatchItem { slot, tokens, pos };
        assert!(check_items(&[item(0, &[1], 0), item(1, &[2, 3], 5)], 2, 8).is_ok());
        let cases: [(&[BatchItem<'_>], &str); 4] = [
            (&[item(2, &[1], 0)], "slot 2 but the engine has 2"),
            (&[item(0, &[1], 0), item(0, &[1], 1)], "appears twice"),
            (&[item(1, &[], 0)], "no tokens"),
            (&[item(1, &[1, 2], 7)], "positions 7..9"),
        ];
        for (items, want) in cases {
            let e = check_items(items, 2, 8).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
