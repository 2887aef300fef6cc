//! `rawrxd.probe`: memory and CPU probes for scripts (soak checkpoints, sweep rows).
//!
//! - `vram(engine?)`: rawrxd's own accounting of what an engine holds (weights, KV cache,
//!   scratch; on the device or in host memory), plus the driver's per-heap budget and usage when
//!   the engine can read them (Vulkan with VK_EXT_memory_budget). Without an engine: the sum over
//!   every engine this script has loaded and not unloaded.
//! - `rss()`, `memory()`, `cpu()`: this process and the machine, through sysinfo. `cpu()` reports
//!   usage since the previous call (the first call: since the host started).
//! - `gpu()`: vendor sysfs counters where the kernel offers them (AMD's
//!   `/sys/class/drm/card*/device/mem_info_vram_{used,total}`); an empty list elsewhere.
//!
//! Invariant: probes never fail a script for lack of a counter; what cannot be read is `nil`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mlua::{AnyUserData, Lua, Table};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::engine::{live_engines, EngineHandle};
use super::error::lua_err;
use super::opts::to_lua;
use crate::engine::{HeapUsage, MemoryUsage};
use crate::Error;

/// Where the DRM sysfs tree is.
pub const DRM_SYSFS: &str = "/sys/class/drm";

/// One GPU's memory counters from sysfs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GpuSysfs {
    /// The card's directory name (`card0`).
    pub card: String,
    /// PCI vendor id (`0x1002` is AMD), if readable.
    pub vendor: Option<String>,
    /// `mem_info_vram_used` in bytes.
    pub vram_used: Option<u64>,
    /// `mem_info_vram_total` in bytes.
    pub vram_total: Option<u64>,
    /// `mem_info_gtt_used` in bytes (system memory mapped for the GPU).
    pub gtt_used: Option<u64>,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// The GPUs under `root` (normally [`DRM_SYSFS`]) that report VRAM counters, sorted by card.
/// Connector entries (`card0-DP-1`) are skipped.
pub fn gpu_sysfs(root: &Path) -> Vec<GpuSysfs> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<GpuSysfs> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let card = e.file_name().to_string_lossy().into_owned();
            let n = card.strip_prefix("card")?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let dev: PathBuf = e.path().join("device");
            let vram_used = read_u64(&dev.join("mem_info_vram_used"));
            let vram_total = read_u64(&dev.join("mem_info_vram_total"));
            if vram_used.is_none() && vram_total.is_none() {
                return None;
            }
            Some(GpuSysfs {
                card,
                vendor: std::fs::read_to_string(dev.join("vendor"))
                    .ok()
                    .map(|s| s.trim().to_string()),
                vram_used,
                vram_total,
                gtt_used: read_u64(&dev.join("mem_info_gtt_used")),
            })
        })
        .collect();
    out.sort_by(|a, b| a.card.cmp(&b.card));
    out
}

/// The sysinfo state kept between calls (CPU usage is a difference between two refreshes).
struct ProbeState {
    sys: Option<System>,
    pid: Pid,
}

#[derive(Clone)]
struct ProbeHandle(Arc<Mutex<ProbeState>>);

impl ProbeHandle {
    fn with<R>(&self, f: impl FnOnce(&mut ProbeState) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }
}

fn handle(lua: &Lua) -> ProbeHandle {
    if let Some(h) = lua.app_data_ref::<ProbeHandle>() {
        return h.clone();
    }
    let h = ProbeHandle(Arc::new(Mutex::new(ProbeState {
        sys: System::new().ok(),
        pid: Pid::from_u32(std::process::id()),
    })));
    lua.set_app_data(h.clone());
    h
}

impl ProbeState {
    fn refresh_process(&mut self, cpu: bool) {
        let pid = self.pid;
        if let Some(sys) = &mut self.sys {
            let mut kind = ProcessRefreshKind::nothing().with_memory();
            if cpu {
                kind = kind.with_cpu();
            }
            sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), false, kind);
        }
    }

    fn rss(&mut self) -> Option<u64> {
        self.refresh_process(false);
        let pid = self.pid;
        Some(self.sys.as_ref()?.process(pid)?.memory())
    }
}

/// Adds an engine's accounting to `t`: weights, kv_cache, scratch, total, on_device.
fn memory_fields(t: &Table, m: &MemoryUsage) -> mlua::Result<()> {
    t.set("weights", m.weights)?;
    t.set("kv_cache", m.kv_cache)?;
    t.set("scratch", m.scratch)?;
    t.set("total", m.total())?;
    t.set("on_device", m.on_device)?;
    Ok(())
}

