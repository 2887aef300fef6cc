//! Sub-allocated device memory: large `VkDeviceMemory` chunks, each bound to one `VkBuffer`
//! covering it whole, carved into aligned ranges by a first-fit free list.
//!
//! Invariants: every range handed out lies inside one chunk, is aligned to `ALIGN` (which covers
//! every storage-buffer offset alignment and non-coherent atom size in practice) and is returned
//! exactly once (`GpuBuffer` frees on drop). A chunk with nothing allocated is released at once,
//! so `reserved_bytes` tracks what rawrxd really holds. Host-visible chunks are mapped for their
//! whole life. The allocator is used under the context's lock.

use std::collections::BTreeMap;

use ash::vk;

use super::caps::DeviceCaps;
use super::error::{VkResult, VulkanError};

/// Alignment of every sub-allocation.
pub const ALIGN: u64 = 256;
/// Default chunk size.
const CHUNK: u64 = 256 << 20;
/// Chunk size for host-visible staging/readback memory.
const SMALL_CHUNK: u64 = 32 << 20;

/// What a buffer is for, which decides its memory type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryClass {
    /// Device-local: weights, KV cache, activations.
    Device,
    /// Host-visible and coherent, device-local if possible: small buffers the host writes often.
    Upload,
    /// Host-visible and coherent, host-cached if possible: results the host reads.
    Readback,
}

impl MemoryClass {
    const ALL: [MemoryClass; 3] = [
        MemoryClass::Device,
        MemoryClass::Upload,
        MemoryClass::Readback,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One allocated range.
#[derive(Debug)]
pub struct Allocation {
    /// Chunk id inside the allocator.
    chunk: usize,
    /// The chunk's buffer.
    pub buffer: vk::Buffer,
    /// Offset of the range in the buffer.
    pub offset: u64,
    /// Size of the range (rounded up to `ALIGN`).
    pub size: u64,
    /// Host pointer to the range when its memory is mapped.
    pub mapped: Option<std::ptr::NonNull<u8>>,
    /// The memory type's flags.
    pub flags: vk::MemoryPropertyFlags,
}

// SAFETY: the mapped pointer refers to memory that lives as long as the chunk, which the
// allocator keeps until the allocation is freed; access is coordinated by the owner.
unsafe impl Send for Allocation {}
// SAFETY: as above; shared access only reads the pointer value.
unsafe impl Sync for Allocation {}

struct Chunk {
    memory: vk::DeviceMemory,
    buffer: vk::Buffer,
    size: u64,
    mapped: Option<std::ptr::NonNull<u8>>,
    flags: vk::MemoryPropertyFlags,
    class: MemoryClass,
    /// Free ranges: offset -> size, coalesced.
    free: BTreeMap<u64, u64>,
    used: u64,
}

// SAFETY: chunks are only touched under the allocator's owner's lock.
unsafe impl Send for Chunk {}

/// Byte counts, for the VRAM probes.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct MemoryStats {
    /// Bytes handed out in sub-allocations (all classes).
    pub allocated_bytes: u64,
    /// Bytes of VkDeviceMemory held in chunks (all classes).
    pub reserved_bytes: u64,
    /// Device-class bytes handed out.
    pub device_allocated_bytes: u64,
    /// Number of chunks.
    pub chunks: usize,
    /// Largest `allocated_bytes` seen.
    pub peak_allocated_bytes: u64,
}

/// The chunk allocator.
pub struct Allocator {
    device: ash::Device,
    type_flags: Vec<vk::MemoryPropertyFlags>,
    max_chunk: u64,
    chunks: Vec<Option<Chunk>>,
    stats: MemoryStats,
}

impl Allocator {
    /// An empty allocator for `device`.
    pub fn new(device: ash::Device, caps: &DeviceCaps) -> Self {
        let type_flags = caps
            .memory_types
            .iter()
            .map(|t| vk::MemoryPropertyFlags::from_raw(t.flags))
            .collect();
        let max_chunk = caps
            .limits
            .max_memory_allocation_size
            .min(caps.limits.max_buffer_size)
            .max(ALIGN);
        Allocator {
            device,
            type_flags,
            max_chunk,
            chunks: Vec::new(),
            stats: MemoryStats::default(),
        }
    }

