//! `DeviceCaps`: everything rawrxd needs to know about a physical device, read once.
//!
//! Each optional capability is an `Option`/flag whose doc names the extension and the core version
//! that promoted it. Kernel choice (workgroup sizes, variants) is plain Rust over this struct; the
//! subgroup size in particular is never assumed anywhere else.
//! Reading requires a device of API 1.2 or newer (`usable` is false and most fields default below).

use std::ffi::CStr;

use ash::vk;
use serde::Serialize;

use super::coopmat2::{self, CoopMat2Caps};
use super::instance::{version_string, Instance};

/// The kind of a physical device, in selection-preference order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A discrete GPU.
    Discrete,
    /// A GPU integrated with the CPU.
    Integrated,
    /// A virtualised GPU.
    Virtual,
    /// Something else.
    Other,
    /// A CPU implementation (lavapipe, SwiftShader).
    Cpu,
}

impl DeviceKind {
    fn from_vk(t: vk::PhysicalDeviceType) -> Self {
        match t {
            vk::PhysicalDeviceType::DISCRETE_GPU => DeviceKind::Discrete,
            vk::PhysicalDeviceType::INTEGRATED_GPU => DeviceKind::Integrated,
            vk::PhysicalDeviceType::VIRTUAL_GPU => DeviceKind::Virtual,
            vk::PhysicalDeviceType::CPU => DeviceKind::Cpu,
            _ => DeviceKind::Other,
        }
    }
}

/// Subgroup properties (core 1.1; size control from VK_EXT_subgroup_size_control, core 1.3).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SubgroupCaps {
    /// The default subgroup size for compute shaders.
    pub size: u32,
    /// Smallest / largest subgroup size a pipeline may require (size control), else `size`.
    pub min_size: u32,
    /// See `min_size`.
    pub max_size: u32,
    /// Subgroup operations are available in compute shaders.
    pub in_compute: bool,
    /// Supported operation classes ("basic", "arithmetic", "shuffle", ...).
    pub ops: Vec<&'static str>,
    /// A compute pipeline may require a subgroup size and full subgroups.
    pub size_control: bool,
    /// `computeFullSubgroups`: full subgroups can be required.
    pub full_subgroups: bool,
    /// `maxComputeWorkgroupSubgroups` with size control (a workgroup that requires its subgroup
    /// size holds at most this many subgroups), else 0 (no limit beyond the invocation limit).
    pub max_workgroup_subgroups: u32,
}

impl SubgroupCaps {
    /// True when `op` ("arithmetic", ...) is supported in compute shaders.
    pub fn has(&self, op: &str) -> bool {
        self.in_compute && self.ops.contains(&op)
    }
}

/// One cooperative-matrix shape (VK_KHR_cooperative_matrix, no core version yet).
#[derive(Clone, Debug, Serialize)]
pub struct CoopMatShape {
    /// Rows of A and C.
    pub m: u32,
    /// Columns of B and C.
    pub n: u32,
    /// Columns of A, rows of B.
    pub k: u32,
    /// Component types "a/b/c/result" as Vulkan names them (e.g. "FLOAT16/FLOAT16/FLOAT32/FLOAT32").
    pub types: String,
    /// Scope ("SUBGROUP", ...).
    pub scope: String,
}

impl CoopMatShape {
    /// A shape from its sizes (m, n, k), its component types (a, b, c, result) and scope, as the
    /// KHR and NV queries report them.
    fn new(mnk: [u32; 3], types: [&dyn std::fmt::Debug; 4], scope: &dyn std::fmt::Debug) -> Self {
        let [a, b, c, r] = types;
        CoopMatShape {
            m: mnk[0],
            n: mnk[1],
            k: mnk[2],
            types: format!("{a:?}/{b:?}/{c:?}/{r:?}"),
            scope: format!("{scope:?}"),
        }
    }
}

/// Integer dot product support (VK_KHR_shader_integer_dot_product, core 1.3).
#[derive(Clone, Debug, Default, Serialize)]
pub struct IntegerDotCaps {
    /// 4x8-bit packed signed dot product is hardware accelerated.
    pub packed_4x8_signed_accelerated: bool,
    /// 4x8-bit packed mixed-signedness dot product is hardware accelerated.
    pub packed_4x8_mixed_accelerated: bool,
}

