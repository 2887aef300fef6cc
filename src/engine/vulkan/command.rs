//! Recording and submitting compute work, with automatic, minimal barriers and optional
//! per-dispatch GPU timestamps.
//!
//! A `Recorder` owns one command buffer and its fence. Each dispatch or copy declares the ranges
//! it reads and writes; a single global memory barrier is inserted only when an operation touches
//! a range written since the last barrier (read-after-write, write-after-write) or writes a range
//! read since then (write-after-read). Every recording starts with a barrier (ordering against
//! earlier submissions) and ends with one making results visible to the host. A recording can be
//! submitted any number of times (record once, replay), as long as the buffers and descriptor
//! sets it names live. In profile mode every dispatch is serialised and timestamped.
//!
//! `RAWRXD_TIMING_NO_BARRIERS=1` (a measuring aid, never for results) drops every barrier between
//! operations: dependent dispatches then overlap and compute garbage, and the time a recording
//! takes bounds what its kernels cost without the waits between them (docs/BENCHMARKS.md,
//! "What the barriers cost"). `RAWRXD_TIMING_SKIP=label,label` (also a measuring aid) records no
//! dispatch with one of those labels (e.g. `rmsnorm`, `attn`): the time a pass takes without them
//! bounds what removing those kernels and their dependent steps could save.

use ash::vk;

use super::buffer::BufRange;
use super::context::Gpu;
use super::error::{VkResult, VulkanError};
use super::pipeline::{DescriptorCache, Kernel};
use super::profile::{DispatchRecord, Profile};

/// How a dispatch uses a bound range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only read.
    Read,
    /// Written (possibly also read).
    Write,
}

/// A bound range and how it is used.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    /// The range.
    pub range: BufRange,
    /// Its use.
    pub access: Access,
}

impl Binding {
    /// A read-only binding.
    pub fn read(range: BufRange) -> Self {
        Binding {
            range,
            access: Access::Read,
        }
    }

    /// A written binding.
    pub fn write(range: BufRange) -> Self {
        Binding {
            range,
            access: Access::Write,
        }
    }
}

/// Tracks accesses since the last barrier.
#[derive(Default)]
struct Hazards {
    written: Vec<BufRange>,
    read: Vec<BufRange>,
}

impl Hazards {
    fn needs_barrier(&self, bindings: &[Binding]) -> bool {
        bindings.iter().any(|b| {
            self.written.iter().any(|w| w.overlaps(&b.range))
                || (b.access == Access::Write && self.read.iter().any(|r| r.overlaps(&b.range)))
        })
    }

    fn add(&mut self, bindings: &[Binding]) {
        for b in bindings {
            match b.access {
                Access::Read => self.read.push(b.range),
                Access::Write => self.written.push(b.range),
            }
        }
    }

    fn clear(&mut self) {
        self.written.clear();
        self.read.clear();
    }
}

const MAX_TIMESTAMPS: u32 = 8192;

/// Whether `RAWRXD_TIMING_NO_BARRIERS=1` asks for recordings without barriers between operations
/// (see the module header; warned about once).
fn timing_without_barriers() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let on = std::env::var("RAWRXD_TIMING_NO_BARRIERS").is_ok_and(|v| v.trim() == "1");
        if on {
            log::warn!(
                "RAWRXD_TIMING_NO_BARRIERS=1: dependent dispatches overlap and every result is \
                 wrong; use the timings only"
            );
        }
        on
    })
}

/// The dispatch labels `RAWRXD_TIMING_SKIP` names (see the module header; warned about once).
fn timing_skipped(label: &str) -> bool {
    static SKIP: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SKIP.get_or_init(|| {
        let skip: Vec<String> = std::env::var("RAWRXD_TIMING_SKIP")
            .unwrap_or_default()
            .split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if !skip.is_empty() {
            log::warn!(
                "RAWRXD_TIMING_SKIP={}: those dispatches are not recorded and every result is \
                 wrong; use the timings only",
                skip.join(",")
            );
        }
        skip
    })
    .iter()
    .any(|l| l == label)
}