    /// Current byte counts.
    pub fn stats(&self) -> MemoryStats {
        self.stats
    }

    /// Memory types allowed by `bits`, best first for `class`.
    fn candidates(&self, bits: u32, class: MemoryClass) -> Vec<u32> {
        use vk::MemoryPropertyFlags as F;
        let mut c: Vec<(i32, u32)> = Vec::new();
        for (i, f) in self.type_flags.iter().enumerate() {
            if bits & (1 << i) == 0 {
                continue;
            }
            let score = match class {
                MemoryClass::Device => {
                    let mut s = if f.contains(F::DEVICE_LOCAL) { 100 } else { 0 };
                    if !f.contains(F::HOST_VISIBLE) {
                        s += 10;
                    }
                    s
                }
                MemoryClass::Upload | MemoryClass::Readback => {
                    if !f.contains(F::HOST_VISIBLE | F::HOST_COHERENT) {
                        continue;
                    }
                    let mut s = 100;
                    if class == MemoryClass::Upload && f.contains(F::DEVICE_LOCAL) {
                        s += 10;
                    }
                    if class == MemoryClass::Readback && f.contains(F::HOST_CACHED) {
                        s += 10;
                    }
                    s
                }
            };
            c.push((-score, i as u32));
        }
        c.sort();
        c.into_iter().map(|(_, i)| i).collect()
    }

    fn new_chunk(&mut self, size: u64, class: MemoryClass) -> VkResult<usize> {
        let usage = vk::BufferUsageFlags::STORAGE_BUFFER
            | vk::BufferUsageFlags::TRANSFER_SRC
            | vk::BufferUsageFlags::TRANSFER_DST;
        let info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        // SAFETY: valid device and create info.
        let buffer = unsafe { self.device.create_buffer(&info, None) }
            .map_err(VulkanError::map("vkCreateBuffer"))?;
        // SAFETY: the buffer was just created on this device.
        let req = unsafe { self.device.get_buffer_memory_requirements(buffer) };
        let mut last_err = VulkanError::OutOfDeviceMemory {
            call: "vkAllocateMemory",
        };
        for ty in self.candidates(req.memory_type_bits, class) {
            let ai = vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(ty);
            // SAFETY: valid device, allocation info within the device's limits (size checked by the caller).
            let memory = match unsafe { self.device.allocate_memory(&ai, None) } {
                Ok(m) => m,
                Err(e) => {
                    last_err = VulkanError::from_vk("vkAllocateMemory", e);
                    continue;
                }
            };
            // SAFETY: memory and buffer are fresh, the memory type is allowed by the buffer's
            // requirements and the memory is at least req.size bytes.
            if let Err(e) = unsafe { self.device.bind_buffer_memory(buffer, memory, 0) } {
                // SAFETY: not bound, not in use.
                unsafe { self.device.free_memory(memory, None) };
                last_err = VulkanError::from_vk("vkBindBufferMemory", e);
                continue;
            }
            let flags = self.type_flags[ty as usize];
            let mapped = if flags.contains(vk::MemoryPropertyFlags::HOST_VISIBLE) {
                // SAFETY: host-visible memory, mapped once for the chunk's life.
                let p = unsafe {
                    self.device
                        .map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
                }
                .map_err(VulkanError::map("vkMapMemory"));
                match p {
                    Ok(p) => std::ptr::NonNull::new(p as *mut u8),
                    Err(e) => {
                        // SAFETY: not in use.
                        unsafe {
                            self.device.destroy_buffer(buffer, None);
                            self.device.free_memory(memory, None);
                        }
                        return Err(e);
                    }
                }
            } else {
                None
            };
            let mut free = BTreeMap::new();
            free.insert(0, size);
            let chunk = Chunk {
                memory,
                buffer,
                size,
                mapped,
                flags,
                class,
                free,
                used: 0,
            };
            self.stats.reserved_bytes += size;
            self.stats.chunks += 1;
            let slot = self.chunks.iter().position(Option::is_none);
            return Ok(match slot {
                Some(i) => {
                    self.chunks[i] = Some(chunk);
                    i
                }
                None => {
                    self.chunks.push(Some(chunk));
                    self.chunks.len() - 1
                }
            });
        }
        // SAFETY: no memory bound, not in use.
        unsafe { self.device.destroy_buffer(buffer, None) };
        Err(last_err)
    }

