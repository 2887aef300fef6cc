//! Peak memory bandwidth of a device by measurement, for cards the datasheet table does not know:
//! one device-local buffer copied into another (vkCmdCopyBuffer between GPU timestamps), the best of
//! a few repetitions, 2 × size ÷ time (every byte is read once and written once).
//!
//! Invariant: the measurement allocates two buffers of `size` bytes for its duration only, and
//! returns `None` (not an error) where the queue has no timestamps.

use super::command::Recorder;
use super::context::Gpu;
use super::error::VkResult;
use super::memory::MemoryClass;

/// Copy bandwidth of `gpu` in bytes/s: `size` bytes copied `reps` times, the fastest kept.
pub fn measure_copy_bandwidth(gpu: &Gpu, size: u64, reps: u32) -> VkResult<Option<f64>> {
    if gpu.caps().limits.timestamp_valid_bits == 0 || size == 0 {
        return Ok(None);
    }
    let size = size.div_ceil(4) * 4;
    let src = gpu.buffer(size, MemoryClass::Device)?;
    let dst = gpu.buffer(size, MemoryClass::Device)?;
    let mut rec = Recorder::new(gpu, true)?;
    rec.begin()?;
    rec.fill(src.range(), 0x3F80_0000)?;
    rec.submit_wait()?;
    let mut best: Option<f64> = None;
    for _ in 0..reps.max(1) {
        rec.begin()?;
        rec.copy(src.range(), dst.range())?;
        rec.submit_wait()?;
        let us = rec
            .profile()?
            .and_then(|p| p.kernels.get("copy").map(|k| k.total_us));
        if let Some(us) = us.filter(|&us| us > 0.0) {
            best = Some(best.map_or(us, |b: f64| b.min(us)));
        }
    }
    Ok(best.map(|us| 2.0 * size as f64 / (us * 1e-6)))
}