/// One command buffer being recorded, or recorded and ready to submit.
pub struct Recorder {
    gpu: Gpu,
    pool: vk::CommandPool,
    cb: vk::CommandBuffer,
    fence: vk::Fence,
    hazards: Hazards,
    recording: bool,
    barriers: u32,
    dispatches: u32,
    profile: Option<(vk::QueryPool, Vec<DispatchRecord>)>,
}

impl Recorder {
    /// A recorder on `gpu`; `profile` enables per-dispatch timestamps (when the queue has them).
    pub fn new(gpu: &Gpu, profile: bool) -> VkResult<Self> {
        let d = gpu.device();
        let pool_info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(gpu.caps().compute_queue_family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: valid device and create info.
        let pool = unsafe { d.create_command_pool(&pool_info, None) }
            .map_err(VulkanError::map("vkCreateCommandPool"))?;
        let mut rec = Recorder {
            gpu: gpu.clone(),
            pool,
            cb: vk::CommandBuffer::null(),
            fence: vk::Fence::null(),
            hazards: Hazards::default(),
            recording: false,
            barriers: 0,
            dispatches: 0,
            profile: None,
        };
        let alloc = vk::CommandBufferAllocateInfo::default()
            .command_pool(pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        // SAFETY: valid pool from this device.
        rec.cb = unsafe { d.allocate_command_buffers(&alloc) }
            .map_err(VulkanError::map("vkAllocateCommandBuffers"))?[0];
        // SAFETY: valid device.
        rec.fence = unsafe { d.create_fence(&vk::FenceCreateInfo::default(), None) }
            .map_err(VulkanError::map("vkCreateFence"))?;
        if profile && gpu.caps().limits.timestamp_valid_bits > 0 {
            let qi = vk::QueryPoolCreateInfo::default()
                .query_type(vk::QueryType::TIMESTAMP)
                .query_count(MAX_TIMESTAMPS);
            // SAFETY: valid device and create info.
            let qp = unsafe { d.create_query_pool(&qi, None) }
                .map_err(VulkanError::map("vkCreateQueryPool"))?;
            rec.profile = Some((qp, Vec::new()));
        }
        Ok(rec)
    }

    /// Starts a new recording, discarding the previous one.
    pub fn begin(&mut self) -> VkResult<()> {
        let gpu = self.gpu.clone();
        let d = gpu.device();
        // SAFETY: the command buffer is not pending (every submission is waited for) and its pool
        // allows resetting individual buffers.
        unsafe {
            d.reset_command_buffer(self.cb, vk::CommandBufferResetFlags::empty())
                .map_err(VulkanError::map("vkResetCommandBuffer"))?;
            d.begin_command_buffer(self.cb, &vk::CommandBufferBeginInfo::default())
                .map_err(VulkanError::map("vkBeginCommandBuffer"))?;
        }
        self.recording = true;
        self.hazards.clear();
        self.barriers = 0;
        self.dispatches = 0;
        if let Some((qp, recs)) = &mut self.profile {
            recs.clear();
            // SAFETY: recording; the query pool belongs to this device.
            unsafe { d.cmd_reset_query_pool(self.cb, *qp, 0, MAX_TIMESTAMPS) };
        }
        self.barrier();
        if let Some((qp, _)) = &self.profile {
            // SAFETY: recording; query 0 was reset above.
            unsafe {
                d.cmd_write_timestamp(self.cb, vk::PipelineStageFlags::BOTTOM_OF_PIPE, *qp, 0)
            };
        }
        Ok(())
    }

    fn barrier(&mut self) {
        let all = vk::AccessFlags::SHADER_READ
            | vk::AccessFlags::SHADER_WRITE
            | vk::AccessFlags::TRANSFER_READ
            | vk::AccessFlags::TRANSFER_WRITE;
        let stages = vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER;
        let mb = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(all)];
        // SAFETY: called only while recording.
        unsafe {
            self.gpu.device().cmd_pipeline_barrier(
                self.cb,
                stages,
                stages,
                vk::DependencyFlags::empty(),
                &mb,
                &[],
                &[],
            )
        };
        self.hazards.clear();
        self.barriers += 1;
    }

    fn prepare(&mut self, bindings: &[Binding]) -> VkResult<()> {
        if !self.recording {
            return Err(VulkanError::invalid(
                "recording",
                "dispatch outside begin()/finish()",
            ));
        }
        if self.profile.is_some()
            || (self.hazards.needs_barrier(bindings) && !timing_without_barriers())
        {
            self.barrier();
        }
        self.hazards.add(bindings);
        Ok(())
    }

    /// Records a dispatch of `kernel` over `groups` workgroups. `label` and `bytes` (an estimate
    /// of the bytes it moves) feed the profile.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &mut self,
        descs: &mut DescriptorCache,
        kernel: &Kernel,
        bindings: &[Binding],
        push: &[u8],
        groups: [u32; 3],
        label: &'static str,
        bytes: u64,
    ) -> VkResult<()> {
        if timing_skipped(label) {
            return Ok(());
        }
        if push.len() != kernel.push_size as usize {
            return Err(VulkanError::invalid(
                "push constants",
                format!(
                    "{} takes {} bytes, got {}",
                    kernel.name,
                    kernel.push_size,
                    push.len()
                ),
            ));
        }
        let max = self.gpu.caps().limits.max_workgroup_count;
        if groups.iter().zip(max).any(|(g, m)| *g > m) || groups.contains(&0) {
            return Err(VulkanError::invalid(
                "dispatch",
                format!("{}: {groups:?} workgroups (max {max:?})", kernel.name),
            ));
        }
        let ranges: Vec<BufRange> = bindings.iter().map(|b| b.range).collect();
        let set = descs.get(kernel, &ranges)?;
        self.prepare(bindings)?;
        let d = self.gpu.device();
        // SAFETY: recording; pipeline, layout and set come from this device and match (the set
        // was allocated with the kernel's layout); push bytes match the layout's range.
        unsafe {
            d.cmd_bind_pipeline(self.cb, vk::PipelineBindPoint::COMPUTE, kernel.pipeline);
            d.cmd_bind_descriptor_sets(
                self.cb,
                vk::PipelineBindPoint::COMPUTE,
                kernel.layout,
                0,
                &[set],
                &[],
            );
            if !push.is_empty() {
                d.cmd_push_constants(
                    self.cb,
                    kernel.layout,
                    vk::ShaderStageFlags::COMPUTE,
                    0,
                    push,
                );
            }
            d.cmd_dispatch(self.cb, groups[0], groups[1], groups[2]);
        }
        self.dispatches += 1;
        self.after_op(label, bytes);
        Ok(())
    }