/// The `vram()` table for one engine's accounting and heaps.
pub(crate) fn vram_table(lua: &Lua, m: &MemoryUsage, heaps: &[HeapUsage]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    memory_fields(&t, m)?;
    t.set("heaps", to_lua(lua, heaps)?)?;
    let device_usage: Option<u64> = heaps
        .iter()
        .filter(|h| h.device_local)
        .map(|h| h.usage)
        .sum();
    t.set("device_usage", device_usage)?;
    Ok(t)
}

/// Adds the `probe` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    // Take the first CPU sample now, so the first `cpu()` has something to compare with.
    handle(lua).with(|s| s.refresh_process(true));
    let t = lua.create_table()?;
    t.set(
        "rss",
        lua.create_function(|lua, ()| Ok(handle(lua).with(|s| s.rss())))?,
    )?;
    t.set(
        "memory",
        lua.create_function(|lua, ()| {
            let out = lua.create_table()?;
            handle(lua).with(|s| -> mlua::Result<()> {
                out.set("rss", s.rss())?;
                if let Some(sys) = &mut s.sys {
                    sys.refresh_memory();
                    out.set("total", sys.total_memory())?;
                    out.set("available", sys.available_memory())?;
                    out.set("used", sys.used_memory())?;
                }
                Ok(())
            })?;
            Ok(out)
        })?,
    )?;
    t.set(
        "cpu",
        lua.create_function(|lua, ()| {
            let out = lua.create_table()?;
            handle(lua).with(|s| -> mlua::Result<()> {
                s.refresh_process(true);
                let pid = s.pid;
                if let Some(sys) = &mut s.sys {
                    sys.refresh_cpu_usage();
                    out.set("system", sys.global_cpu_usage())?;
                    out.set("cores", sys.cpus().len())?;
                    if let Some(p) = sys.process(pid) {
                        out.set("process", p.cpu_usage())?;
                        out.set("time_ms", p.accumulated_cpu_time())?;
                    }
                }
                Ok(())
            })?;
            Ok(out)
        })?,
    )?;
    t.set(
        "gpu",
        lua.create_function(|lua, ()| to_lua(lua, &gpu_sysfs(Path::new(DRM_SYSFS))))?,
    )?;
    t.set(
        "vram",
        lua.create_function(|lua, engine: Option<AnyUserData>| match engine {
            Some(ud) => {
                let h = ud.borrow::<EngineHandle>().map_err(|_| {
                    lua_err(Error::Invalid(
                        "rawrxd.probe.vram: expected an engine (rawrxd.engine.load)".into(),
                    ))
                })?;
                let (m, heaps) = h.memory().map_err(lua_err)?;
                vram_table(lua, &m, &heaps)
            }
            None => {
                let mut sum = MemoryUsage::default();
                let mut heaps = Vec::new();
                for e in live_engines(lua) {
                    if let Ok((m, h)) = e.memory() {
                        sum.weights += m.weights;
                        sum.kv_cache += m.kv_cache;
                        sum.scratch += m.scratch;
                        sum.on_device |= m.on_device;
                        if heaps.is_empty() {
                            heaps = h;
                        }
                    }
                }
                vram_table(lua, &sum, &heaps)
            }
        })?,
    )?;
    module.set("probe", t)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_cards_with_vram_counters_are_read() {
        let root = tempfile::tempdir().unwrap();
        let card = |name: &str, files: &[(&str, &str)]| {
            let dev = root.path().join(name).join("device");
            std::fs::create_dir_all(&dev).unwrap();
            for (f, v) in files {
                std::fs::write(dev.join(f), v).unwrap();
            }
        };
        card(
            "card1",
            &[
                ("vendor", "0x1002\n"),
                ("mem_info_vram_used", "123456\n"),
                ("mem_info_vram_total", "17163091968\n"),
                ("mem_info_gtt_used", "42\n"),
            ],
        );
        card("card0", &[("vendor", "0x10de\n")]); // no counters: not listed
        card("card1-DP-1", &[("mem_info_vram_used", "1\n")]); // a connector
        card("renderD128", &[("mem_info_vram_used", "1\n")]);
        let got = gpu_sysfs(root.path());
        assert_eq!(
            got,
            vec![GpuSysfs {
                card: "card1".into(),
                vendor: Some("0x1002".into()),
                vram_used: Some(123456),
                vram_total: Some(17163091968),
                gtt_used: Some(42),
            }]
        );
        assert!(gpu_sysfs(&root.path().join("absent")).is_empty());
    }
}
