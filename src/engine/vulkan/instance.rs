//! The Vulkan instance: loader (opened at run time), optional validation layer, debug messenger.
//!
//! Invariants: `Instance` owns the `ash::Instance`; it is destroyed after its debug messenger and
//! after every device created from it (devices hold an `Arc` to their instance's owner).
//! A machine without libvulkan gets `VulkanError::Loader`, never a crash.

use std::ffi::{c_char, CStr};

use ash::vk;

use super::debug::{DebugMessenger, DebugSink};
use super::error::{VkResult, VulkanError};

const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// Whether to enable the Khronos validation layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Validation {
    /// No validation (production).
    #[default]
    Off,
    /// Validation when the layer is installed, silently none otherwise.
    IfAvailable,
    /// Validation or an `Unsupported` error (tests).
    Required,
}

/// How to create the instance.
#[derive(Clone, Copy, Debug, Default)]
pub struct InstanceOptions {
    /// Validation layer policy.
    pub validation: Validation,
    /// Also enable the layer's synchronization validation (catches missing barriers; slower).
    pub sync_validation: bool,
}

impl InstanceOptions {
    /// Options from the environment: `RAWRXD_VULKAN_VALIDATION` = `0`/unset (off), `1` (if
    /// available), `2` (required), `sync` (required, with synchronization validation).
    pub fn from_env() -> Self {
        match std::env::var("RAWRXD_VULKAN_VALIDATION").as_deref() {
            Ok("1") => InstanceOptions {
                validation: Validation::IfAvailable,
                sync_validation: false,
            },
            Ok("2") => InstanceOptions {
                validation: Validation::Required,
                sync_validation: false,
            },
            Ok("sync") => InstanceOptions {
                validation: Validation::Required,
                sync_validation: true,
            },
            _ => InstanceOptions::default(),
        }
    }
}

/// A Vulkan instance with its loader and (when validating) debug messenger.
pub struct Instance {
    debug: Option<DebugMessenger>,
    raw: ash::Instance,
    entry: ash::Entry,
    api_version: u32,
}

impl Instance {
    /// Opens libvulkan and creates an instance (API version min(loader, 1.3)).
    pub fn new(opts: InstanceOptions) -> VkResult<Self> {
        // SAFETY: loading the system Vulkan loader runs its initialisers; it is the documented way
        // to use the `loaded` feature, and a missing library is reported as an error.
        let entry =
            unsafe { ash::Entry::load() }.map_err(|e| VulkanError::Loader(e.to_string()))?;
        // SAFETY: the entry is valid; vkEnumerateInstanceVersion has no other preconditions.
        let loader_version = unsafe { entry.try_enumerate_instance_version() }
            .map_err(VulkanError::map("vkEnumerateInstanceVersion"))?
            .unwrap_or(vk::API_VERSION_1_0);
        if loader_version < vk::API_VERSION_1_2 {
            return Err(VulkanError::unsupported(format!(
                "Vulkan 1.2 (the loader provides {})",
                version_string(loader_version)
            )));
        }
        let api_version = loader_version.min(vk::API_VERSION_1_3);

        // SAFETY: the entry is valid; enumerating layers/extensions has no other preconditions.
        let layers = unsafe { entry.enumerate_instance_layer_properties() }
            .map_err(VulkanError::map("vkEnumerateInstanceLayerProperties"))?;
        let has_layer = layers
            .iter()
            .any(|l| l.layer_name_as_c_str().is_ok_and(|n| n == VALIDATION_LAYER));
        // SAFETY: as above.
        let exts = unsafe { entry.enumerate_instance_extension_properties(None) }
            .map_err(VulkanError::map("vkEnumerateInstanceExtensionProperties"))?;
        let has_ext = |name: &CStr| {
            exts.iter()
                .any(|e| e.extension_name_as_c_str().is_ok_and(|n| n == name))
        };

        let validate = match opts.validation {
            Validation::Off => false,
            Validation::IfAvailable => has_layer,
            Validation::Required if !has_layer => {
                return Err(VulkanError::unsupported(
                    "the Khronos validation layer VK_LAYER_KHRONOS_validation (Debian/Ubuntu: apt-get install \
                     vulkan-validationlayers)",
                ))
            }
            Validation::Required => true,
        };
        let debug_utils = validate && has_ext(ash::ext::debug_utils::NAME);

        let app = vk::ApplicationInfo::default()
            .application_name(c"rawrxd")
            .application_version(1)
            .engine_name(c"rawrxd")
            .api_version(api_version);
        let layer_ptrs: Vec<*const c_char> = if validate {
            vec![VALIDATION_LAYER.as_ptr()]
        } else {
            vec![]
        };
        let mut ext_ptrs: Vec<*const c_char> = Vec::new();
        if debug_utils {
            ext_ptrs.push(ash::ext::debug_utils::NAME.as_ptr());
        }
        let sink = Box::<DebugSink>::default();
        let mut msg_info = DebugMessenger::create_info(&sink);
        let enables = [vk::ValidationFeatureEnableEXT::SYNCHRONIZATION_VALIDATION];
        let mut features =
            vk::ValidationFeaturesEXT::default().enabled_validation_features(&enables);
        let mut info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layer_ptrs)
            .enabled_extension_names(&ext_ptrs);
        if debug_utils {
            info = info.push_next(&mut msg_info);
        }
        if validate && opts.sync_validation {
            info = info.push_next(&mut features);
        }
        // SAFETY: every pointer in `info` refers to locals alive across the call; the chained
        // messenger info points at the boxed sink, which outlives the instance's messenger.
        let raw = unsafe { entry.create_instance(&info, None) }
            .map_err(VulkanError::map("vkCreateInstance"))?;
        let debug = if debug_utils {
            match DebugMessenger::new(&entry, &raw, sink) {
                Ok(d) => Some(d),
                Err(e) => {
                    // SAFETY: the instance was just created and nothing else refers to it.
                    unsafe { raw.destroy_instance(None) };
                    return Err(e);
                }
            }
        } else {
            None
        };
        Ok(Instance {
            debug,
            raw,
            entry,
            api_version,
        })
    }

    /// The ash instance.
    pub fn raw(&self) -> &ash::Instance {
        &self.raw
    }

    /// The loader entry.
    pub fn entry(&self) -> &ash::Entry {
        &self.entry
    }

    /// The API version the instance was created with.
    pub fn api_version(&self) -> u32 {
        self.api_version
    }

    /// True when the validation layer and its messenger are active.
    pub fn validating(&self) -> bool {
        self.debug.is_some()
    }

    /// Removes and returns the validation errors recorded so far (empty when not validating).
    pub fn take_validation_errors(&self) -> Vec<String> {
        self.debug
            .as_ref()
            .map(|d| d.sink().take_errors())
            .unwrap_or_default()
    }

    /// Number of validation errors recorded and not yet taken.
    pub fn validation_error_count(&self) -> usize {
        self.debug
            .as_ref()
            .map(|d| d.sink().error_count())
            .unwrap_or(0)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.debug = None;
        // SAFETY: every child object (messenger above, devices via their Arc) is gone; the
        // instance is destroyed exactly once.
        unsafe { self.raw.destroy_instance(None) };
    }
}

/// "1.3.230" from a packed Vulkan version.
pub fn version_string(v: u32) -> String {
    format!(
        "{}.{}.{}",
        vk::api_version_major(v),
        vk::api_version_minor(v),
        vk::api_version_patch(v)
    )
}
