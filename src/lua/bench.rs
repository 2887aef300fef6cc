//! `rawrxd.bench`: llama-bench-style throughput of a loaded engine, from Lua.
//!
//! `run(engine, {prompt=512, gen=128, repeats=5, warmup=1, seed=, progress=})` runs
//! [`crate::engine::bench::run_with`] in Rust and returns one table (see [`result_table`]).
//! Between two repetitions it is a reload safe point: `poll_reload` runs there, and tensors a
//! scheme reload re-quantized are swapped into the engine before the next repetition (which
//! starts from an empty cache anyway). A progress bar goes to stderr when it is a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use mlua::{AnyUserData, Lua, Table};

use super::engine::{engine_arg, EngineHandle};
use super::error::lua_err;
use super::opts::{to_lua, Opts};
use super::probe::vram_table;
use super::reload;
use crate::engine::bench::{run_with, BenchConfig, BenchResult};

const RUN: &str = "rawrxd.bench.run";
const FIELDS: &[&str] = &["prompt", "gen", "repeats", "warmup", "seed", "progress"];

/// The bench settings of an option table (defaults: llama-bench's pp512 / tg128, 5 + 1 runs).
pub(crate) fn config(o: &Opts) -> mlua::Result<BenchConfig> {
    let d = BenchConfig::default();
    Ok(BenchConfig {
        n_prompt: o.usize("prompt", 0)?.unwrap_or(d.n_prompt),
        n_gen: o.usize("gen", 0)?.unwrap_or(d.n_gen),
        repeats: o.usize("repeats", 1)?.unwrap_or(d.repeats),
        warmup: o.usize("warmup", 0)?.unwrap_or(d.warmup),
        seed: o.int("seed", 0)?.map_or(d.seed, |s| s as u64),
    })
}

/// A progress bar over every repetition of both tests, or a hidden one.
pub(crate) fn bar(len: u64, prefix: String, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(prefix);
    pb
}

/// Runs the bench of `opts` on `h`.
pub(crate) fn run(lua: &Lua, h: &EngineHandle, opts: Option<Table>) -> mlua::Result<Table> {
    let o = Opts::maybe(lua, opts, RUN, FIELDS)?;
    let cfg = config(&o)?;
    let show = o.bool("progress")?.unwrap_or(true);
    let tests = usize::from(cfg.n_prompt > 0) + usize::from(cfg.n_gen > 0);
    let pb = bar(
        ((cfg.warmup + cfg.repeats) * tests) as u64,
        h.info().variant.clone(),
        show,
    );
    let gen_start = reload::generation(lua);
    let result = h
        .with_engine(lua, |engine, holding| {
            run_with(engine, &cfg, &mut |engine, step| {
                pb.inc(1);
                pb.set_message(if step.warmup {
                    format!("{} warm-up", step.test)
                } else {
                    format!("{} {}/{}", step.test, step.index, step.total)
                });
                // The safe point: apply edits, then swap what a scheme reload re-quantized.
                reload::poll_reload(lua)
                    .map_err(|e| crate::Error::Script(super::error::describe(&e)))?;
                h.safe_point(lua, engine, holding)
            })
        })
        .map_err(lua_err);
    pb.finish_and_clear();
    let r = result?;
    let t = result_table(lua, h, &r)?;
    t.set("generation_start", gen_start)?;
    t.set("generation", reload::generation(lua))?;
    Ok(t)
}

/// The Lua table of a bench result: `backend`, `device`, `prompt_matmul` and `decode_matvec`
/// (see `Engine::prompt_matmul`, `Engine::decode_matvec`), `pp` / `tg` summaries (`mean`, `sd`, `min`, `max`,
/// `samples`), flat `pp_tps`, `pp_sd`, `tg_tps`, `tg_sd`, per-token `ms` percentiles (`p50`,
/// `p95`, `p99`, `max`, `count`) and flat `ms_p50/95/99`, `token_ms` (every token, sorted),
/// `bandwidth` (bytes/s), `peak_bandwidth`, `peak_pct`, `decode_weight_bytes`, `vram` (as
/// `rawrxd.probe.vram`) and `vram_mib` (the engine's accounted total).
pub(crate) fn result_table(lua: &Lua, h: &EngineHandle, r: &BenchResult) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("backend", r.backend.as_str())?;
    t.set("device", r.device.as_str())?;
    t.set("prompt_matmul", r.prompt_matmul.as_str())?;
    t.set("decode_matvec", r.decode_matvec.as_str())?;
    t.set("variant", h.info().variant.as_str())?;
    t.set("prompt", r.config.n_prompt)?;
    t.set("gen", r.config.n_gen)?;
    t.set("repeats", r.config.repeats)?;
    t.set("warmup", r.config.warmup)?;
    if let Some(pp) = &r.pp_tps {
        t.set("pp", to_lua(lua, pp)?)?;
        t.set("pp_tps", pp.mean)?;
        t.set("pp_sd", pp.sd)?;
    }
    if let Some(tg) = &r.tg_tps {
        t.set("tg", to_lua(lua, tg)?)?;
        t.set("tg_tps", tg.mean)?;
        t.set("tg_sd", tg.sd)?;
    }
    if let Some(ms) = &r.tg_ms {
        t.set("ms", to_lua(lua, ms)?)?;
        t.set("ms_p50", ms.p50)?;
        t.set("ms_p95", ms.p95)?;
        t.set("ms_p99", ms.p99)?;
    }
    t.set("token_ms", r.tg_token_ms.clone())?;
    t.set("decode_weight_bytes", r.decode_weight_bytes)?;
    t.set("bandwidth", r.effective_bandwidth)?;
    t.set("peak_bandwidth", r.peak_bandwidth)?;
    t.set("peak_pct", r.bandwidth_share().map(|s| s * 100.0))?;
    let heaps = h.memory().map(|m| m.1).unwrap_or_default();
    t.set("vram", vram_table(lua, &r.memory, &heaps)?)?;
    t.set("vram_mib", r.memory.total() as f64 / (1u64 << 20) as f64)?;
    Ok(t)
}

/// Adds the `bench` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "run",
        lua.create_function(|lua, (engine, opts): (AnyUserData, Option<Table>)| {
            let h = engine_arg(&engine, RUN)?;
            run(lua, &h, opts)
        })?,
    )?;
    module.set("bench", t)?;
    Ok(())
}
