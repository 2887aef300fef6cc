//! `rawrxd devices`: the Vulkan devices this machine offers and what rawrxd reads from each
//! (`DeviceCaps`), as text or JSON. The device rawrxd would pick by default is marked.

use std::io::Write;

use anyhow::Context;
use rawrxd::engine::vulkan::caps::DeviceCaps;
use rawrxd::engine::vulkan::{coopmat2, device, shaders};
use rawrxd::engine::vulkan::{DeviceSelector, Instance, InstanceOptions};

/// Arguments of `rawrxd devices`.
#[derive(Debug, clap::Args)]
pub struct DevicesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
}

fn usable(b: bool) -> &'static str {
    if b {
        "usable"
    } else {
        "not usable"
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn describe(c: &DeviceCaps, default: bool, out: &mut impl Write) -> std::io::Result<()> {
    let mark = if default { "  [default]" } else { "" };
    writeln!(
        out,
        "[{}] {} ({:?}, {} 0x{:04x}:0x{:04x}){mark}",
        c.index, c.name, c.kind, c.vendor, c.vendor_id, c.device_id
    )?;
    writeln!(
        out,
        "    api {}   driver {} ({})",
        c.api_version, c.driver_name, c.driver_info
    )?;
    match &c.unusable_reason {
        Some(r) => writeln!(out, "    usable: no — {r}")?,
        None => writeln!(out, "    usable: yes")?,
    }
    let sg = &c.subgroup;
    writeln!(
        out,
        "    subgroup {} (min {}, max {}; size control {}, full subgroups {}); ops: {}",
        sg.size,
        sg.min_size,
        sg.max_size,
        yes(sg.size_control),
        yes(sg.full_subgroups),
        sg.ops.join(" ")
    )?;
    writeln!(
        out,
        "    fp16 arithmetic {}, int8 arithmetic {}, int16 {}, 16-bit storage {}, 8-bit storage {}",
        yes(c.shader_float16),
        yes(c.shader_int8),
        yes(c.shader_int16),
        yes(c.storage_buffer_16bit),
        yes(c.storage_buffer_8bit)
    )?;
    let idot = match &c.integer_dot_product {
        Some(d) => format!(
            "yes (4x8 signed accelerated: {})",
            yes(d.packed_4x8_signed_accelerated)
        ),
        None => "no".into(),
    };
    let shapes = |m: &Option<Vec<rawrxd::engine::vulkan::CoopMatShape>>| match m {
        Some(shapes) => {
            let s: Vec<String> = shapes
                .iter()
                .map(|s| format!("{}x{}x{} {}", s.m, s.n, s.k, s.types))
                .collect();
            format!("yes ({})", s.join(", "))
        }
        None => "no".into(),
    };
    // The Q8 decode path needs the feature on a Vulkan 1.3 device (see matvec_q8).
    let q8 = c.integer_dot_product.is_some() && c.api_version_raw >= ash::vk::API_VERSION_1_3;
    writeln!(
        out,
        "    integer dot product {idot}; Q8 decode (matvec_q8) {}",
        if q8 { "usable" } else { "not usable" }
    )?;
    let cm2 = match &c.cooperative_matrix2 {
        Some(m) => format!(
            "{} (workgroup scope {}, flexible dimensions {} up to {}, tensor addressing {}, \
             workgroups up to {} lanes; staged prompt products (matmul_cm2) {})",
            yes(c.cooperative_matrix2_nv),
            yes(m.workgroup_scope),
            yes(m.flexible_dimensions),
            m.max_dimension,
            yes(m.tensor_addressing),
            m.max_workgroup_size,
            usable(c.nv_coopmat2(coopmat2::MAX_WORKGROUP, coopmat2::MAX_DIMENSION)),
        ),
        None => yes(c.cooperative_matrix2_nv).to_string(),
    };
    writeln!(
        out,
        "    cooperative matrix (KHR) {}; NV cooperative matrix 2 {cm2}",
        shapes(&c.cooperative_matrix),
    )?;
    writeln!(
        out,
        "    cooperative matrix (NV) {}; tensor-core matmul (16x16x16 f16, 32 lanes) {}; \
         integer tiles for batches (16x8x32 s8, RAWRXD_MMQ=1) {}",
        shapes(&c.cooperative_matrix_nv),
        usable(c.nv_coopmat_f16_16x16()),
        if c.nv_coopmat_s8_16x8x32() {
            "offered (their layout is checked when an engine asks)"
        } else {
            "not usable"
        }
    )?;
    let l = &c.limits;
    writeln!(
        out,
        "    limits: storage buffer range {}, shared memory {} KiB, workgroup {:?} / {} invocations, push constants {} B, \
         allocation {}, buffer {}",
        mib(l.max_storage_buffer_range),
        l.max_compute_shared_memory_size / 1024,
        l.max_workgroup_size,
        l.max_workgroup_invocations,
        l.max_push_constants_size,
        mib(l.max_memory_allocation_size),
        mib(l.max_buffer_size)
    )?;
    writeln!(
        out,
        "    timestamps: {} valid bits, {} ns/tick",
        l.timestamp_valid_bits, l.timestamp_period
    )?;
    writeln!(out, "    memory budget extension {}", yes(c.memory_budget))?;
    for (i, h) in c.heaps.iter().enumerate() {
        let budget = match (h.budget, h.usage) {
            (Some(b), Some(u)) => format!(", budget {}, used {}", mib(b), mib(u)),
            _ => String::new(),
        };
        let local = if h.device_local { " device-local" } else { "" };
        writeln!(out, "    heap {i}: {}{local}{budget}", mib(h.size))?;
    }
    for (i, t) in c.memory_types.iter().enumerate() {
        writeln!(out, "    memory type {i}: heap {} {}", t.heap, t.flag_names)?;
    }
    Ok(())
}

/// Lists the devices.
pub fn run(args: &DevicesArgs) -> anyhow::Result<()> {
    let instance = Instance::new(InstanceOptions::default()).context("opening Vulkan")?;
    let adapters = device::enumerate(&instance).context("listing Vulkan devices")?;
    let default = DeviceSelector::from_env().select(&adapters).ok();
    let mut out = std::io::stdout().lock();
    if args.json {
        let list: Vec<serde_json::Value> = adapters
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut v = serde_json::to_value(&a.caps).unwrap_or(serde_json::Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "default".into(),
                        serde_json::Value::Bool(default == Some(i)),
                    );
                }
                v
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
        return Ok(());
    }
    if adapters.is_empty() {
        writeln!(out, "no Vulkan devices (is a driver installed? Debian: apt-get install mesa-vulkan-drivers)")?;
    }
    for (i, a) in adapters.iter().enumerate() {
        describe(&a.caps, default == Some(i), &mut out)?;
    }
    let exts: Vec<String> = shaders::GLSLC_EXTENSIONS
        .iter()
        .map(|(n, ok)| format!("{n} {}", yes(*ok)))
        .collect();
    writeln!(
        out,
        "shader compiler of this build: {} variants; optional extensions: {}",
        shaders::VARIANTS.len(),
        exts.join(", ")
    )?;
    Ok(())
}
