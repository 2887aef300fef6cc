//! Physical-device enumeration and selection, and the logical device with its compute queue.
//!
//! Selection order: an explicit index, else a name substring, else the best usable device by kind
//! (discrete, integrated, virtual, other) — a CPU implementation (lavapipe) only when it is the
//! only usable device or CPU devices are allowed.
//! Invariants: `Device` owns the `ash::Device` and destroys it on drop after waiting for idle;
//! the queue is used under a lock (Vulkan requires external synchronisation of queue access).

use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;

use super::caps::{DeviceCaps, DeviceKind};
use super::coopmat2;
use super::error::{VkResult, VulkanError};
use super::instance::Instance;

/// A physical device and its caps.
pub struct Adapter {
    /// The Vulkan handle.
    pub physical: vk::PhysicalDevice,
    /// What it offers.
    pub caps: DeviceCaps,
}

/// Lists every physical device with its caps, in enumeration order.
pub fn enumerate(instance: &Instance) -> VkResult<Vec<Adapter>> {
    // SAFETY: the instance is valid for the duration of the call.
    let pds = unsafe { instance.raw().enumerate_physical_devices() }
        .map_err(VulkanError::map("vkEnumeratePhysicalDevices"))?;
    Ok(pds
        .into_iter()
        .enumerate()
        .map(|(i, pd)| Adapter {
            physical: pd,
            caps: DeviceCaps::read(instance, pd, i),
        })
        .collect())
}

/// Which device to use.
#[derive(Clone, Debug, Default)]
pub struct DeviceSelector {
    /// Enumeration index (as `rawrxd devices` lists them).
    pub index: Option<usize>,
    /// Case-insensitive substring of the device name.
    pub name: Option<String>,
    /// Consider CPU implementations (lavapipe) even when a GPU exists.
    pub allow_cpu: bool,
}

impl DeviceSelector {
    /// From a user string: a number is an index, anything else a name substring.
    pub fn parse(s: &str) -> Self {
        match s.trim().parse::<usize>() {
            Ok(i) => DeviceSelector {
                index: Some(i),
                name: None,
                allow_cpu: true,
            },
            Err(_) => DeviceSelector {
                index: None,
                name: Some(s.trim().to_string()),
                allow_cpu: true,
            },
        }
    }

    /// From `RAWRXD_VULKAN_DEVICE` (index or name substring), else the default choice.
    pub fn from_env() -> Self {
        match std::env::var("RAWRXD_VULKAN_DEVICE") {
            Ok(s) if !s.trim().is_empty() => Self::parse(&s),
            _ => DeviceSelector::default(),
        }
    }

    /// The chosen adapter's position in `adapters`.
    pub fn select(&self, adapters: &[Adapter]) -> VkResult<usize> {
        let usable = |a: &Adapter| {
            if a.caps.usable {
                Ok(())
            } else {
                Err(VulkanError::NoDevice(format!(
                    "device {} '{}' cannot run rawrxd: {}",
                    a.caps.index,
                    a.caps.name,
                    a.caps.unusable_reason.as_deref().unwrap_or("unknown")
                )))
            }
        };
        if adapters.is_empty() {
            return Err(VulkanError::NoDevice(
                "the Vulkan loader found no physical device (is a driver/ICD installed? Debian: apt-get install \
                 mesa-vulkan-drivers)"
                    .into(),
            ));
        }
        if let Some(i) = self.index {
            let a = adapters.get(i).ok_or_else(|| {
                VulkanError::NoDevice(format!(
                    "device index {i} out of range ({} devices)",
                    adapters.len()
                ))
            })?;
            usable(a)?;
            return Ok(i);
        }
        if let Some(name) = &self.name {
            let needle = name.to_lowercase();
            let i = adapters
                .iter()
                .position(|a| a.caps.name.to_lowercase().contains(&needle))
                .ok_or_else(|| {
                    VulkanError::NoDevice(format!("no device name contains '{name}'"))
                })?;
            usable(&adapters[i])?;
            return Ok(i);
        }
        let mut candidates: Vec<usize> = (0..adapters.len())
            .filter(|&i| adapters[i].caps.usable)
            .collect();
        if candidates.is_empty() {
            usable(&adapters[0])?;
        }
        candidates.sort_by_key(|&i| (adapters[i].caps.kind, i));
        let only_cpu = candidates
            .iter()
            .all(|&i| adapters[i].caps.kind == DeviceKind::Cpu);
        candidates
            .into_iter()
            .find(|&i| self.allow_cpu || only_cpu || adapters[i].caps.kind != DeviceKind::Cpu)
            .ok_or_else(|| VulkanError::NoDevice("no usable device".into()))
    }
}

