//! The Vulkan backend's typed error, and the mapping from `VkResult` codes into it.
//!
//! Each mapping helper turns exactly the failure codes a Vulkan call is documented to return into
//! a variant that says what went wrong; an undocumented code is kept verbatim in `Unexpected`,
//! never folded into a blanket "Vulkan error". Converted into `rawrxd::Error` with `#[from]`.

use ash::vk;

/// What can go wrong in the Vulkan backend.
#[derive(Debug, thiserror::Error)]
pub enum VulkanError {
    /// The Vulkan loader library could not be opened or lacks its entry points.
    #[error(
        "Vulkan is not available: {0}. Install a Vulkan loader and driver \
         (Debian/Ubuntu: apt-get install libvulkan1 mesa-vulkan-drivers; NVIDIA: the driver's Vulkan ICD)"
    )]
    Loader(String),
    /// VK_ERROR_OUT_OF_HOST_MEMORY.
    #[error("out of host memory in {call}")]
    OutOfHostMemory { call: &'static str },
    /// VK_ERROR_OUT_OF_DEVICE_MEMORY (or a sub-allocation that cannot fit in any heap).
    #[error("out of device memory in {call}")]
    OutOfDeviceMemory { call: &'static str },
    /// VK_ERROR_DEVICE_LOST: the device hung or was reset; the context cannot be used any more.
    #[error("device lost in {call}")]
    DeviceLost { call: &'static str },
    /// VK_ERROR_INITIALIZATION_FAILED.
    #[error("initialization failed in {call}")]
    InitializationFailed { call: &'static str },
    /// VK_ERROR_INCOMPATIBLE_DRIVER: the driver does not support the requested API version.
    #[error("incompatible Vulkan driver in {call}")]
    IncompatibleDriver { call: &'static str },
    /// A layer, extension or feature rawrxd needs (or was asked to enable) is missing.
    #[error("unsupported: {what}")]
    Unsupported { what: String },
    /// No physical device matched the selection.
    #[error("no Vulkan device: {0}")]
    NoDevice(String),
    /// A fence or query wait ran out of time.
    #[error("timed out waiting in {call}")]
    Timeout { call: &'static str },
    /// A shader variant the build did not produce (e.g. an optional extension was unavailable).
    #[error("shader variant '{0}' is not in this build")]
    MissingShader(String),
    /// A shape or size the kernels cannot handle.
    #[error("invalid {what}: {msg}")]
    Invalid { what: &'static str, msg: String },
    /// The validation layer reported errors (tests treat any as a failure).
    #[error("Vulkan validation reported {} error(s); first: {}", .0.len(), .0.first().map(String::as_str).unwrap_or(""))]
    Validation(Vec<String>),
    /// Any code the call is not documented to return.
    #[error("{call} returned unexpected {code:?}")]
    Unexpected {
        call: &'static str,
        code: vk::Result,
    },
}

/// Result alias of the Vulkan backend.
pub type VkResult<T> = std::result::Result<T, VulkanError>;

impl VulkanError {
    /// Maps a failure code of `call` to its variant. Covers the codes the calls rawrxd makes are
    /// documented to return (out of host/device memory, device lost, initialization failed,
    /// missing layer/extension/feature, incompatible driver, too many objects, pool exhaustion,
    /// timeout); anything else is `Unexpected`.
    pub fn from_vk(call: &'static str, code: vk::Result) -> Self {
        match code {
            vk::Result::ERROR_OUT_OF_HOST_MEMORY => VulkanError::OutOfHostMemory { call },
            vk::Result::ERROR_OUT_OF_DEVICE_MEMORY
            | vk::Result::ERROR_OUT_OF_POOL_MEMORY
            | vk::Result::ERROR_FRAGMENTED_POOL
            | vk::Result::ERROR_TOO_MANY_OBJECTS => VulkanError::OutOfDeviceMemory { call },
            vk::Result::ERROR_DEVICE_LOST => VulkanError::DeviceLost { call },
            vk::Result::ERROR_INITIALIZATION_FAILED => VulkanError::InitializationFailed { call },
            vk::Result::ERROR_INCOMPATIBLE_DRIVER => VulkanError::IncompatibleDriver { call },
            vk::Result::ERROR_LAYER_NOT_PRESENT => VulkanError::Unsupported {
                what: format!("a requested layer ({call})"),
            },
            vk::Result::ERROR_EXTENSION_NOT_PRESENT => VulkanError::Unsupported {
                what: format!("a requested extension ({call})"),
            },
            vk::Result::ERROR_FEATURE_NOT_PRESENT => VulkanError::Unsupported {
                what: format!("a requested device feature ({call})"),
            },
            vk::Result::TIMEOUT => VulkanError::Timeout { call },
            code => VulkanError::Unexpected { call, code },
        }
    }

    /// A closure for `map_err` that maps the codes of `call`.
    pub fn map(call: &'static str) -> impl Fn(vk::Result) -> VulkanError {
        move |code| VulkanError::from_vk(call, code)
    }

    /// Shorthand for `Unsupported`.
    pub fn unsupported(what: impl Into<String>) -> Self {
        VulkanError::Unsupported { what: what.into() }
    }

    /// Shorthand for `Invalid`.
    pub fn invalid(what: &'static str, msg: impl Into<String>) -> Self {
        VulkanError::Invalid {
            what,
            msg: msg.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_map_to_their_variants() {
        assert!(matches!(
            VulkanError::from_vk("vkAllocateMemory", vk::Result::ERROR_OUT_OF_DEVICE_MEMORY),
            VulkanError::OutOfDeviceMemory {
                call: "vkAllocateMemory"
            }
        ));
        assert!(matches!(
            VulkanError::from_vk("vkQueueSubmit", vk::Result::ERROR_DEVICE_LOST),
            VulkanError::DeviceLost { .. }
        ));
        assert!(matches!(
            VulkanError::from_vk("vkCreateInstance", vk::Result::ERROR_LAYER_NOT_PRESENT),
            VulkanError::Unsupported { .. }
        ));
        let e = VulkanError::from_vk("vkFoo", vk::Result::ERROR_SURFACE_LOST_KHR);
        assert!(e.to_string().contains("vkFoo"), "{e}");
    }
}