/// Device limits rawrxd sizes its work by.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Limits {
    /// Largest range one storage-buffer binding may cover (lavapipe: 128 MiB).
    pub max_storage_buffer_range: u64,
    /// Shared memory per workgroup (lavapipe: 32 KiB).
    pub max_compute_shared_memory_size: u32,
    /// Largest workgroup in each dimension.
    pub max_workgroup_size: [u32; 3],
    /// Largest number of invocations in a workgroup.
    pub max_workgroup_invocations: u32,
    /// Largest dispatch in each dimension.
    pub max_workgroup_count: [u32; 3],
    /// Alignment of storage-buffer binding offsets.
    pub min_storage_buffer_offset_alignment: u64,
    /// Push-constant bytes.
    pub max_push_constants_size: u32,
    /// Largest single VkDeviceMemory allocation (core 1.1 maintenance3).
    pub max_memory_allocation_size: u64,
    /// Largest VkBuffer (core 1.3 maintenance4), or `max_memory_allocation_size` before 1.3.
    pub max_buffer_size: u64,
    /// Nanoseconds per timestamp tick.
    pub timestamp_period: f32,
    /// Valid timestamp bits on the compute queue (0: no timestamps).
    pub timestamp_valid_bits: u32,
}

/// A memory heap and, with VK_EXT_memory_budget, its budget and usage when caps were read.
#[derive(Clone, Debug, Serialize)]
pub struct HeapInfo {
    /// Heap size in bytes.
    pub size: u64,
    /// DEVICE_LOCAL heap.
    pub device_local: bool,
    /// Bytes this process may use (VK_EXT_memory_budget).
    pub budget: Option<u64>,
    /// Bytes this process uses (VK_EXT_memory_budget).
    pub usage: Option<u64>,
}

/// A memory type: its heap and property flags.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryTypeInfo {
    /// Index of its heap.
    pub heap: u32,
    /// `VkMemoryPropertyFlags` bits.
    pub flags: u32,
    /// The flags by name ("DEVICE_LOCAL | HOST_VISIBLE").
    pub flag_names: String,
}

