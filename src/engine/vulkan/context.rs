//! `Gpu`: the shared Vulkan context (instance, device, allocator, pipelines), and transfers
//! between host memory and device buffers.
//!
//! Invariants: `Gpu` is a cheap `Arc` clone; everything holding Vulkan objects of the device holds
//! one, so the device outlives them. On close the context waits for idle, saves the pipeline
//! cache, destroys pipelines, frees memory, then the device, then the instance (field order).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;

use super::buffer::{BufRange, GpuBuffer};
use super::caps::{DeviceCaps, HeapInfo};
use super::command::Recorder;
use super::device::{self, Device, DeviceSelector};
use super::error::{VkResult, VulkanError};
use super::instance::{Instance, InstanceOptions};
use super::memory::{Allocator, MemoryClass, MemoryStats};
use super::pipeline::{default_cache_dir, Kernel, KernelSpec, Pipelines};

/// How to open a context.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Instance options (validation).
    pub instance: InstanceOptions,
    /// Device choice.
    pub device: DeviceSelector,
    /// Pipeline-cache directory; `None` uses `default_cache_dir()`.
    pub cache_dir: Option<PathBuf>,
    /// Do not persist the pipeline cache.
    pub no_pipeline_cache: bool,
}

impl GpuOptions {
    /// Options from the environment (`RAWRXD_VULKAN_VALIDATION`, `RAWRXD_VULKAN_DEVICE`).
    pub fn from_env() -> Self {
        GpuOptions {
            instance: InstanceOptions::from_env(),
            device: DeviceSelector::from_env(),
            cache_dir: None,
            no_pipeline_cache: false,
        }
    }
}

struct GpuInner {
    pipelines: Pipelines,
    allocator: Mutex<Allocator>,
    device: Device,
    instance: Arc<Instance>,
}

impl Drop for GpuInner {
    fn drop(&mut self) {
        if let Err(e) = self.device.wait_idle() {
            log::error!("waiting for the device on close: {e}");
        }
    }
}

/// The shared Vulkan context.
#[derive(Clone)]
pub struct Gpu(Arc<GpuInner>);

impl Gpu {
    /// Opens libvulkan, picks a device and creates the context.
    pub fn new(opts: &GpuOptions) -> VkResult<Gpu> {
        let instance = Arc::new(Instance::new(opts.instance)?);
        let adapters = device::enumerate(&instance)?;
        let i = opts.device.select(&adapters)?;
        let device = Device::new(instance.clone(), &adapters[i])?;
        let allocator = Mutex::new(Allocator::new(device.raw().clone(), device.caps()));
        let cache_dir = if opts.no_pipeline_cache {
            None
        } else {
            opts.cache_dir.clone().or_else(default_cache_dir)
        };
        let pipelines = Pipelines::new(
            device.raw().clone(),
            device.caps(),
            cache_dir,
            device.pipeline_stats().cloned(),
        )?;
        log::info!(
            "vulkan device: {} ({}, {})",
            device.caps().name,
            device.caps().driver_name,
            device.caps().driver_info
        );
        Ok(Gpu(Arc::new(GpuInner {
            pipelines,
            allocator,
            device,
            instance,
        })))
    }

    /// The device's caps.
    pub fn caps(&self) -> &DeviceCaps {
        self.0.device.caps()
    }

    /// The ash device.
    pub fn device(&self) -> &ash::Device {
        self.0.device.raw()
    }

    /// The device wrapper (queue access).
    pub fn device_owner(&self) -> &Device {
        &self.0.device
    }

    /// The instance.
    pub fn instance(&self) -> &Instance {
        &self.0.instance
    }

