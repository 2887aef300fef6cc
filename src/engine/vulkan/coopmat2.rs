//! VK_NV_cooperative_matrix2: the feature and property structs ash 0.38 (Vulkan 1.3.281
//! headers) predates, declared here from the Vulkan registry, and what rawrxd reads of them.
//!
//! Invariants: the two structs are `#[repr(C)]` with `s_type` and `p_next` first and their
//! registry `VkStructureType` values (1000593000, 1000593002), so ash's `push_next` may chain
//! them; a [`CoopMat2Caps`] exists only when the device offers the extension, and
//! [`CoopMat2Caps::usable`] is true only when every feature `matmul_cm2.comp` uses is on.

use ash::vk;
use serde::Serialize;
use std::ffi::{c_void, CStr};

/// The extension's name.
pub const NAME: &CStr = c"VK_NV_cooperative_matrix2";

/// The largest workgroup of matmul_cm2.comp's tiles (build.rs `CM2_SHAPES`), lanes.
pub const MAX_WORKGROUP: u32 = 128;

/// The longest side of matmul_cm2.comp's tiles (its "m" tile's 128 rows and tokens).
pub const MAX_DIMENSION: u32 = 128;

/// `VkPhysicalDeviceCooperativeMatrix2FeaturesNV`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Features {
    pub s_type: vk::StructureType,
    pub p_next: *mut c_void,
    pub workgroup_scope: vk::Bool32,
    pub flexible_dimensions: vk::Bool32,
    pub reductions: vk::Bool32,
    pub conversions: vk::Bool32,
    pub per_element_operations: vk::Bool32,
    pub tensor_addressing: vk::Bool32,
    pub block_loads: vk::Bool32,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            s_type: vk::StructureType::from_raw(1_000_593_000),
            p_next: std::ptr::null_mut(),
            workgroup_scope: vk::FALSE,
            flexible_dimensions: vk::FALSE,
            reductions: vk::FALSE,
            conversions: vk::FALSE,
            per_element_operations: vk::FALSE,
            tensor_addressing: vk::FALSE,
            block_loads: vk::FALSE,
        }
    }
}

// SAFETY: `Features` is the registry's VkPhysicalDeviceCooperativeMatrix2FeaturesNV, a structure
// that extends VkPhysicalDeviceFeatures2 and VkDeviceCreateInfo: repr(C), sType and pNext first.
unsafe impl vk::ExtendsPhysicalDeviceFeatures2 for Features {}
// SAFETY: as above.
unsafe impl vk::ExtendsDeviceCreateInfo for Features {}

/// `VkPhysicalDeviceCooperativeMatrix2PropertiesNV`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Properties {
    pub s_type: vk::StructureType,
    pub p_next: *mut c_void,
    pub workgroup_scope_max_workgroup_size: u32,
    pub flexible_dimensions_max_dimension: u32,
    pub workgroup_scope_reserved_shared_memory: u32,
}

impl Default for Properties {
    fn default() -> Self {
        Properties {
            s_type: vk::StructureType::from_raw(1_000_593_002),
            p_next: std::ptr::null_mut(),
            workgroup_scope_max_workgroup_size: 0,
            flexible_dimensions_max_dimension: 0,
            workgroup_scope_reserved_shared_memory: 0,
        }
    }
}

// SAFETY: `Properties` is the registry's VkPhysicalDeviceCooperativeMatrix2PropertiesNV, which
// extends VkPhysicalDeviceProperties2: repr(C), sType and pNext first.
unsafe impl vk::ExtendsPhysicalDeviceProperties2 for Properties {}

/// What the device offers of VK_NV_cooperative_matrix2.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CoopMat2Caps {
    /// `cooperativeMatrixWorkgroupScope`.
    pub workgroup_scope: bool,
    /// `cooperativeMatrixFlexibleDimensions`.
    pub flexible_dimensions: bool,
    /// `cooperativeMatrixTensorAddressing`.
    pub tensor_addressing: bool,
    /// `cooperativeMatrixBlockLoads`.
    pub block_loads: bool,
    /// Largest workgroup that may use workgroup-scope matrices.
    pub max_workgroup_size: u32,
    /// Largest flexible dimension.
    pub max_dimension: u32,
    /// Shared memory the driver keeps for workgroup-scope matrices, bytes.
    pub reserved_shared_memory: u32,
    /// VK_KHR_cooperative_matrix's `cooperativeMatrix` feature is on (the extension builds on it).
    pub khr_cooperative_matrix: bool,
}

