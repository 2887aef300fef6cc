//! Compute pipelines built from the embedded SPIR-V, a persisted pipeline cache, and a cache of
//! descriptor sets keyed by the buffer ranges they bind.
//!
//! Invariants: every kernel's set 0 holds `bindings` storage buffers at bindings 0..n and its
//! push constants are `push_size` bytes, mirrored by a `#[repr(C)]` struct in kernels/. Pipelines
//! live until the context closes (`Pipelines` destroys them); descriptor sets live as long as
//! their `DescriptorCache` (owned by whoever owns the buffers they name).
//! The pipeline cache file is keyed by device UUID and driver version and is only fed back to a
//! driver whose header (vendor, device, cache UUID) matches.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ash::vk;

use super::buffer::BufRange;
use super::caps::DeviceCaps;
use super::context::Gpu;
use super::error::{VkResult, VulkanError};
use super::shaders;

/// A ready compute pipeline.
#[derive(Debug)]
pub struct Kernel {
    /// Shader variant name.
    pub name: &'static str,
    /// The pipeline.
    pub pipeline: vk::Pipeline,
    /// Its layout.
    pub layout: vk::PipelineLayout,
    /// Layout of descriptor set 0.
    pub set_layout: vk::DescriptorSetLayout,
    /// Number of storage-buffer bindings.
    pub bindings: u32,
    /// Push-constant bytes.
    pub push_size: u32,
    /// Workgroup size in x (specialization constant 0, or the shader's fixed size).
    pub local_size: u32,
}

/// How to build a kernel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelSpec {
    /// Shader variant name.
    pub variant: String,
    /// Storage-buffer bindings.
    pub bindings: u32,
    /// Push-constant bytes.
    pub push_size: u32,
    /// Specialization constants by id (id 0 is the workgroup size when the shader uses
    /// `local_size_x_id = 0`); empty for fixed-size shaders.
    pub spec: Vec<u32>,
    /// Workgroup size in x (informational for fixed-size shaders).
    pub local_size: u32,
    /// Require the device's subgroup size and full subgroups (shaders using subgroup operations).
    pub subgroup_sized: bool,
}

/// Pipeline cache plus every pipeline built so far.
pub struct Pipelines {
    device: ash::Device,
    cache: vk::PipelineCache,
    cache_path: Option<PathBuf>,
    kernels: Mutex<HashMap<KernelSpec, Arc<Kernel>>>,
    /// Set for `RAWRXD_PIPELINE_STATS=1` runs: each pipeline's compiler statistics are logged.
    stats: Option<ash::khr::pipeline_executable_properties::Device>,
}

/// Vulkan's pipeline cache header (version one), checked before reusing cache data.
fn header_matches(data: &[u8], caps: &DeviceCaps, vendor: u32, device: u32) -> bool {
    if data.len() < 32 {
        return false;
    }
    let u = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let uuid: String = data[16..32].iter().map(|b| format!("{b:02x}")).collect();
    u(4) == 1 && u(8) == vendor && u(12) == device && uuid == caps.pipeline_cache_uuid
}

/// Where pipeline caches go: `$RAWRXD_CACHE_DIR`, else `$XDG_CACHE_HOME/rawrxd`, else
/// `$HOME/.cache/rawrxd`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("RAWRXD_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("rawrxd"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("rawrxd"))
}

impl Pipelines {
    /// Creates the pipeline cache, seeded from `cache_dir` when a matching file exists.
    pub fn new(
        device: ash::Device,
        caps: &DeviceCaps,
        cache_dir: Option<PathBuf>,
        stats: Option<ash::khr::pipeline_executable_properties::Device>,
    ) -> VkResult<Self> {
        let cache_path = cache_dir.map(|d| {
            d.join(format!(
                "pipelines-{}-{:08x}.bin",
                caps.device_uuid, caps.driver_version
            ))
        });
        let initial = cache_path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .filter(|d| header_matches(d, caps, caps.vendor_id, caps.device_id))
            .unwrap_or_default();
        let info = vk::PipelineCacheCreateInfo::default().initial_data(&initial);
        // SAFETY: valid device; the initial data's header matches this device (checked above) or is empty.
        let cache = match unsafe { device.create_pipeline_cache(&info, None) } {
            Ok(c) => c,
            Err(_) if !initial.is_empty() => {
                let info = vk::PipelineCacheCreateInfo::default();
                // SAFETY: as above, with no initial data.
                unsafe { device.create_pipeline_cache(&info, None) }
                    .map_err(VulkanError::map("vkCreatePipelineCache"))?
            }
            Err(e) => return Err(VulkanError::from_vk("vkCreatePipelineCache", e)),
        };
        Ok(Pipelines {
            device,
            cache,
            cache_path,
            kernels: Mutex::new(HashMap::new()),
            stats,
        })
    }