    fn after_op(&mut self, label: &'static str, bytes: u64) {
        let cb = self.cb;
        if let Some((qp, recs)) = &mut self.profile {
            let q = recs.len() as u32 + 1;
            if q < MAX_TIMESTAMPS {
                // SAFETY: recording; query q was reset in begin().
                unsafe {
                    self.gpu.device().cmd_write_timestamp(
                        cb,
                        vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                        *qp,
                        q,
                    )
                };
                recs.push(DispatchRecord { label, bytes });
            }
        }
    }

    /// Records a buffer-to-buffer copy of `src` into `dst` (equal sizes).
    pub fn copy(&mut self, src: BufRange, dst: BufRange) -> VkResult<()> {
        if src.size != dst.size {
            return Err(VulkanError::invalid(
                "copy",
                format!("{} bytes into {}", src.size, dst.size),
            ));
        }
        self.prepare(&[Binding::read(src), Binding::write(dst)])?;
        let region = [vk::BufferCopy::default()
            .src_offset(src.offset)
            .dst_offset(dst.offset)
            .size(src.size)];
        // SAFETY: recording; both buffers are live and have TRANSFER usage; ranges are in bounds
        // (they come from sub-allocations).
        unsafe {
            self.gpu
                .device()
                .cmd_copy_buffer(self.cb, src.buffer, dst.buffer, &region)
        };
        self.after_op("copy", src.size * 2);
        Ok(())
    }