    pub(crate) fn allocator(&self) -> MutexGuard<'_, Allocator> {
        self.0.allocator.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes rawrxd has allocated (the VRAM probe's own accounting).
    pub fn memory_stats(&self) -> MemoryStats {
        self.allocator().stats()
    }

    /// Heaps with live budget/usage (VK_EXT_memory_budget; `None` fields without it).
    pub fn memory_budget(&self) -> Vec<HeapInfo> {
        let caps = self.caps();
        if !caps.memory_budget {
            return caps.heaps.clone();
        }
        let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
        let mut mp2 = vk::PhysicalDeviceMemoryProperties2::default().push_next(&mut budget);
        // SAFETY: the physical device belongs to the instance and offers VK_EXT_memory_budget
        // (enabled on the device).
        unsafe {
            self.instance()
                .raw()
                .get_physical_device_memory_properties2(self.0.device.physical(), &mut mp2)
        };
        let heaps = &mp2.memory_properties.memory_heaps;
        (0..mp2.memory_properties.memory_heap_count as usize)
            .map(|i| HeapInfo {
                size: heaps[i].size,
                device_local: heaps[i].flags.contains(vk::MemoryHeapFlags::DEVICE_LOCAL),
                budget: Some(budget.heap_budget[i]),
                usage: Some(budget.heap_usage[i]),
            })
            .collect()
    }

    /// Removes and returns validation errors recorded so far.
    pub fn take_validation_errors(&self) -> Vec<String> {
        self.0.instance.take_validation_errors()
    }

    /// `Err(Validation)` when validation errors were recorded (they are consumed).
    pub fn check_validation(&self) -> VkResult<()> {
        let errs = self.take_validation_errors();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(VulkanError::Validation(errs))
        }
    }

    /// The kernel for `spec`, built on first use.
    pub fn kernel(&self, spec: &KernelSpec) -> VkResult<Arc<Kernel>> {
        self.0.pipelines.get(self.caps(), spec)
    }

    /// Kernels (pipelines) built so far: one per shader variant and specialization.
    pub fn kernels_built(&self) -> usize {
        self.0.pipelines.built()
    }

    /// Saves the pipeline cache now (it is also saved on close).
    pub fn save_pipeline_cache(&self) {
        self.0.pipelines.save();
    }

    /// Path of the persisted pipeline cache, when there is one.
    pub fn pipeline_cache_path(&self) -> Option<PathBuf> {
        self.0.pipelines.cache_path().cloned()
    }

    /// Allocates a buffer.
    pub fn buffer(&self, size: u64, class: MemoryClass) -> VkResult<GpuBuffer> {
        GpuBuffer::new(self, size, class)
    }

    /// Copies `data` into `dst` at `offset`: directly when `dst` is mapped, else through a staging
    /// buffer (in pieces of at most 32 MiB). Waits for completion.
    pub fn upload(&self, dst: &GpuBuffer, offset: u64, data: &[u8]) -> VkResult<()> {
        if dst.is_mapped() {
            return dst.write(offset, data);
        }
        if offset + data.len() as u64 > dst.size() {
            return Err(VulkanError::invalid(
                "upload",
                format!("{} bytes at {offset} past {}", data.len(), dst.size()),
            ));
        }
        const PIECE: usize = 32 << 20;
        let staging = self.buffer(data.len().min(PIECE) as u64, MemoryClass::Upload)?;
        let mut rec = Recorder::new(self, false)?;
        for (i, piece) in data.chunks(PIECE).enumerate() {
            staging.write(0, piece)?;
            rec.begin()?;
            let dst_range = dst.slice(offset + (i * PIECE) as u64, piece.len() as u64);
            rec.copy(staging.slice(0, piece.len() as u64), dst_range)?;
            rec.submit_wait()?;
        }
        Ok(())
    }

    /// Copies `out.len()` bytes of `src` at `offset` into `out`. Waits for completion.
    pub fn download(&self, src: &GpuBuffer, offset: u64, out: &mut [u8]) -> VkResult<()> {
        if src.is_mapped() {
            return src.read(offset, out);
        }
        self.download_range(src.slice(offset, out.len() as u64), out)
    }

    /// Copies the bytes of `src` (any range of a device buffer) into `out` through a readback buffer.
    pub fn download_range(&self, src: BufRange, out: &mut [u8]) -> VkResult<()> {
        if out.len() as u64 != src.size {
            return Err(VulkanError::invalid(
                "download",
                format!("{} bytes into {}", src.size, out.len()),
            ));
        }
        let rb = self.buffer(src.size, MemoryClass::Readback)?;
        let mut rec = Recorder::new(self, false)?;
        rec.begin()?;
        rec.copy(src, rb.range())?;
        rec.submit_wait()?;
        rb.read(0, out)
    }
}