    /// Writes the pipeline cache to its file (best effort; failures are logged).
    pub fn save(&self) {
        let Some(path) = &self.cache_path else { return };
        // SAFETY: the cache belongs to this device.
        let data = match unsafe { self.device.get_pipeline_cache_data(self.cache) } {
            Ok(d) => d,
            Err(e) => {
                log::warn!("reading the pipeline cache failed: {e:?}");
                return;
            }
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &data)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            log::warn!(
                "saving the pipeline cache to {} failed: {e}",
                path.display()
            );
        }
    }

    /// Path of the persisted cache file, when there is one.
    pub fn cache_path(&self) -> Option<&PathBuf> {
        self.cache_path.as_ref()
    }

    /// Kernels built so far.
    pub fn built(&self) -> usize {
        self.kernels.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The kernel for `spec`, built on first use.
    pub fn get(&self, caps: &DeviceCaps, spec: &KernelSpec) -> VkResult<Arc<Kernel>> {
        let mut map = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = map.get(spec) {
            return Ok(k.clone());
        }
        let k = Arc::new(self.build(caps, spec)?);
        map.insert(spec.clone(), k.clone());
        Ok(k)
    }

    fn build(&self, caps: &DeviceCaps, spec: &KernelSpec) -> VkResult<Kernel> {
        let variant = shaders::find(&spec.variant)
            .ok_or_else(|| VulkanError::MissingShader(spec.variant.clone()))?;
        let words = ash::util::read_spv(&mut std::io::Cursor::new(variant.spirv))
            .map_err(|e| VulkanError::invalid("SPIR-V", format!("{}: {e}", variant.name)))?;
        let d = &self.device;
        let module_info = vk::ShaderModuleCreateInfo::default().code(&words);
        // SAFETY: valid device; `words` is SPIR-V produced by glslc at build time.
        let module = unsafe { d.create_shader_module(&module_info, None) }
            .map_err(VulkanError::map("vkCreateShaderModule"))?;

        let bindings: Vec<vk::DescriptorSetLayoutBinding> = (0..spec.bindings)
            .map(|i| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(i)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        let set_info = vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings);
        // SAFETY: valid device and create info.
        let set_layout = unsafe { d.create_descriptor_set_layout(&set_info, None) }
            .map_err(VulkanError::map("vkCreateDescriptorSetLayout"));
        let set_layout = match set_layout {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: the module is unused.
                unsafe { d.destroy_shader_module(module, None) };
                return Err(e);
            }
        };
        let ranges = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::COMPUTE)
            .offset(0)
            .size(spec.push_size)];
        let set_layouts = [set_layout];
        let mut layout_info = vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts);
        if spec.push_size > 0 {
            layout_info = layout_info.push_constant_ranges(&ranges);
        }
        // SAFETY: valid device and create info.
        let layout = unsafe { d.create_pipeline_layout(&layout_info, None) };
        let layout = match layout {
            Ok(l) => l,
            Err(e) => {
                // SAFETY: unused objects.
                unsafe {
                    d.destroy_descriptor_set_layout(set_layout, None);
                    d.destroy_shader_module(module, None);
                }
                return Err(VulkanError::from_vk("vkCreatePipelineLayout", e));
            }
        };

        let entries: Vec<vk::SpecializationMapEntry> = (0..spec.spec.len() as u32)
            .map(|i| {
                vk::SpecializationMapEntry::default()
                    .constant_id(i)
                    .offset(i * 4)
                    .size(4)
            })
            .collect();
        let spec_bytes: Vec<u8> = spec.spec.iter().flat_map(|v| v.to_le_bytes()).collect();
        let spec_info = vk::SpecializationInfo::default()
            .map_entries(&entries)
            .data(&spec_bytes);
        let mut req = vk::PipelineShaderStageRequiredSubgroupSizeCreateInfo::default()
            .required_subgroup_size(caps.subgroup.size);
        let mut stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(module)
            .name(c"main");
        if !spec.spec.is_empty() {
            stage = stage.specialization_info(&spec_info);
        }
        let pin = spec.subgroup_sized
            && caps.subgroup.size_control
            && caps.subgroup.size >= caps.subgroup.min_size
            && caps.subgroup.size <= caps.subgroup.max_size;
        if pin {
            stage = stage.push_next(&mut req);
            if caps.subgroup.full_subgroups && spec.local_size % caps.subgroup.size == 0 {
                stage = stage.flags(vk::PipelineShaderStageCreateFlags::REQUIRE_FULL_SUBGROUPS);
            }
        }
        let mut info = vk::ComputePipelineCreateInfo::default()
            .stage(stage)
            .layout(layout);
        if self.stats.is_some() {
            info = info.flags(vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR);
        }
        // SAFETY: valid device, cache, layout and module; the stage's chained structs are
        // supported (size control checked in caps) and alive across the call.
        let res = unsafe { d.create_compute_pipelines(self.cache, &[info], None) };
        // SAFETY: the module is no longer needed once the pipeline is created (or failed).
        unsafe { d.destroy_shader_module(module, None) };
        let pipeline = match res {
            Ok(p) => p[0],
            Err((_, e)) => {
                // SAFETY: unused objects.
                unsafe {
                    d.destroy_pipeline_layout(layout, None);
                    d.destroy_descriptor_set_layout(set_layout, None);
                }
                return Err(VulkanError::from_vk("vkCreateComputePipelines", e));
            }
        };
        if let Some(ext) = &self.stats {
            log_statistics(ext, pipeline, variant.name, &spec.spec);
        }
        Ok(Kernel {
            name: variant.name,
            pipeline,
            layout,
            set_layout,
            bindings: spec.bindings,
            push_size: spec.push_size,
            local_size: spec.local_size,
        })
    }
}

