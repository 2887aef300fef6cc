//! `engine:generate{prompt=, n=, temp=, ...}`: text generation with llama.cpp's sampler chain.
//!
//! Sampling defaults are llama.cpp's (temp 0.8, top-k 40, top-p 0.95, min-p 0.05); `temp = 0` is
//! greedy. An `on_token(piece)` callback sees each generated piece as it comes and may return
//! `false` to stop; it runs while the engine is held, so it must not call the same engine.

use mlua::{Function, Lua, Table, Value};

use super::EngineHandle;
use crate::engine::generate;
use crate::lua::error::lua_err;
use crate::lua::opts::Opts;
use crate::model::{Sampler, SamplerParams};
use crate::Error;

const GEN: &str = "engine:generate";
const FIELDS: &[&str] = &[
    "prompt",
    "n",
    "temp",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "seed",
    "special",
    "on_token",
];

/// Sampler settings from an option table, over llama.cpp's defaults.
fn sampler_params(o: &Opts) -> mlua::Result<SamplerParams> {
    let d = SamplerParams::default();
    let p = SamplerParams {
        temp: o.number("temp")?.map_or(d.temp, |v| v as f32),
        top_k: o.usize("top_k", 0)?.unwrap_or(d.top_k),
        top_p: o.number("top_p")?.map_or(d.top_p, |v| v as f32),
        min_p: o.number("min_p")?.map_or(d.min_p, |v| v as f32),
        repeat_penalty: o
            .number("repeat_penalty")?
            .map_or(d.repeat_penalty, |v| v as f32),
        repeat_last_n: o.usize("repeat_last_n", 0)?.unwrap_or(d.repeat_last_n),
        seed: o.int("seed", 0)?.map_or(d.seed, |s| s as u64),
    };
    p.validate().map_err(|e| o.error(e))?;
    Ok(p)
}

/// `engine:generate{...}` → `{text, tokens, token_ids, n_prompt, pp_tps, tg_tps, stop}`.
pub(crate) fn generate_text(lua: &Lua, h: &EngineHandle, opts: Table) -> mlua::Result<Table> {
    let o = Opts::new(opts, GEN, FIELDS)?;
    let prompt = o
        .string("prompt")?
        .ok_or_else(|| o.error("option 'prompt' is required"))?;
    let n = o.usize("n", 0)?.unwrap_or(128);
    let params = sampler_params(&o)?;
    let special = o.bool("special")?.unwrap_or(true);
    let on_token: Option<Function> = match o.value("on_token")? {
        Value::Nil => None,
        Value::Function(f) => Some(f),
        other => {
            return Err(o.error(format!(
                "option 'on_token': expected a function, got {}",
                other.type_name()
            )))
        }
    };
    let tok = h.tokenizer().map_err(lua_err)?;
    let ids = tok.encode(&prompt, true, special).map_err(lua_err)?;
    let mut sampler = Sampler::new(params).map_err(lua_err)?;
    let mut out_ids = Vec::new();
    let is_eog = |t: u32| tok.is_eog(t);
    let stats = h
        .with_engine(lua, |e, _| {
            generate(e, &ids, n, &mut sampler, &is_eog, &mut |t| {
                out_ids.push(t);
                match &on_token {
                    None => Ok(true),
                    Some(f) => {
                        let piece = String::from_utf8_lossy(tok.token_bytes(t)).into_owned();
                        match f.call::<Value>(piece) {
                            Ok(Value::Boolean(false)) => Ok(false),
                            Ok(_) => Ok(true),
                            Err(e) => Err(Error::Script(crate::lua::describe(&e))),
                        }
                    }
                }
            })
        })
        .map_err(lua_err)?;
    let t = lua.create_table()?;
    t.set("text", tok.decode(&out_ids))?;
    t.set("tokens", out_ids.len())?;
    t.set("token_ids", out_ids)?;
    t.set("n_prompt", stats.n_prompt)?;
    t.set("pp_tps", stats.prefill_tps())?;
    t.set("tg_tps", stats.decode_tps())?;
    t.set(
        "stop",
        match stats.stop {
            crate::engine::StopReason::Eog => "eog",
            crate::engine::StopReason::MaxTokens => "max_tokens",
            crate::engine::StopReason::ContextFull => "context_full",
            crate::engine::StopReason::Callback => "callback",
        },
    )?;
    Ok(t)
}