/// A logical device with one compute queue.
pub struct Device {
    raw: ash::Device,
    queue: Mutex<vk::Queue>,
    physical: vk::PhysicalDevice,
    caps: DeviceCaps,
    /// VK_KHR_pipeline_executable_properties, enabled for `RAWRXD_PIPELINE_STATS=1` runs.
    pipeline_stats: Option<ash::khr::pipeline_executable_properties::Device>,
    instance: Arc<Instance>,
}

/// Whether `RAWRXD_PIPELINE_STATS=1` asks for the compiler's statistics of every pipeline
/// (logged at info level as each is built; a tuning aid).
pub fn pipeline_stats_wanted() -> bool {
    std::env::var("RAWRXD_PIPELINE_STATS").is_ok_and(|v| v.trim() == "1")
}

impl Device {
    /// Creates the logical device for `adapter`, enabling what rawrxd uses and the device offers.
    pub fn new(instance: Arc<Instance>, adapter: &Adapter) -> VkResult<Self> {
        let caps = adapter.caps.clone();
        let api13 = caps.api_version_raw >= vk::API_VERSION_1_3;
        let prio = [1.0f32];
        let queue_info = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(caps.compute_queue_family)
            .queue_priorities(&prio)];
        let mut ext_names = Vec::new();
        if caps.memory_budget {
            ext_names.push(ash::ext::memory_budget::NAME.as_ptr());
        }
        if caps.subgroup.size_control && !api13 {
            ext_names.push(ash::ext::subgroup_size_control::NAME.as_ptr());
        }
        // The tensor-core matmul (matmul_coopmat.comp) needs the NV extension, its feature, the
        // Vulkan memory model (glslang emits it for cooperative matrices) and f16 arithmetic.
        let coopmat_nv = caps.nv_coopmat_f16_16x16();
        if coopmat_nv {
            ext_names.push(ash::nv::cooperative_matrix::NAME.as_ptr());
        }
        let mut fcn =
            vk::PhysicalDeviceCooperativeMatrixFeaturesNV::default().cooperative_matrix(coopmat_nv);
        // The workgroup-scope product (matmul_cm2.comp) needs VK_NV_cooperative_matrix2 on
        // VK_KHR_cooperative_matrix, their features, and 16-bit storage for its f16 buffers.
        let cm2 = caps.nv_coopmat2(coopmat2::MAX_WORKGROUP, coopmat2::MAX_DIMENSION);
        if cm2 {
            ext_names.push(ash::khr::cooperative_matrix::NAME.as_ptr());
            ext_names.push(coopmat2::NAME.as_ptr());
        }
        let mut fcm =
            vk::PhysicalDeviceCooperativeMatrixFeaturesKHR::default().cooperative_matrix(cm2);
        let mut fc2 = coopmat2::Features {
            workgroup_scope: vk::Bool32::from(cm2),
            flexible_dimensions: vk::Bool32::from(cm2),
            tensor_addressing: vk::Bool32::from(cm2),
            ..Default::default()
        };
        let mut f11 =
            vk::PhysicalDeviceVulkan11Features::default().storage_buffer16_bit_access(cm2);
        let f16_shaders = coopmat_nv || cm2;
        let mut f12 = vk::PhysicalDeviceVulkan12Features::default()
            .vulkan_memory_model(f16_shaders)
            .shader_float16(f16_shaders)
            .shader_int8(caps.nv_coopmat_s8_16x8x32());
        // Integer dot products (matvec_q8.comp) are enabled on Vulkan 1.3 devices that have them.
        let int_dot = api13 && caps.integer_dot_product.is_some();
        let mut f13 = vk::PhysicalDeviceVulkan13Features::default()
            .shader_integer_dot_product(int_dot)
            .subgroup_size_control(caps.subgroup.size_control)
            .compute_full_subgroups(caps.subgroup.full_subgroups);
        let mut fsc = vk::PhysicalDeviceSubgroupSizeControlFeatures::default()
            .subgroup_size_control(caps.subgroup.size_control)
            .compute_full_subgroups(caps.subgroup.full_subgroups);
        let stats = caps.pipeline_executable_info && pipeline_stats_wanted();
        if stats {
            ext_names.push(ash::khr::pipeline_executable_properties::NAME.as_ptr());
        }
        let mut fpe = vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default()
            .pipeline_executable_info(stats);
        let mut info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_info)
            .enabled_extension_names(&ext_names);
        if stats {
            info = info.push_next(&mut fpe);
        }
        if coopmat_nv {
            info = info.push_next(&mut fcn);
        }
        if cm2 {
            info = info
                .push_next(&mut fcm)
                .push_next(&mut fc2)
                .push_next(&mut f11);
        }
        if f16_shaders {
            info = info.push_next(&mut f12);
        }
        if api13 {
            info = info.push_next(&mut f13);
        } else if caps.subgroup.size_control {
            info = info.push_next(&mut fsc);
        }
        // SAFETY: the physical device belongs to `instance`; every enabled extension/feature was
        // reported as supported in `caps`; all pointers refer to locals alive across the call.
        let raw = unsafe { instance.raw().create_device(adapter.physical, &info, None) }
            .map_err(VulkanError::map("vkCreateDevice"))?;
        // SAFETY: queue 0 of the family was requested in `queue_info`.
        let queue = unsafe { raw.get_device_queue(caps.compute_queue_family, 0) };
        let pipeline_stats = stats
            .then(|| ash::khr::pipeline_executable_properties::Device::new(instance.raw(), &raw));
        Ok(Device {
            raw,
            pipeline_stats,
            queue: Mutex::new(queue),
            physical: adapter.physical,
            caps,
            instance,
        })
    }

    /// The ash device.
    pub fn raw(&self) -> &ash::Device {
        &self.raw
    }

    /// The caps of its physical device.
    pub fn caps(&self) -> &DeviceCaps {
        &self.caps
    }

    /// The pipeline statistics functions, when enabled (`RAWRXD_PIPELINE_STATS=1` and offered).
    pub fn pipeline_stats(&self) -> Option<&ash::khr::pipeline_executable_properties::Device> {
        self.pipeline_stats.as_ref()
    }

    /// The physical device.
    pub fn physical(&self) -> vk::PhysicalDevice {
        self.physical
    }

    /// The instance it was created from.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// The compute queue, locked for submission.
    pub fn queue(&self) -> MutexGuard<'_, vk::Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the device is idle.
    pub fn wait_idle(&self) -> VkResult<()> {
        let _q = self.queue();
        // SAFETY: the queue lock is held, so no submission races the wait.
        unsafe { self.raw.device_wait_idle() }.map_err(VulkanError::map("vkDeviceWaitIdle"))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: every child object (memory, buffers, pipelines, pools) is destroyed by its owner
        // before the device (they keep the context alive through an Arc); the device is destroyed
        // once, after it went idle.
        unsafe {
            let _ = self.raw.device_wait_idle();
            self.raw.destroy_device(None);
        }
    }
}
