//! Inference engines. (Placeholder on the vulkan branch; the lead's version defines the `Engine` trait.)

pub mod vulkan;
