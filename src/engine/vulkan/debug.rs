//! The debug-utils messenger: validation-layer messages go to `log`, and errors are also recorded
//! so tests can fail when any were reported.
//!
//! Invariant: the `DebugSink` is boxed and outlives the messenger (the messenger is destroyed in
//! `Drop` before the box is freed), because Vulkan holds a raw pointer to it as user data.

use std::ffi::{c_void, CStr};
use std::sync::Mutex;

use ash::vk;

use super::error::{VkResult, VulkanError};

/// Where validation messages land. Errors are kept (up to a cap) for `take_errors`.
#[derive(Default)]
pub struct DebugSink {
    errors: Mutex<Vec<String>>,
}

/// At most this many error messages are kept; more are counted in the last entry's place.
const MAX_KEPT: usize = 64;

impl DebugSink {
    fn record(&self, msg: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < MAX_KEPT {
            errors.push(msg);
        }
    }

    /// Removes and returns the errors recorded so far.
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.errors.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Number of errors recorded and not yet taken.
    pub fn error_count(&self) -> usize {
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

unsafe extern "system" fn callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: the loader passes a valid callback-data pointer for the duration of the call, and
    // its message is a NUL-terminated string when non-null.
    let msg = unsafe {
        data.as_ref()
            .and_then(|d| (!d.p_message.is_null()).then(|| CStr::from_ptr(d.p_message)))
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
        log::error!("vulkan {types:?}: {msg}");
        // SAFETY: `user` is the DebugSink box registered with the messenger, alive until the
        // messenger is destroyed (module invariant).
        if let Some(sink) = unsafe { (user as *const DebugSink).as_ref() } {
            sink.record(msg);
        }
    } else if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::WARNING) {
        log::warn!("vulkan {types:?}: {msg}");
    } else {
        log::debug!("vulkan {types:?}: {msg}");
    }
    vk::FALSE
}

/// A live debug-utils messenger and the sink it writes to.
pub struct DebugMessenger {
    loader: ash::ext::debug_utils::Instance,
    messenger: vk::DebugUtilsMessengerEXT,
    sink: Box<DebugSink>,
}

impl DebugMessenger {
    /// The create-info for a messenger writing to `sink` (also chained into instance creation so
    /// that instance creation itself is covered).
    pub fn create_info(sink: &DebugSink) -> vk::DebugUtilsMessengerCreateInfoEXT<'static> {
        vk::DebugUtilsMessengerCreateInfoEXT::default()
            .message_severity(
                vk::DebugUtilsMessageSeverityFlagsEXT::ERROR
                    | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                    | vk::DebugUtilsMessageSeverityFlagsEXT::INFO,
            )
            .message_type(
                vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                    | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                    | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
            )
            .pfn_user_callback(Some(callback))
            .user_data(sink as *const DebugSink as *mut c_void)
    }

    /// Creates a messenger on `instance` writing to `sink`.
    pub fn new(
        entry: &ash::Entry,
        instance: &ash::Instance,
        sink: Box<DebugSink>,
    ) -> VkResult<Self> {
        let loader = ash::ext::debug_utils::Instance::new(entry, instance);
        let info = Self::create_info(&sink);
        // SAFETY: the instance was created with VK_EXT_debug_utils enabled; `info` points at the
        // boxed sink, which this struct keeps alive until after the messenger is destroyed.
        let messenger = unsafe { loader.create_debug_utils_messenger(&info, None) }
            .map_err(VulkanError::map("vkCreateDebugUtilsMessengerEXT"))?;
        Ok(DebugMessenger {
            loader,
            messenger,
            sink,
        })
    }

    /// The sink this messenger writes to.
    pub fn sink(&self) -> &DebugSink {
        &self.sink
    }
}

impl Drop for DebugMessenger {
    fn drop(&mut self) {
        // SAFETY: the messenger was created by this loader and is destroyed exactly once, before
        // the instance (Instance drops its messenger first) and before the sink box is freed.
        unsafe {
            self.loader
                .destroy_debug_utils_messenger(self.messenger, None)
        };
    }
}