/// What a physical device offers, read once by `DeviceCaps::read`.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceCaps {
    /// Index in the instance's physical-device enumeration.
    pub index: usize,
    /// Device name.
    pub name: String,
    /// Kind (discrete, integrated, virtual, cpu, other).
    pub kind: DeviceKind,
    /// PCI vendor id (0x10de NVIDIA, 0x1002 AMD, 0x8086 Intel, 0x10005 Mesa).
    pub vendor_id: u32,
    /// Vendor name derived from `vendor_id`.
    pub vendor: &'static str,
    /// PCI device id.
    pub device_id: u32,
    /// Device API version ("1.3.230").
    pub api_version: String,
    /// Packed device API version.
    #[serde(skip)]
    pub api_version_raw: u32,
    /// Driver name (core 1.2 driver properties).
    pub driver_name: String,
    /// Driver info string (version details).
    pub driver_info: String,
    /// Raw driver version (vendor-specific packing).
    pub driver_version: u32,
    /// Device UUID (keys the pipeline cache).
    pub device_uuid: String,
    /// Pipeline-cache UUID.
    pub pipeline_cache_uuid: String,
    /// True when rawrxd can run on it (API >= 1.2, compute queue, subgroup arithmetic in compute).
    pub usable: bool,
    /// Why not, when `usable` is false.
    pub unusable_reason: Option<String>,
    /// Index of the queue family used for compute.
    pub compute_queue_family: u32,
    /// Subgroup properties.
    pub subgroup: SubgroupCaps,
    /// `shaderFloat16` (VK_KHR_shader_float16_int8, core 1.2).
    pub shader_float16: bool,
    /// `shaderInt8` (VK_KHR_shader_float16_int8, core 1.2).
    pub shader_int8: bool,
    /// `shaderInt16` (core 1.0 feature).
    pub shader_int16: bool,
    /// `storageBuffer16BitAccess` (VK_KHR_16bit_storage, core 1.1).
    pub storage_buffer_16bit: bool,
    /// `storageBuffer8BitAccess` (VK_KHR_8bit_storage, core 1.2).
    pub storage_buffer_8bit: bool,
    /// Integer dot product (VK_KHR_shader_integer_dot_product, core 1.3), when the feature is on.
    pub integer_dot_product: Option<IntegerDotCaps>,
    /// Cooperative matrix shapes (VK_KHR_cooperative_matrix), when the extension and feature exist.
    pub cooperative_matrix: Option<Vec<CoopMatShape>>,
    /// Cooperative matrix shapes (VK_NV_cooperative_matrix), when the extension and its feature
    /// exist, together with the `vulkanMemoryModel` and `shaderFloat16` features its shaders need.
    pub cooperative_matrix_nv: Option<Vec<CoopMatShape>>,
    /// VK_NV_cooperative_matrix2 is offered (NVIDIA).
    pub cooperative_matrix2_nv: bool,
    /// What VK_NV_cooperative_matrix2 offers, when it is offered together with the
    /// `vulkanMemoryModel`, `shaderFloat16` and `storageBuffer16BitAccess` features its shaders
    /// need.
    pub cooperative_matrix2: Option<CoopMat2Caps>,
    /// VK_EXT_memory_budget is offered (heap budget/usage probes).
    pub memory_budget: bool,
    /// VK_KHR_pipeline_executable_properties is offered (compiler statistics per pipeline:
    /// registers, spills; enabled only for `RAWRXD_PIPELINE_STATS=1` runs).
    pub pipeline_executable_info: bool,
    /// Limits.
    pub limits: Limits,
    /// Memory heaps.
    pub heaps: Vec<HeapInfo>,
    /// Memory types.
    pub memory_types: Vec<MemoryTypeInfo>,
    /// Device extensions offered.
    pub extensions: Vec<String>,
}