/// Logs the compiler's statistics of each executable of `pipeline` (VK_KHR_pipeline_executable_
/// properties: on NVIDIA registers per invocation, spills, shared memory) as one info line.
fn log_statistics(
    ext: &ash::khr::pipeline_executable_properties::Device,
    pipeline: vk::Pipeline,
    name: &str,
    spec: &[u32],
) {
    let info = vk::PipelineInfoKHR::default().pipeline(pipeline);
    // SAFETY: the pipeline was just created with CAPTURE_STATISTICS on this device.
    let execs = match unsafe { ext.get_pipeline_executable_properties(&info) } {
        Ok(e) => e,
        Err(e) => {
            log::warn!("pipeline statistics of {name}: {e:?}");
            return;
        }
    };
    for i in 0..execs.len() as u32 {
        let ei = vk::PipelineExecutableInfoKHR::default()
            .pipeline(pipeline)
            .executable_index(i);
        // SAFETY: as above; `i` is below the executable count just read.
        let stats = match unsafe { ext.get_pipeline_executable_statistics(&ei) } {
            Ok(s) => s,
            Err(e) => {
                log::warn!("pipeline statistics of {name}: {e:?}");
                continue;
            }
        };
        let line: Vec<String> = stats
            .iter()
            .map(|s| {
                let n = s
                    .name_as_c_str()
                    .map_or("?".into(), |c| c.to_string_lossy());
                // SAFETY: the union member read is the one `format` names.
                let v = unsafe {
                    match s.format {
                        vk::PipelineExecutableStatisticFormatKHR::BOOL32 => s.value.b32.to_string(),
                        vk::PipelineExecutableStatisticFormatKHR::INT64 => s.value.i64.to_string(),
                        vk::PipelineExecutableStatisticFormatKHR::UINT64 => s.value.u64.to_string(),
                        _ => format!("{:.1}", s.value.f64),
                    }
                };
                format!("{n}={v}")
            })
            .collect();
        log::info!("pipeline stats {name} spec {spec:?}: {}", line.join(", "));
    }
}

impl Drop for Pipelines {
    fn drop(&mut self) {
        self.save();
        let map = std::mem::take(&mut *self.kernels.lock().unwrap_or_else(|p| p.into_inner()));
        // SAFETY: the context waited for the device to go idle before dropping pipelines; each
        // object is destroyed once.
        unsafe {
            for k in map.values() {
                self.device.destroy_pipeline(k.pipeline, None);
                self.device.destroy_pipeline_layout(k.layout, None);
                self.device
                    .destroy_descriptor_set_layout(k.set_layout, None);
            }
            self.device.destroy_pipeline_cache(self.cache, None);
        }
    }
}