    /// Records a fill of `dst` with the 32-bit `value` (size a multiple of 4).
    pub fn fill(&mut self, dst: BufRange, value: u32) -> VkResult<()> {
        self.prepare(&[Binding::write(dst)])?;
        // SAFETY: recording; the buffer is live with TRANSFER_DST usage; offset/size are multiples
        // of 4 (sub-allocations are 256-aligned; callers pass 4-multiple sizes).
        unsafe {
            self.gpu
                .device()
                .cmd_fill_buffer(self.cb, dst.buffer, dst.offset, dst.size, value)
        };
        self.after_op("fill", dst.size);
        Ok(())
    }

    /// Ends the recording (after a barrier that makes device writes visible to the host).
    pub fn finish(&mut self) -> VkResult<()> {
        if !self.recording {
            return Err(VulkanError::invalid(
                "recording",
                "finish() without begin()",
            ));
        }
        let mb = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::HOST_READ)];
        let d = self.gpu.device();
        // SAFETY: recording.
        unsafe {
            d.cmd_pipeline_barrier(
                self.cb,
                vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &mb,
                &[],
                &[],
            );
            d.end_command_buffer(self.cb)
                .map_err(VulkanError::map("vkEndCommandBuffer"))?;
        }
        self.recording = false;
        Ok(())
    }

    /// Submits the finished recording and waits for it.
    pub fn submit_wait(&mut self) -> VkResult<()> {
        if self.recording {
            self.finish()?;
        }
        let d = self.gpu.device();
        let cbs = [self.cb];
        let submit = [vk::SubmitInfo::default().command_buffers(&cbs)];
        {
            let queue = self.gpu.device_owner().queue();
            // SAFETY: the command buffer is executable and not pending; the fence is unsignalled;
            // the queue is locked.
            unsafe { d.queue_submit(*queue, &submit, self.fence) }
                .map_err(VulkanError::map("vkQueueSubmit"))?;
        }
        // SAFETY: the fence belongs to this device.
        let waited = unsafe { d.wait_for_fences(&[self.fence], true, u64::MAX) };
        // SAFETY: the fence is signalled (or the device is lost); resetting it is allowed.
        unsafe { d.reset_fences(&[self.fence]) }.map_err(VulkanError::map("vkResetFences"))?;
        waited.map_err(VulkanError::map("vkWaitForFences"))
    }

    /// Barriers recorded in the current/last recording (including the first and last).
    pub fn barrier_count(&self) -> u32 {
        self.barriers
    }

    /// Dispatches recorded in the current/last recording.
    pub fn dispatch_count(&self) -> u32 {
        self.dispatches
    }

    /// The per-dispatch timings of the last submission (profile mode), `None` otherwise.
    pub fn profile(&self) -> VkResult<Option<Profile>> {
        let Some((qp, recs)) = &self.profile else {
            return Ok(None);
        };
        if recs.is_empty() {
            return Ok(Some(Profile::default()));
        }
        let mut ts = vec![0u64; recs.len() + 1];
        // SAFETY: queries 0..=recs.len() were written by the last (waited-for) submission.
        unsafe {
            self.gpu.device().get_query_pool_results(
                *qp,
                0,
                &mut ts,
                vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WAIT,
            )
        }
        .map_err(VulkanError::map("vkGetQueryPoolResults"))?;
        let period = self.gpu.caps().limits.timestamp_period as f64;
        let bits = self.gpu.caps().limits.timestamp_valid_bits;
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let mut p = Profile::default();
        for (i, r) in recs.iter().enumerate() {
            let dt = (ts[i + 1] & mask).wrapping_sub(ts[i] & mask) & mask;
            p.add(r.label, dt as f64 * period / 1000.0, r.bytes);
        }
        Ok(Some(p))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let d = self.gpu.device();
        // SAFETY: no submission is pending (submit_wait waits); objects are destroyed once.
        unsafe {
            if let Some((qp, _)) = self.profile.take() {
                d.destroy_query_pool(qp, None);
            }
            d.destroy_fence(self.fence, None);
            d.destroy_command_pool(self.pool, None);
        }
    }
}
