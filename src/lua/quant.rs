//! `rawrxd.quant`: quantization mixes and hybrid schemes from Lua.
//!
//! - `mixes()`: the standard mixes rawrxd can make (llama-quantize's names).
//! - `scheme(path, model?)`: loads a scheme and resolves it for a model (default: the default
//!   model), returning the type of every tensor and which rule chose it.
//! - `quantize{input=, output=, type= | scheme=, allow_requantize=, progress=}`: converts a whole
//!   file in Rust (streamed, rows in parallel), like `rawrxd quantize`.

use std::path::PathBuf;

use mlua::{Lua, Table, Value};

use super::bench::bar;
use super::error::lua_err;
use super::model::{default_model, model_arg, LuaModel};
use super::opts::Opts;
use crate::model::LlamaHParams;
use crate::quant::convert::{quantize_file, ConvertOptions};
use crate::quant::mix::mix_types;
use crate::quant::{Mix, MixModel, Resolution, Scheme};

const QUANTIZE: &str = "rawrxd.quant.quantize";

/// The Lua table of a scheme resolution over `tensors` (`(name, source type)` pairs).
pub(crate) fn resolution_table(
    lua: &Lua,
    r: &Resolution,
    sources: &[(String, crate::quant::GgmlType)],
) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let types = lua.create_table()?;
    let list = lua.create_table()?;
    let counts = lua.create_table()?;
    for (a, (_, from)) in r.assignments.iter().zip(sources) {
        types.set(a.name.as_str(), a.ty.ggml_name())?;
        let row = lua.create_table()?;
        row.set("name", a.name.as_str())?;
        row.set("type", a.ty.ggml_name())?;
        row.set("from", from.ggml_name())?;
        row.set("rule", a.rule_index)?;
        list.push(row)?;
        let n: i64 = counts.get::<Option<i64>>(a.ty.ggml_name())?.unwrap_or(0);
        counts.set(a.ty.ggml_name(), n + 1)?;
    }
    t.set("types", types)?;
    t.set("tensors", list)?;
    t.set("counts", counts)?;
    t.set("file_type", r.file_type)?;
    t.set("warnings", r.warnings.clone())?;
    Ok(t)
}

/// Adds the `quant` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "mixes",
        lua.create_function(|_, ()| Ok(Mix::ALL.map(|m| m.name().to_string()).to_vec()))?,
    )?;
    t.set(
        "scheme",
        lua.create_function(|lua, (path, model): (String, Value)| {
            let model = match model {
                Value::Nil => LuaModel::open(default_model().map_err(lua_err)?).map_err(lua_err)?,
                v => model_arg(&v, "rawrxd.quant.scheme")?,
            };
            let f = &model.file;
            let hp = LlamaHParams::from_gguf(f).map_err(lua_err)?;
            let scheme = Scheme::load(&path).map_err(lua_err)?;
            let r = scheme.resolve(f, &hp).map_err(lua_err)?;
            let sources: Vec<_> = f.tensors().iter().map(|t| (t.name.clone(), t.ty)).collect();
            let out = resolution_table(lua, &r, &sources)?;
            out.set("path", path)?;
            out.set("model", f.path().to_string_lossy().into_owned())?;
            out.set("rules", scheme.n_rules())?;
            Ok(out)
        })?,
    )?;
    t.set(
        "quantize",
        lua.create_function(|lua, opts: Table| {
            let o = Opts::new(
                opts,
                QUANTIZE,
                &[
                    "input",
                    "output",
                    "type",
                    "scheme",
                    "allow_requantize",
                    "progress",
                ],
            )?;
            let input = match o.value("input")? {
                Value::Nil => return Err(o.error("option 'input' (a model or path) is required")),
                v => model_arg(&v, QUANTIZE)?,
            };
            let output = o
                .string("output")?
                .map(PathBuf::from)
                .ok_or_else(|| o.error("option 'output' is required"))?;
            let f = &input.file;
            let hp = LlamaHParams::from_gguf(f).map_err(lua_err)?;
            let (types, file_type, label) = match (o.string("type")?, o.string("scheme")?) {
                (Some(m), None) => {
                    let mix: Mix = m
                        .parse()
                        .map_err(|e| o.error(format!("option 'type': {e}")))?;
                    let types = mix_types(mix, &MixModel::from_file(f, &hp), f.tensors());
                    (types, mix.file_type(), mix.name().to_string())
                }
                (None, Some(s)) => {
                    let r = Scheme::load(&s)
                        .and_then(|sc| sc.resolve(f, &hp))
                        .map_err(lua_err)?;
                    (r.types(), r.file_type, s)
                }
                _ => return Err(o.error("give exactly one of type= (a mix) and scheme= (a file)")),
            };
            let opts = ConvertOptions {
                allow_requantize: o.bool("allow_requantize")?.unwrap_or(false),
                file_type,
            };
            let pb = bar(
                f.tensors().len() as u64,
                format!("quantize {label}"),
                o.bool("progress")?.unwrap_or(true),
            );
            let s = quantize_file(f, &output, &types, &opts, |_| pb.inc(1));
            pb.finish_and_clear();
            let s = s.map_err(lua_err)?;
            let out = lua.create_table()?;
            out.set("output", output.to_string_lossy().into_owned())?;
            out.set("n_tensors", s.n_tensors)?;
            out.set("bytes_in", s.bytes_in)?;
            out.set("bytes_out", s.bytes_out)?;
            out.set("file_size_in", s.file_size_in)?;
            out.set("file_size_out", s.file_size_out)?;
            out.set("bpw", s.bytes_out as f64 * 8.0 / f.n_params().max(1) as f64)?;
            out.set("seconds", s.seconds)?;
            Ok(out)
        })?,
    )?;
    module.set("quant", t)?;
    Ok(())
}