/// Descriptor sets keyed by (set layout, bound ranges), allocated from growing pools.
pub struct DescriptorCache {
    gpu: Gpu,
    pools: Vec<vk::DescriptorPool>,
    sets: HashMap<(vk::DescriptorSetLayout, Vec<BufRange>), vk::DescriptorSet>,
}

const SETS_PER_POOL: u32 = 512;
const MAX_BINDINGS: u32 = 8;

impl DescriptorCache {
    /// An empty cache.
    pub fn new(gpu: &Gpu) -> Self {
        DescriptorCache {
            gpu: gpu.clone(),
            pools: Vec::new(),
            sets: HashMap::new(),
        }
    }

    /// Number of sets allocated.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// True when no set was allocated.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    fn new_pool(&mut self) -> VkResult<()> {
        let sizes = [vk::DescriptorPoolSize::default()
            .ty(vk::DescriptorType::STORAGE_BUFFER)
            .descriptor_count(SETS_PER_POOL * MAX_BINDINGS)];
        let info = vk::DescriptorPoolCreateInfo::default()
            .max_sets(SETS_PER_POOL)
            .pool_sizes(&sizes);
        // SAFETY: valid device and create info.
        let pool = unsafe { self.gpu.device().create_descriptor_pool(&info, None) }
            .map_err(VulkanError::map("vkCreateDescriptorPool"))?;
        self.pools.push(pool);
        Ok(())
    }

    /// The set binding `ranges` (in binding order) for `kernel`, written on first use.
    pub fn get(&mut self, kernel: &Kernel, ranges: &[BufRange]) -> VkResult<vk::DescriptorSet> {
        if ranges.len() != kernel.bindings as usize {
            return Err(VulkanError::invalid(
                "bindings",
                format!(
                    "{} expects {} buffers, got {}",
                    kernel.name,
                    kernel.bindings,
                    ranges.len()
                ),
            ));
        }
        let max = self.gpu.caps().limits.max_storage_buffer_range;
        let align = self
            .gpu
            .caps()
            .limits
            .min_storage_buffer_offset_alignment
            .max(1);
        for r in ranges {
            if r.size > max || r.offset % align != 0 || r.size == 0 {
                return Err(VulkanError::invalid(
                    "binding",
                    format!(
                        "{}: range at {} of {} bytes (limit {max}, alignment {align})",
                        kernel.name, r.offset, r.size
                    ),
                ));
            }
        }
        let key = (kernel.set_layout, ranges.to_vec());
        if let Some(s) = self.sets.get(&key) {
            return Ok(*s);
        }
        if self.pools.is_empty() {
            self.new_pool()?;
        }
        let layouts = [kernel.set_layout];
        let set = loop {
            let pool = *self.pools.last().expect("a pool was created above");
            let info = vk::DescriptorSetAllocateInfo::default()
                .descriptor_pool(pool)
                .set_layouts(&layouts);
            // SAFETY: valid pool and layout from this device.
            match unsafe { self.gpu.device().allocate_descriptor_sets(&info) } {
                Ok(s) => break s[0],
                Err(vk::Result::ERROR_OUT_OF_POOL_MEMORY | vk::Result::ERROR_FRAGMENTED_POOL) => {
                    self.new_pool()?
                }
                Err(e) => return Err(VulkanError::from_vk("vkAllocateDescriptorSets", e)),
            }
        };
        let infos: Vec<[vk::DescriptorBufferInfo; 1]> = ranges
            .iter()
            .map(|r| {
                [vk::DescriptorBufferInfo::default()
                    .buffer(r.buffer)
                    .offset(r.offset)
                    .range(r.size)]
            })
            .collect();
        let writes: Vec<vk::WriteDescriptorSet> = infos
            .iter()
            .enumerate()
            .map(|(i, info)| {
                vk::WriteDescriptorSet::default()
                    .dst_set(set)
                    .dst_binding(i as u32)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .buffer_info(info)
            })
            .collect();
        // SAFETY: the set is fresh and not in use; ranges were checked against the limits.
        unsafe { self.gpu.device().update_descriptor_sets(&writes, &[]) };
        self.sets.insert(key, set);
        Ok(set)
    }
}

impl Drop for DescriptorCache {
    fn drop(&mut self) {
        // SAFETY: command buffers using these sets have completed (every submission is waited
        // for) and are not submitted again after their owner drops this cache.
        unsafe {
            for p in self.pools.drain(..) {
                self.gpu.device().destroy_descriptor_pool(p, None);
            }
        }
    }
}