impl CoopMat2Caps {
    /// Reads the caps from queried structs.
    pub fn from_queried(f: &Features, p: &Properties, khr_cooperative_matrix: bool) -> Self {
        CoopMat2Caps {
            workgroup_scope: f.workgroup_scope == vk::TRUE,
            flexible_dimensions: f.flexible_dimensions == vk::TRUE,
            tensor_addressing: f.tensor_addressing == vk::TRUE,
            block_loads: f.block_loads == vk::TRUE,
            max_workgroup_size: p.workgroup_scope_max_workgroup_size,
            max_dimension: p.flexible_dimensions_max_dimension,
            reserved_shared_memory: p.workgroup_scope_reserved_shared_memory,
            khr_cooperative_matrix,
        }
    }

    /// True when matmul_cm2.comp can run: workgroup scope for workgroups of `wg` lanes,
    /// flexible dimensions up to `dim`, tensor addressing, and the KHR feature beneath.
    pub fn usable(&self, wg: u32, dim: u32) -> bool {
        self.khr_cooperative_matrix
            && self.workgroup_scope
            && self.flexible_dimensions
            && self.tensor_addressing
            && self.max_workgroup_size >= wg
            && self.max_dimension >= dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered() -> CoopMat2Caps {
        CoopMat2Caps {
            workgroup_scope: true,
            flexible_dimensions: true,
            tensor_addressing: true,
            block_loads: true,
            max_workgroup_size: 256,
            max_dimension: 1024,
            reserved_shared_memory: 0,
            khr_cooperative_matrix: true,
        }
    }

    /// Every feature matmul_cm2.comp uses, and both limits, gate the path; block loads (which it
    /// does not use) do not.
    #[test]
    fn usable_needs_every_feature_and_limit() {
        assert!(offered().usable(MAX_WORKGROUP, MAX_DIMENSION));
        assert!(CoopMat2Caps {
            block_loads: false,
            ..offered()
        }
        .usable(MAX_WORKGROUP, MAX_DIMENSION));
        let lacking = [
            CoopMat2Caps {
                workgroup_scope: false,
                ..offered()
            },
            CoopMat2Caps {
                flexible_dimensions: false,
                ..offered()
            },
            CoopMat2Caps {
                tensor_addressing: false,
                ..offered()
            },
            CoopMat2Caps {
                khr_cooperative_matrix: false,
                ..offered()
            },
            CoopMat2Caps {
                max_workgroup_size: 64,
                ..offered()
            },
            CoopMat2Caps {
                max_dimension: 64,
                ..offered()
            },
        ];
        for c in lacking {
            assert!(!c.usable(MAX_WORKGROUP, MAX_DIMENSION), "{c:?}");
        }
        assert!(!CoopMat2Caps::default().usable(1, 1));
    }

    /// The structs carry the registry's structure types and the registry's layout (sType, pNext,
    /// then 32-bit members), so a driver reads and writes the members it means.
    #[test]
    fn structs_match_the_registry() {
        assert_eq!(Features::default().s_type.as_raw(), 1_000_593_000);
        assert_eq!(Properties::default().s_type.as_raw(), 1_000_593_002);
        // sType (4 bytes, padded to a pointer) and pNext, then the 32-bit members in order.
        let ptr = std::mem::size_of::<*mut c_void>();
        let head = 2 * ptr;
        assert_eq!(std::mem::offset_of!(Features, workgroup_scope), head);
        assert_eq!(
            std::mem::offset_of!(Features, tensor_addressing),
            head + 5 * 4
        );
        assert_eq!(std::mem::offset_of!(Features, block_loads), head + 6 * 4);
        assert_eq!(
            std::mem::size_of::<Features>(),
            (head + 7 * 4).next_multiple_of(ptr)
        );
        assert_eq!(
            std::mem::offset_of!(Properties, workgroup_scope_reserved_shared_memory),
            head + 2 * 4
        );
        assert_eq!(
            std::mem::size_of::<Properties>(),
            (head + 3 * 4).next_multiple_of(ptr)
        );
    }
}