    /// Allocates `size` bytes (rounded up to `ALIGN`) of `class` memory.
    pub fn alloc(&mut self, size: u64, class: MemoryClass) -> VkResult<Allocation> {
        let size = size.max(1).div_ceil(ALIGN) * ALIGN;
        if size > self.max_chunk {
            return Err(VulkanError::unsupported(format!(
                "a single buffer of {size} bytes (the device allows {} per allocation)",
                self.max_chunk
            )));
        }
        let found = self.chunks.iter().enumerate().find_map(|(i, c)| {
            let c = c.as_ref()?;
            if c.class != class {
                return None;
            }
            c.free
                .iter()
                .find(|(_, &len)| len >= size)
                .map(|(&off, _)| (i, off))
        });
        let (ci, off) = match found {
            Some(x) => x,
            None => {
                let base = if class == MemoryClass::Device {
                    CHUNK
                } else {
                    SMALL_CHUNK
                };
                let ci = self.new_chunk(size.max(base).min(self.max_chunk), class)?;
                (ci, 0)
            }
        };
        let chunk = self.chunks[ci]
            .as_mut()
            .expect("chunk index from a live chunk");
        let len = chunk.free.remove(&off).expect("free range found above");
        if len > size {
            chunk.free.insert(off + size, len - size);
        }
        chunk.used += size;
        self.stats.allocated_bytes += size;
        if class == MemoryClass::Device {
            self.stats.device_allocated_bytes += size;
        }
        self.stats.peak_allocated_bytes = self
            .stats
            .peak_allocated_bytes
            .max(self.stats.allocated_bytes);
        Ok(Allocation {
            chunk: ci,
            buffer: chunk.buffer,
            offset: off,
            size,
            // SAFETY: `off + size <= chunk.size`, inside the mapping.
            mapped: chunk.mapped.map(|p| unsafe { p.add(off as usize) }),
            flags: chunk.flags,
        })
    }

    /// Returns a range; releases its chunk when that empties it.
    pub fn free(&mut self, a: &Allocation) {
        let Some(chunk) = self.chunks.get_mut(a.chunk).and_then(Option::as_mut) else {
            log::error!("freeing an allocation of unknown chunk {}", a.chunk);
            return;
        };
        let (mut off, mut size) = (a.offset, a.size);
        if let Some((&poff, &psize)) = chunk.free.range(..off).next_back() {
            if poff + psize == off {
                chunk.free.remove(&poff);
                off = poff;
                size += psize;
            }
        }
        if let Some(&nsize) = chunk.free.get(&(a.offset + a.size)) {
            chunk.free.remove(&(a.offset + a.size));
            size += nsize;
        }
        chunk.free.insert(off, size);
        chunk.used -= a.size;
        self.stats.allocated_bytes -= a.size;
        if chunk.class == MemoryClass::Device {
            self.stats.device_allocated_bytes -= a.size;
        }
        if chunk.used == 0 {
            let chunk = self.chunks[a.chunk].take().expect("checked above");
            self.stats.reserved_bytes -= chunk.size;
            self.stats.chunks -= 1;
            self.destroy_chunk(chunk);
        }
    }

    fn destroy_chunk(&self, chunk: Chunk) {
        // SAFETY: nothing is allocated from the chunk any more and the owner waits for the device
        // to be idle before freeing memory a submission may use.
        unsafe {
            self.device.destroy_buffer(chunk.buffer, None);
            self.device.free_memory(chunk.memory, None);
        }
    }

    /// Classes for which chunks are held (for diagnostics).
    pub fn classes_held(&self) -> Vec<MemoryClass> {
        MemoryClass::ALL
            .into_iter()
            .filter(|c| {
                self.chunks
                    .iter()
                    .flatten()
                    .any(|ch| ch.class.index() == c.index())
            })
            .collect()
    }
}

impl Drop for Allocator {
    fn drop(&mut self) {
        let chunks: Vec<Chunk> = self.chunks.drain(..).flatten().collect();
        if !chunks.is_empty() {
            log::warn!(
                "{} memory chunk(s) still allocated when the Vulkan context closed",
                chunks.len()
            );
        }
        for c in chunks {
            self.destroy_chunk(c);
        }
    }
}