fn vendor_name(id: u32) -> &'static str {
    match id {
        0x10de => "NVIDIA",
        0x1002 | 0x1022 => "AMD",
        0x8086 => "Intel",
        0x13b5 => "ARM",
        0x5143 => "Qualcomm",
        0x106b => "Apple",
        0x10005 => "Mesa",
        0x1010 => "ImgTec",
        _ => "unknown",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cstr(r: Result<&CStr, std::ffi::FromBytesUntilNulError>) -> String {
    r.map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn subgroup_op_names(f: vk::SubgroupFeatureFlags) -> Vec<&'static str> {
    let all = [
        (vk::SubgroupFeatureFlags::BASIC, "basic"),
        (vk::SubgroupFeatureFlags::VOTE, "vote"),
        (vk::SubgroupFeatureFlags::ARITHMETIC, "arithmetic"),
        (vk::SubgroupFeatureFlags::BALLOT, "ballot"),
        (vk::SubgroupFeatureFlags::SHUFFLE, "shuffle"),
        (
            vk::SubgroupFeatureFlags::SHUFFLE_RELATIVE,
            "shuffle_relative",
        ),
        (vk::SubgroupFeatureFlags::CLUSTERED, "clustered"),
        (vk::SubgroupFeatureFlags::QUAD, "quad"),
    ];
    all.iter()
        .filter(|(b, _)| f.contains(*b))
        .map(|(_, n)| *n)
        .collect()
}

/// "DEVICE_LOCAL | HOST_VISIBLE" for memory property flags.
pub fn memory_flag_names(f: vk::MemoryPropertyFlags) -> String {
    let all = [
        (vk::MemoryPropertyFlags::DEVICE_LOCAL, "DEVICE_LOCAL"),
        (vk::MemoryPropertyFlags::HOST_VISIBLE, "HOST_VISIBLE"),
        (vk::MemoryPropertyFlags::HOST_COHERENT, "HOST_COHERENT"),
        (vk::MemoryPropertyFlags::HOST_CACHED, "HOST_CACHED"),
        (
            vk::MemoryPropertyFlags::LAZILY_ALLOCATED,
            "LAZILY_ALLOCATED",
        ),
        (vk::MemoryPropertyFlags::PROTECTED, "PROTECTED"),
    ];
    let names: Vec<&str> = all
        .iter()
        .filter(|(b, _)| f.contains(*b))
        .map(|(_, n)| *n)
        .collect();
    names.join(" | ")
}

impl DeviceCaps {
    /// Reads the caps of physical device `pd` (enumeration index `index`).
    pub fn read(instance: &Instance, pd: vk::PhysicalDevice, index: usize) -> DeviceCaps {
        let raw = instance.raw();
        // SAFETY: `pd` was enumerated from this instance; these queries have no other preconditions.
        let props = unsafe { raw.get_physical_device_properties(pd) };
        // SAFETY: as above.
        let ext_props =
            unsafe { raw.enumerate_device_extension_properties(pd) }.unwrap_or_default();
        let extensions: Vec<String> = ext_props
            .iter()
            .map(|e| cstr(e.extension_name_as_c_str()))
            .collect();
        let has_ext = |n: &CStr| extensions.iter().any(|e| e.as_bytes() == n.to_bytes());
        // SAFETY: as above.
        let queues = unsafe { raw.get_physical_device_queue_family_properties(pd) };
        let compute_family = queues
            .iter()
            .position(|q| {
                q.queue_flags.contains(vk::QueueFlags::COMPUTE)
                    && !q.queue_flags.contains(vk::QueueFlags::GRAPHICS)
            })
            .or_else(|| {
                queues
                    .iter()
                    .position(|q| q.queue_flags.contains(vk::QueueFlags::COMPUTE))
            });

        let api = props.api_version;
        let l = &props.limits;
        let mut caps = DeviceCaps {
            index,
            name: cstr(props.device_name_as_c_str()),
            kind: DeviceKind::from_vk(props.device_type),
            vendor_id: props.vendor_id,
            vendor: vendor_name(props.vendor_id),
            device_id: props.device_id,
            api_version: version_string(api),
            api_version_raw: api,
            driver_name: String::new(),
            driver_info: String::new(),
            driver_version: props.driver_version,
            device_uuid: String::new(),
            pipeline_cache_uuid: hex(&props.pipeline_cache_uuid),
            usable: false,
            unusable_reason: None,
            compute_queue_family: compute_family.unwrap_or(0) as u32,
            subgroup: SubgroupCaps::default(),
            shader_float16: false,
            shader_int8: false,
            shader_int16: false,
            storage_buffer_16bit: false,
            storage_buffer_8bit: false,
            integer_dot_product: None,
            cooperative_matrix: None,
            cooperative_matrix_nv: None,
            cooperative_matrix2_nv: has_ext(coopmat2::NAME),
            cooperative_matrix2: None,
            memory_budget: has_ext(ash::ext::memory_budget::NAME),
            pipeline_executable_info: has_ext(ash::khr::pipeline_executable_properties::NAME),
            limits: Limits {
                max_storage_buffer_range: l.max_storage_buffer_range as u64,
                max_compute_shared_memory_size: l.max_compute_shared_memory_size,
                max_workgroup_size: l.max_compute_work_group_size,
                max_workgroup_invocations: l.max_compute_work_group_invocations,
                max_workgroup_count: l.max_compute_work_group_count,
                min_storage_buffer_offset_alignment: l.min_storage_buffer_offset_alignment,
                max_push_constants_size: l.max_push_constants_size,
                max_memory_allocation_size: 0,
                max_buffer_size: 0,
                timestamp_period: l.timestamp_period,
                timestamp_valid_bits: compute_family
                    .map(|i| queues[i].timestamp_valid_bits)
                    .unwrap_or(0),
            },
            heaps: Vec::new(),
            memory_types: Vec::new(),
            extensions,
        };
        caps.read_memory(instance, pd);
        if api < vk::API_VERSION_1_2 {
            caps.unusable_reason = Some(format!("Vulkan {} < 1.2", caps.api_version));
            return caps;
        }
        caps.read_12(instance, pd);
        caps.unusable_reason = if compute_family.is_none() {
            Some("no compute queue".into())
        } else if !caps.subgroup.has("arithmetic") {
            Some("no subgroup arithmetic in compute shaders".into())
        } else if caps.subgroup.size == 0 || caps.subgroup.size > 128 {
            Some(format!("unsupported subgroup size {}", caps.subgroup.size))
        } else {
            None
        };
        caps.usable = caps.unusable_reason.is_none();
        caps
    }

    fn read_memory(&mut self, instance: &Instance, pd: vk::PhysicalDevice) {
        let raw = instance.raw();
        let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
        let mut mp2 = vk::PhysicalDeviceMemoryProperties2::default();
        if self.memory_budget {
            mp2 = mp2.push_next(&mut budget);
        }
        // SAFETY: `pd` belongs to this instance; the budget struct is chained only when the
        // device offers VK_EXT_memory_budget.
        unsafe { raw.get_physical_device_memory_properties2(pd, &mut mp2) };
        let mp = mp2.memory_properties;
        let has_budget = self.memory_budget;
        self.heaps = (0..mp.memory_heap_count as usize)
            .map(|i| HeapInfo {
                size: mp.memory_heaps[i].size,
                device_local: mp.memory_heaps[i]
                    .flags
                    .contains(vk::MemoryHeapFlags::DEVICE_LOCAL),
                budget: has_budget.then_some(budget.heap_budget[i]),
                usage: has_budget.then_some(budget.heap_usage[i]),
            })
            .collect();
        self.memory_types = (0..mp.memory_type_count as usize)
            .map(|i| MemoryTypeInfo {
                heap: mp.memory_types[i].heap_index,
                flags: mp.memory_types[i].property_flags.as_raw(),
                flag_names: memory_flag_names(mp.memory_types[i].property_flags),
            })
            .collect();
    }

    fn read_12(&mut self, instance: &Instance, pd: vk::PhysicalDevice) {
        let raw = instance.raw();
        let api13 = self.api_version_raw >= vk::API_VERSION_1_3;
        let has_ext = |n: &CStr| self.extensions.iter().any(|e| e.as_bytes() == n.to_bytes());
        let size_control = api13 || has_ext(ash::ext::subgroup_size_control::NAME);
        let int_dot = api13 || has_ext(ash::khr::shader_integer_dot_product::NAME);
        let coopmat = has_ext(ash::khr::cooperative_matrix::NAME);
        let coopmat_nv = has_ext(ash::nv::cooperative_matrix::NAME);
        let coopmat2 = coopmat && has_ext(coopmat2::NAME);

        let mut p11 = vk::PhysicalDeviceVulkan11Properties::default();
        let mut p12 = vk::PhysicalDeviceVulkan12Properties::default();
        let mut psc = vk::PhysicalDeviceSubgroupSizeControlProperties::default();
        let mut pm4 = vk::PhysicalDeviceMaintenance4Properties::default();
        let mut pid = vk::PhysicalDeviceShaderIntegerDotProductProperties::default();
        let mut p2 = vk::PhysicalDeviceProperties2::default()
            .push_next(&mut p11)
            .push_next(&mut p12);
        if size_control {
            p2 = p2.push_next(&mut psc);
        }
        if api13 {
            p2 = p2.push_next(&mut pm4);
        }
        if int_dot {
            p2 = p2.push_next(&mut pid);
        }
        let mut pc2 = coopmat2::Properties::default();
        if coopmat2 {
            p2 = p2.push_next(&mut pc2);
        }
        // SAFETY: every chained struct belongs to the device's API version or an extension it offers.
        unsafe { raw.get_physical_device_properties2(pd, &mut p2) };

        let mut f11 = vk::PhysicalDeviceVulkan11Features::default();
        let mut f12 = vk::PhysicalDeviceVulkan12Features::default();
        let mut fsc = vk::PhysicalDeviceSubgroupSizeControlFeatures::default();
        let mut fid = vk::PhysicalDeviceShaderIntegerDotProductFeatures::default();
        let mut fcm = vk::PhysicalDeviceCooperativeMatrixFeaturesKHR::default();
        let mut fcn = vk::PhysicalDeviceCooperativeMatrixFeaturesNV::default();
        let mut f2 = vk::PhysicalDeviceFeatures2::default()
            .push_next(&mut f11)
            .push_next(&mut f12);
        if size_control {
            f2 = f2.push_next(&mut fsc);
        }
        if int_dot {
            f2 = f2.push_next(&mut fid);
        }
        if coopmat {
            f2 = f2.push_next(&mut fcm);
        }
        if coopmat_nv {
            f2 = f2.push_next(&mut fcn);
        }
        let mut fc2 = coopmat2::Features::default();
        if coopmat2 {
            f2 = f2.push_next(&mut fc2);
        }
        // SAFETY: as above.
        unsafe { raw.get_physical_device_features2(pd, &mut f2) };
        let f10 = f2.features;

        self.driver_name = cstr(p12.driver_name_as_c_str());
        self.driver_info = cstr(p12.driver_info_as_c_str());
        self.device_uuid = hex(&p11.device_uuid);
        self.limits.max_memory_allocation_size = p11.max_memory_allocation_size;
        self.limits.max_buffer_size = if api13 {
            pm4.max_buffer_size
        } else {
            p11.max_memory_allocation_size
        };
        let sc_ok = size_control
            && fsc.subgroup_size_control == vk::TRUE
            && psc
                .required_subgroup_size_stages
                .contains(vk::ShaderStageFlags::COMPUTE);
        self.subgroup = SubgroupCaps {
            size: p11.subgroup_size,
            min_size: if sc_ok {
                psc.min_subgroup_size
            } else {
                p11.subgroup_size
            },
            max_size: if sc_ok {
                psc.max_subgroup_size
            } else {
                p11.subgroup_size
            },
            in_compute: p11
                .subgroup_supported_stages
                .contains(vk::ShaderStageFlags::COMPUTE),
            ops: subgroup_op_names(p11.subgroup_supported_operations),
            size_control: sc_ok,
            full_subgroups: sc_ok && fsc.compute_full_subgroups == vk::TRUE,
            max_workgroup_subgroups: if sc_ok {
                psc.max_compute_workgroup_subgroups
            } else {
                0
            },
        };
        self.shader_float16 = f12.shader_float16 == vk::TRUE;
        self.shader_int8 = f12.shader_int8 == vk::TRUE;
        self.shader_int16 = f10.shader_int16 == vk::TRUE;
        self.storage_buffer_16bit = f11.storage_buffer16_bit_access == vk::TRUE;
        self.storage_buffer_8bit = f12.storage_buffer8_bit_access == vk::TRUE;
        if int_dot && fid.shader_integer_dot_product == vk::TRUE {
            self.integer_dot_product = Some(IntegerDotCaps {
                packed_4x8_signed_accelerated: pid
                    .integer_dot_product4x8_bit_packed_signed_accelerated
                    == vk::TRUE,
                packed_4x8_mixed_accelerated: pid
                    .integer_dot_product4x8_bit_packed_mixed_signedness_accelerated
                    == vk::TRUE,
            });
        }
        if coopmat_nv
            && fcn.cooperative_matrix == vk::TRUE
            && f12.vulkan_memory_model == vk::TRUE
            && f12.shader_float16 == vk::TRUE
        {
            self.cooperative_matrix_nv = Some(Self::nv_coopmat_shapes(instance, pd));
        }
        if coopmat2
            && f12.vulkan_memory_model == vk::TRUE
            && f12.shader_float16 == vk::TRUE
            && f11.storage_buffer16_bit_access == vk::TRUE
        {
            self.cooperative_matrix2 = Some(CoopMat2Caps::from_queried(
                &fc2,
                &pc2,
                fcm.cooperative_matrix == vk::TRUE,
            ));
        }
        if coopmat && fcm.cooperative_matrix == vk::TRUE {
            let loader = ash::khr::cooperative_matrix::Instance::new(instance.entry(), raw);
            // SAFETY: the device offers VK_KHR_cooperative_matrix; `pd` belongs to this instance.
            let shapes = unsafe { loader.get_physical_device_cooperative_matrix_properties(pd) }
                .unwrap_or_default();
            self.cooperative_matrix = Some(
                shapes
                    .iter()
                    .map(|s| {
                        CoopMatShape::new(
                            [s.m_size, s.n_size, s.k_size],
                            [&s.a_type, &s.b_type, &s.c_type, &s.result_type],
                            &s.scope,
                        )
                    })
                    .collect(),
            );
        }
    }

    /// NV cooperative-matrix shapes, through the raw entry point (ash 0.38 has no wrapper).
    fn nv_coopmat_shapes(instance: &Instance, pd: vk::PhysicalDevice) -> Vec<CoopMatShape> {
        let loader = ash::nv::cooperative_matrix::Instance::new(instance.entry(), instance.raw());
        let get = loader
            .fp()
            .get_physical_device_cooperative_matrix_properties_nv;
        let mut count = 0u32;
        // SAFETY: the device offers VK_NV_cooperative_matrix; a null array asks for the count.
        let r = unsafe { get(pd, &mut count, std::ptr::null_mut()) };
        if r != vk::Result::SUCCESS || count == 0 {
            return Vec::new();
        }
        let mut props = vec![vk::CooperativeMatrixPropertiesNV::default(); count as usize];
        // SAFETY: `props` holds `count` initialised structs (sType set by Default).
        let r = unsafe { get(pd, &mut count, props.as_mut_ptr()) };
        if r != vk::Result::SUCCESS && r != vk::Result::INCOMPLETE {
            return Vec::new();
        }
        props.truncate(count as usize);
        props
            .iter()
            .map(|s| {
                CoopMatShape::new(
                    [s.m_size, s.n_size, s.k_size],
                    [&s.a_type, &s.b_type, &s.c_type, &s.d_type],
                    &s.scope,
                )
            })
            .collect()
    }

    /// True when the NV extension lists the subgroup shape m x n x k with component types
    /// `types` ("a/b/c/result", as [`CoopMatShape::types`] names them).
    fn has_nv_subgroup_shape(&self, (m, n, k): (u32, u32, u32), types: &str) -> bool {
        self.cooperative_matrix_nv.as_ref().is_some_and(|shapes| {
            shapes.iter().any(|s| {
                s.m == m && s.n == n && s.k == k && s.types == types && s.scope == "SUBGROUP"
            })
        })
    }

    /// True when the NV cooperative-matrix path can run: the extension and features are there and
    /// the driver lists a 16x16x16 f16 x f16 -> f32 subgroup shape (what matmul_coopmat.comp uses)
    /// on 32-lane subgroups.
    pub fn nv_coopmat_f16_16x16(&self) -> bool {
        self.subgroup.size == 32
            && self.has_nv_subgroup_shape((16, 16, 16), "FLOAT16/FLOAT16/FLOAT32/FLOAT32")
    }

    /// True when batched products can run on integer tensor-core tiles (matmul_q8.comp): the
    /// NV extension offers the 16x8x32 signed 8-bit shape with 32-bit sums for subgroups of
    /// 32, next to the f16 shape that enables the extension, and 8-bit shader integers.
    pub fn nv_coopmat_s8_16x8x32(&self) -> bool {
        self.nv_coopmat_f16_16x16()
            && self.shader_int8
            && self.has_nv_subgroup_shape((16, 8, 32), "SINT8/SINT8/SINT32/SINT32")
    }

    /// True when matmul_cm2.comp's workgroup-scope products can run with workgroups of `wg`
    /// lanes and tiles up to `dim` on a side (VK_NV_cooperative_matrix2 and what it needs).
    pub fn nv_coopmat2(&self, wg: u32, dim: u32) -> bool {
        self.cooperative_matrix2
            .as_ref()
            .is_some_and(|c| c.usable(wg, dim))
    }

    /// True when the extension `name` is offered.
    pub fn has_extension(&self, name: &CStr) -> bool {
        self.extensions
            .iter()
            .any(|e| e.as_bytes() == name.to_bytes())
    }

    /// Total bytes of device-local heaps.
    pub fn device_local_bytes(&self) -> u64 {
        self.heaps
            .iter()
            .filter(|h| h.device_local)
            .map(|h| h.size)
            .sum()
    }
}
