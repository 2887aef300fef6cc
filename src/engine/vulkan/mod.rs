//! The Vulkan compute backend (ash 0.38, libvulkan opened at run time). All `unsafe` Vulkan code of
//! rawrxd lives under this module.
//!
//! Layers, bottom up: `instance` (loader, validation, `debug` messenger) -> `device` (selection,
//! `caps`) -> `context::Gpu` (the shared context: `memory` sub-allocator, `buffer`s, `pipeline`s
//! from the embedded `shaders`) -> `command::Recorder` (dispatches with automatic barriers,
//! `profile` timestamps) -> `kernels` (one module per shader family, push constants mirrored
//! 1:1) -> the llama `engine`.
//!
//! Invariant: nothing assumes a subgroup size; kernels size workgroups from `DeviceCaps`.
//!
//! Environment: `RAWRXD_VULKAN_DEVICE` (index or name substring), `RAWRXD_VULKAN_VALIDATION`
//! (`1` if available, `2` required, `sync` with synchronization checks), `RAWRXD_CACHE_DIR`
//! (pipeline cache), `RAWRXD_MATVEC_TUNING=subgroups,rows,unroll` (tuning runs only), and at build
//! time `RAWRXD_GLSLC` (the shader compiler).

pub mod bandwidth;
pub mod buffer;
pub mod caps;
pub mod command;
pub mod context;
pub mod coopmat2;
pub mod debug;
pub mod device;
pub mod engine;
pub mod error;
pub mod instance;
pub mod kernels;
pub mod memory;
pub mod model;
pub mod pipeline;
pub mod profile;
pub mod shaders;

pub use buffer::{BufRange, GpuBuffer};
pub use caps::{CoopMatShape, DeviceCaps};
pub use command::{Access, Binding, Recorder};
pub use context::{Gpu, GpuOptions};
pub use device::DeviceSelector;
pub use engine::{VulkanEngine, VulkanEngineOptions, ROWS_MAX};
pub use error::VulkanError;
pub use instance::{Instance, InstanceOptions, Validation};
pub use memory::{MemoryClass, MemoryStats};
pub use pipeline::DescriptorCache;
pub use profile::Profile;
