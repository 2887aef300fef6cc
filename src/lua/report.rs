//! `rawrxd.report`: tables and plots for people and documents.
//!
//! - `table{title=, columns=, rows=, print=}` prints the table as aligned text (unless
//!   `print = false`) and returns it as Markdown. The spec and its formatting rules are lib-lua's
//!   `fmt.lua`, compiled into the binary and run here, so a script's `fmt.text` and
//!   `rawrxd.report.table` never disagree.
//! - `curve{points=, out=}`: Phase 1's performance curve (decode tokens/s against VRAM, bubble
//!   area = p95 ms/token, one labelled bubble per variant) as `<out>.svg` and `<out>.png`.
//! - `plot{...}`: any line, scatter or bubble plot, drawn by [`crate::report::write_plot`].
//! - `bars{rows=, unit=, decimals=, width=}` and `sparkline(values, width)`: text charts
//!   ([`crate::report::term`]) for BENCHMARK_VISUAL_SUMMARY.txt.

use std::io::Write;
use std::path::{Path, PathBuf};

use mlua::{Function, Lua, Table, Value};

use super::error::lua_err;
use super::opts::Opts;
use crate::report::{write_plot, CurvePoint, PlotKind, PlotSpec, Series};

/// lib-lua/fmt.lua, built in.
const FMT_LUA: &str = include_str!("../../lib-lua/fmt.lua");

/// Registry key of the built-in fmt module.
const FMT_KEY: &str = "rawrxd.report.fmt";

/// The built-in fmt module (loaded once per state).
fn fmt(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(t) = lua.named_registry_value::<Table>(FMT_KEY) {
        return Ok(t);
    }
    let t: Table = lua.load(FMT_LUA).set_name("@lib-lua/fmt.lua").eval()?;
    lua.set_named_registry_value(FMT_KEY, t.clone())?;
    Ok(t)
}

/// `{svg = path, png = path}` after creating `out`'s directory.
fn written(lua: &Lua, files: (PathBuf, PathBuf)) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("svg", files.0.to_string_lossy().into_owned())?;
    t.set("png", files.1.to_string_lossy().into_owned())?;
    Ok(t)
}

fn out_stem(o: &Opts) -> mlua::Result<PathBuf> {
    let out = o
        .string("out")?
        .map(PathBuf::from)
        .ok_or_else(|| o.error("option 'out' (the file stem: <out>.svg, <out>.png) is required"))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| lua_err(crate::Error::io(dir, e)))?;
    }
    Ok(out)
}

/// A number field of a point table.
fn field(p: &Table, key: &str, what: &str, i: usize) -> mlua::Result<f64> {
    number(p.get::<Value>(key)?, key, what, i)
}

fn number(v: Value, key: &str, what: &str, i: usize) -> mlua::Result<f64> {
    match v {
        Value::Integer(n) => Ok(n as f64),
        Value::Number(n) => Ok(n),
        other => Err(lua_err(crate::Error::Invalid(format!(
            "{what}: point {i}: field '{key}': expected a number, got {}",
            other.type_name()
        )))),
    }
}

/// `report.curve{points = {{variant=, vram_mib=, tg_tps=, ms_p95=}, ...}, out=, title=?}`.
fn curve(lua: &Lua, opts: Table) -> mlua::Result<Table> {
    const WHAT: &str = "rawrxd.report.curve";
    let o = Opts::new(opts, WHAT, &["points", "out", "title", "width", "height"])?;
    let out = out_stem(&o)?;
    let points: Table = match o.value("points")? {
        Value::Table(t) => t,
        _ => return Err(o.error("option 'points' (a list of variants) is required")),
    };
    let mut pts = Vec::new();
    for (i, p) in points.sequence_values::<Table>().enumerate() {
        let p = p?;
        pts.push(CurvePoint {
            variant: p
                .get::<Option<String>>("variant")?
                .unwrap_or_else(|| format!("#{}", i + 1)),
            vram_mib: field(&p, "vram_mib", WHAT, i + 1)?,
            tg_tps: field(&p, "tg_tps", WHAT, i + 1)?,
            ms_p95: field(&p, "ms_p95", WHAT, i + 1)?,
        });
    }
    let mut spec = crate::report::curves::performance_curve_spec(&pts);
    if let Some(t) = o.string("title")? {
        spec.title = t;
    }
    sized(&o, &mut spec)?;
    written(lua, write_plot(&spec, &out).map_err(lua_err)?)
}

fn sized(o: &Opts, spec: &mut PlotSpec) -> mlua::Result<()> {
    if let Some(w) = o.int("width", 1)? {
        spec.width = u32::try_from(w).unwrap_or(u32::MAX);
    }
    if let Some(h) = o.int("height", 1)? {
        spec.height = u32::try_from(h).unwrap_or(u32::MAX);
    }
    Ok(())
}

