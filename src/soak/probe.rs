//! What a soak sample measures: the engine's own memory accounting, the driver's heap usage
//! (VK_EXT_memory_budget, where the device has it), vendor sysfs VRAM counters (where the kernel
//! offers them), and this process's RSS and CPU use (sysinfo).
//!
//! Invariant: a probe never fails the soak; what cannot be read is `None`. MB means MiB (2^20
//! bytes) throughout the soak.

use std::path::Path;
use std::sync::Arc;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::engine::service::ModelService;
use crate::lua::probe::{gpu_sysfs, DRM_SYSFS};

/// Bytes per MB (MiB).
pub const MB: f64 = (1u64 << 20) as f64;

/// A source of an engine's memory figures.
pub trait EngineMemory: Send + Sync {
    /// Bytes the engine's own accounting says it holds (weights, KV cache, scratch).
    fn own_bytes(&self) -> Option<u64>;
    /// Bytes the driver reports in use on device-local heaps, if it reports usage.
    fn heap_used_bytes(&self) -> Option<u64>;
}

impl EngineMemory for Arc<ModelService> {
    fn own_bytes(&self) -> Option<u64> {
        Some(self.scheduler().metrics().memory.total())
    }

    fn heap_used_bytes(&self) -> Option<u64> {
        let heaps = self.scheduler().memory_heaps();
        heaps
            .iter()
            .filter(|h| h.device_local)
            .map(|h| h.usage)
            .sum::<Option<u64>>()
            .filter(|_| heaps.iter().any(|h| h.device_local))
    }
}

/// This process's RSS and CPU use, through sysinfo.
pub struct ProcessProbe {
    sys: Option<System>,
    pid: Pid,
}

impl ProcessProbe {
    /// A probe of this process; the first [`ProcessProbe::cpu_pct`] reports use since now.
    pub fn new() -> ProcessProbe {
        let mut p = ProcessProbe {
            sys: System::new().ok(),
            pid: Pid::from_u32(std::process::id()),
        };
        p.refresh();
        p
    }

    fn refresh(&mut self) {
        let pid = self.pid;
        if let Some(sys) = &mut self.sys {
            let kind = ProcessRefreshKind::nothing().with_memory().with_cpu();
            sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), false, kind);
        }
    }

    /// Refreshes and returns (RSS bytes, CPU % of one core since the previous call).
    pub fn read(&mut self) -> (Option<u64>, Option<f64>) {
        self.refresh();
        let Some(p) = self.sys.as_ref().and_then(|s| s.process(self.pid)) else {
            return (None, None);
        };
        (Some(p.memory()), Some(p.cpu_usage() as f64))
    }
}

impl Default for ProcessProbe {
    fn default() -> Self {
        ProcessProbe::new()
    }
}

/// VRAM used by all cards that report it in sysfs, bytes; `None` where none does.
pub fn gpu_sysfs_used() -> Option<u64> {
    gpu_sysfs(Path::new(DRM_SYSFS))
        .iter()
        .filter_map(|g| g.vram_used)
        .reduce(|a, b| a + b)
}
