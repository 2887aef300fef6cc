//! `GpuBuffer`: an RAII sub-allocation, and `BufRange`, a plain (buffer, offset, size) view of one.
//!
//! Invariants: a `GpuBuffer` keeps its context alive and returns its range on drop; host access
//! (`write`, `read`) is only for mapped (host-visible) buffers and must not race GPU work on the
//! same bytes (every rawrxd submission is waited for before the host touches its buffers).

use ash::vk;

use super::context::Gpu;
use super::error::{VkResult, VulkanError};
use super::memory::{Allocation, MemoryClass};

/// A byte range of a Vulkan buffer, as bound to a descriptor or named in a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufRange {
    /// The buffer.
    pub buffer: vk::Buffer,
    /// Start, in bytes.
    pub offset: u64,
    /// Length, in bytes.
    pub size: u64,
}

impl BufRange {
    /// True when the two ranges share a byte.
    pub fn overlaps(&self, o: &BufRange) -> bool {
        self.buffer == o.buffer
            && self.offset < o.offset + o.size
            && o.offset < self.offset + self.size
    }

    /// The sub-range `[offset, offset + size)` of this range.
    pub fn sub(&self, offset: u64, size: u64) -> BufRange {
        debug_assert!(
            offset + size <= self.size,
            "sub-range {offset}+{size} past {}",
            self.size
        );
        BufRange {
            buffer: self.buffer,
            offset: self.offset + offset,
            size,
        }
    }
}

/// A sub-allocated buffer.
pub struct GpuBuffer {
    gpu: Gpu,
    alloc: Allocation,
    size: u64,
    class: MemoryClass,
}

impl GpuBuffer {
    /// Allocates `size` bytes of `class` memory.
    pub fn new(gpu: &Gpu, size: u64, class: MemoryClass) -> VkResult<Self> {
        let alloc = gpu.allocator().alloc(size, class)?;
        Ok(GpuBuffer {
            gpu: gpu.clone(),
            alloc,
            size,
            class,
        })
    }

    /// Requested size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Memory class.
    pub fn class(&self) -> MemoryClass {
        self.class
    }

    /// The whole buffer as a range.
    pub fn range(&self) -> BufRange {
        BufRange {
            buffer: self.alloc.buffer,
            offset: self.alloc.offset,
            size: self.size,
        }
    }

    /// `[offset, offset + size)` of the buffer.
    pub fn slice(&self, offset: u64, size: u64) -> BufRange {
        self.range().sub(offset, size)
    }

    /// True when the host can read and write it directly.
    pub fn is_mapped(&self) -> bool {
        self.alloc.mapped.is_some()
    }

    /// Copies `data` into the mapped buffer at `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) -> VkResult<()> {
        let p = self.check_host(offset, data.len())?;
        // SAFETY: `check_host` proved the range lies inside this allocation's mapping; no GPU work
        // on it is pending (module invariant); `data` cannot overlap device memory.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// Copies from the mapped buffer at `offset` into `out`.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> VkResult<()> {
        let p = self.check_host(offset, out.len())?;
        // SAFETY: as in `write`.
        unsafe { std::ptr::copy_nonoverlapping(p as *const u8, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    fn check_host(&self, offset: u64, len: usize) -> VkResult<*mut u8> {
        let p = self
            .alloc
            .mapped
            .ok_or_else(|| VulkanError::invalid("host access", "buffer is not host-visible"))?;
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(VulkanError::invalid(
                "host access",
                format!("{len} bytes at {offset} past a {}-byte buffer", self.size),
            ));
        }
        // SAFETY: offset < size <= mapped length (checked above).
        Ok(unsafe { p.as_ptr().add(offset as usize) })
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.gpu.allocator().free(&self.alloc);
    }
}