/// `report.plot{title=, x=, y=, kind=, series=, size_label=, log_x=, log_y=, out=}`.
fn plot(lua: &Lua, opts: Table) -> mlua::Result<Table> {
    const WHAT: &str = "rawrxd.report.plot";
    let o = Opts::new(
        opts,
        WHAT,
        &[
            "title",
            "x",
            "y",
            "kind",
            "series",
            "size_label",
            "log_x",
            "log_y",
            "width",
            "height",
            "out",
        ],
    )?;
    let out = out_stem(&o)?;
    let series: Table = match o.value("series")? {
        Value::Table(t) => t,
        _ => return Err(o.error("option 'series' (a list of {name=, points=}) is required")),
    };
    let kind_name = o.string("kind")?.unwrap_or_else(|| "line".into());
    let mut all = Vec::new();
    let mut sizes = Vec::new();
    for (si, s) in series.sequence_values::<Table>().enumerate() {
        let s = s?;
        let name = s
            .get::<Option<String>>("name")?
            .unwrap_or_else(|| format!("series {}", si + 1));
        let mut pts = Vec::new();
        for (i, p) in s
            .get::<Table>("points")?
            .sequence_values::<Table>()
            .enumerate()
        {
            let p = p?;
            // `{x, y}` or `{x = .., y = ..}`.
            let x = match p.get::<Value>(1)? {
                Value::Nil => field(&p, "x", WHAT, i + 1)?,
                v => number(v, "1", WHAT, i + 1)?,
            };
            let y = match p.get::<Value>(2)? {
                Value::Nil => field(&p, "y", WHAT, i + 1)?,
                v => number(v, "2", WHAT, i + 1)?,
            };
            pts.push((x, y));
        }
        let mut ser = Series::new(name, pts);
        if let Some(l) = s.get::<Option<Vec<String>>>("labels")? {
            ser = ser.with_labels(l);
        }
        if s.get::<Option<bool>>("dashed")?.unwrap_or(false) {
            ser = ser.dashed();
        }
        sizes.push(s.get::<Option<Vec<f64>>>("sizes")?.unwrap_or_default());
        all.push(ser);
    }
    let kind = match kind_name.as_str() {
        "line" => PlotKind::Line,
        "scatter" => PlotKind::Scatter,
        "bubble" => PlotKind::Bubble {
            sizes,
            size_label: o.string("size_label")?.unwrap_or_default(),
        },
        other => {
            return Err(o.error(format!(
                "option 'kind': expected line, scatter or bubble, got '{other}'"
            )))
        }
    };
    let mut spec = PlotSpec::new(
        o.string("title")?.unwrap_or_default(),
        o.string("x")?.unwrap_or_default(),
        o.string("y")?.unwrap_or_default(),
        kind,
    );
    spec.series = all;
    spec.log_x = o.bool("log_x")?.unwrap_or(false);
    spec.log_y = o.bool("log_y")?.unwrap_or(false);
    sized(&o, &mut spec)?;
    written(lua, write_plot(&spec, Path::new(&out)).map_err(lua_err)?)
}

/// `report.bars{rows = {{label, value}, ...}, unit=, decimals=, width=}`: a text bar chart
/// ([`crate::report::term::bar_chart`]).
fn bars(opts: Table) -> mlua::Result<String> {
    const WHAT: &str = "rawrxd.report.bars";
    let o = Opts::new(opts, WHAT, &["rows", "unit", "decimals", "width"])?;
    let rows: Table = match o.value("rows")? {
        Value::Table(t) => t,
        _ => return Err(o.error("option 'rows' (a list of {label, value}) is required")),
    };
    let mut data = Vec::new();
    for (i, r) in rows.sequence_values::<Table>().enumerate() {
        let r = r?;
        let label = r.get::<Option<String>>(1)?.unwrap_or_default();
        data.push((label, number(r.get::<Value>(2)?, "2", WHAT, i + 1)?));
    }
    let decimals = o.int("decimals", 0)?.unwrap_or(1);
    let width = o.int("width", 1)?.unwrap_or(72);
    Ok(crate::report::term::bar_chart(
        &data,
        &o.string("unit")?.unwrap_or_default(),
        usize::try_from(decimals).unwrap_or(1),
        usize::try_from(width).unwrap_or(72),
    ))
}

/// Adds the `report` table to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "table",
        lua.create_function(|lua, spec: Table| {
            let f = fmt(lua)?;
            let print = !matches!(spec.get::<Option<bool>>("print")?, Some(false));
            if print {
                let text: String = f.get::<Function>("text")?.call(spec.clone())?;
                let mut out = std::io::stdout().lock();
                // A closed stdout (a pipe to `head`) is not the script's error.
                let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
            }
            f.get::<Function>("markdown")?.call::<String>(spec)
        })?,
    )?;
    t.set(
        "curve",
        lua.create_function(|lua, opts: Table| curve(lua, opts))?,
    )?;
    t.set(
        "plot",
        lua.create_function(|lua, opts: Table| plot(lua, opts))?,
    )?;
    t.set("bars", lua.create_function(|_, opts: Table| bars(opts))?)?;
    t.set(
        "sparkline",
        lua.create_function(|_, (values, width): (Vec<f64>, Option<usize>)| {
            Ok(crate::report::term::sparkline(&values, width.unwrap_or(60)))
        })?,
    )?;
    module.set("report", t)?;
    Ok(())
}
