//! Hot reload: the script and every Lua file it `require`s are watched; at safe points the host
//! re-evaluates the changed modules and, when that works, swaps them in and bumps the generation.
//!
//! Invariants:
//! - Files are tracked when the Lua file searcher (`package.searchers[2]`) finds them, so every
//!   module loaded through `require` is watched, including ones required by a reloaded module.
//! - The watcher watches each tracked file's *directory*: editors that save by writing a new file
//!   and renaming it over the old one keep being seen, and a watch is never lost after an error
//!   (no re-arming needed). Events are debounced: a file is reloaded once no event for it has
//!   arrived for [`DEBOUNCE`]; a file whose content did not change is not reloaded.
//! - A changed module is evaluated in a fresh environment (a new `_ENV` whose reads fall back to
//!   `_G`). On failure the error is logged as `file:line: message` and the last good version stays
//!   in `package.loaded`; the same broken content is not retried, the next edit is. On success its
//!   value replaces `package.loaded[name]`, globals it defined are copied into `_G`, the generation
//!   goes up by one and the `on_reload` callbacks run.
//! - The main script is never re-run (that would restart the plan); an edit to it is syntax-checked
//!   and reported, and applies on the next start.
//! - Reloads happen only inside [`poll_reload`], never concurrently with script code; the reloader's
//!   lock is never held while Lua runs, and a poll from inside a reload is a no-op.
//! - Data files (hybrid schemes a loaded engine uses) are watched the same way ([`watch_data`]);
//!   a change calls their Rust hooks instead of `require`. A hook that applies the change counts
//!   as a successful reload (generation +1, `on_reload` runs, with the file in `info.files`); one
//!   that fails is reported like a broken module and the old state stays.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mlua::{Function, Lua, Table, Value};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::error::describe;

/// How long a file must be quiet after an event before it is reloaded.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// What a data-file hook made of a changed file.
pub(crate) enum DataOutcome {
    /// The change took effect; the message says what changed.
    Applied(String),
    /// The new content was rejected (`file:line: message`); the old state stays.
    Failed(String),
    /// The hook's owner is gone (an unloaded engine): drop the hook.
    Gone,
}

/// A hook called with a watched data file's path when its content changed. Runs inside
/// [`poll_reload`], with no reloader lock held.
pub(crate) type DataHook = Box<dyn FnMut(&Path) -> DataOutcome + Send>;

/// Registry key of the list of `on_reload` callbacks.
const CALLBACKS_KEY: &str = "rawrxd.on_reload";

/// A file being watched.
struct Tracked {
    /// The module name `require` used; `None` for the main script.
    module: Option<String>,
    /// The path as Lua knows it (chunk names and error messages use it).
    display: String,
    /// Hash of the content last loaded or attempted.
    hash: u64,
    /// A data file (its hooks handle changes), not Lua code.
    data: bool,
}

/// The watcher and what it watches; shared through the Lua app data.
pub(crate) struct Reloader {
    watcher: Option<RecommendedWatcher>,
    events: Receiver<notify::Result<notify::Event>>,
    dirs: HashSet<PathBuf>,
    files: HashMap<PathBuf, Tracked>,
    pending: HashMap<PathBuf, Instant>,
    debounce: Duration,
    busy: bool,
    generation: u64,
    last_error: Option<String>,
    hooks: HashMap<PathBuf, Vec<DataHook>>,
}

/// The handle stored in the Lua app data.
#[derive(Clone)]
pub(crate) struct ReloadHandle(Arc<Mutex<Reloader>>);

impl ReloadHandle {
    fn lock(&self) -> MutexGuard<'_, Reloader> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that matters
        // more than stopping hot reload would.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The key a file is tracked under: its canonical directory joined with its name, which is the
/// path directory-watch events carry.
fn watch_key(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = dir.canonicalize().ok()?;
    Some((dir.join(name), dir))
}

impl Reloader {
    fn new(debounce: Duration) -> Reloader {
        let (tx, rx) = channel();
        let watcher = match notify::recommended_watcher(move |ev| {
            // The receiver lives as long as the host; a send after it is gone is moot.
            let _ = tx.send(ev);
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                ::log::warn!(target: "rawrxd::reload", "hot reload disabled: cannot watch files: {e}");
                None
            }
        };
        Reloader {
            watcher,
            events: rx,
            dirs: HashSet::new(),
            files: HashMap::new(),
            pending: HashMap::new(),
            debounce,
            busy: false,
            generation: 0,
            last_error: None,
            hooks: HashMap::new(),
        }
    }

    /// Starts watching `path` (as Lua names it) for module `module`.
    fn track(&mut self, path: &str, module: Option<String>) {
        self.track_file(path, module, false);
    }

    /// Starts watching `path`; returns its key.
    fn track_file(&mut self, path: &str, module: Option<String>, data: bool) -> Option<PathBuf> {
        let (key, dir) = watch_key(Path::new(path))?;
        let hash = std::fs::read(&key).map(|b| content_hash(&b)).unwrap_or(0);
        if let Some(t) = self.files.get_mut(&key).filter(|t| t.data && data) {
            // Another engine on the same scheme: both see the next change.
            t.hash = hash;
            return Some(key);
        }
        self.files.insert(
            key.clone(),
            Tracked {
                module,
                display: path.to_string(),
                hash,
                data,
            },
        );
        if self.dirs.insert(dir.clone()) {
            if let Some(w) = &mut self.watcher {
                if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
                    ::log::warn!(
                        target: "rawrxd::reload",
                        "cannot watch {} for changes: {e}",
                        dir.display()
                    );
                }
            }
        }
        Some(key)
    }

    /// Moves watcher events into `pending` and returns the tracked files that have been quiet for
    /// the debounce interval.
    fn take_due(&mut self) -> Vec<PathBuf> {
        let now = Instant::now();
        while let Ok(ev) = self.events.try_recv() {
            let Ok(ev) = ev else { continue };
            if matches!(ev.kind, EventKind::Access(_)) {
                continue;
            }
            for p in ev.paths {
                if self.files.contains_key(&p) {
                    self.pending.insert(p, now);
                }
            }
        }
        let due: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= self.debounce)
            .map(|(p, _)| p.clone())
            .collect();
        for p in &due {
            self.pending.remove(p);
        }
        due
    }
}

/// What to re-evaluate: a file whose content changed since it was last loaded.
struct Change {
    key: PathBuf,
    data: bool,
    module: Option<String>,
    display: String,
    source: Vec<u8>,
}

/// Reads the due files and keeps those whose content changed (recording the new hash, so broken
/// content is attempted once).
fn changes(reloader: &mut Reloader, keys: Vec<PathBuf>) -> Vec<Change> {
    let mut out = Vec::new();
    for key in keys {
        let Some(t) = reloader.files.get_mut(&key) else {
            continue;
        };
        // A file mid-save may be missing for a moment; its re-creation brings a new event.
        let Ok(source) = std::fs::read(&key) else {
            continue;
        };
        let h = content_hash(&source);
        if h == t.hash {
            continue;
        }
        t.hash = h;
        out.push(Change {
            key,
            data: t.data,
            module: t.module.clone(),
            display: t.display.clone(),
            source,
        });
    }
    out
}

pub(crate) fn handle(lua: &Lua) -> Option<ReloadHandle> {
    lua.app_data_ref::<ReloadHandle>().map(|h| h.clone())
}

/// Installs the reloader: app data, the searcher wrapper that tracks required files, and tracking
/// of the main script `script` (as Lua names it).
pub(crate) fn install(lua: &Lua, script: &str, debounce: Duration) -> mlua::Result<()> {
    let reloader = ReloadHandle(Arc::new(Mutex::new(Reloader::new(debounce))));
    reloader.lock().track(script, None);
    lua.set_app_data(reloader);
    lua.set_named_registry_value(CALLBACKS_KEY, lua.create_table()?)?;
    let track = lua.create_function(|lua, (name, path): (String, String)| {
        if let Some(h) = handle(lua) {
            h.lock().track(&path, Some(name));
        }
        Ok(())
    })?;
    lua.load(
        r#"
        local track = ...
        local searchers = package.searchers
        local find_lua_file = searchers[2]
        searchers[2] = function(name)
          local loader, path = find_lua_file(name)
          if type(loader) == "function" and type(path) == "string" then track(name, path) end
          return loader, path
        end
        "#,
    )
    .set_name("=rawrxd.reload")
    .call::<()>(track)
}

/// Watches the data file at `path` (as the script named it): when its content changes, `hook`
/// runs at the next safe point. The content now on disk counts as already applied.
pub(crate) fn watch_data(lua: &Lua, path: &Path, hook: DataHook) {
    let Some(h) = handle(lua) else {
        return;
    };
    let mut r = h.lock();
    if let Some(key) = r.track_file(&path.to_string_lossy(), None, true) {
        r.hooks.entry(key).or_default().push(hook);
    }
}

/// Runs the hooks of a changed data file (no lock held while they run); hooks whose owner is
/// gone are dropped.
fn run_hooks(h: &ReloadHandle, key: &Path) -> Vec<DataOutcome> {
    let mut hooks = h.lock().hooks.remove(key).unwrap_or_default();
    let outcomes: Vec<DataOutcome> = hooks.iter_mut().map(|f| f(key)).collect();
    let mut kept = Vec::new();
    for (hook, o) in hooks.into_iter().zip(&outcomes) {
        if !matches!(o, DataOutcome::Gone) {
            kept.push(hook);
        }
    }
    let mut r = h.lock();
    // Hooks registered while these ran come after the kept ones.
    let added = r.hooks.remove(key).unwrap_or_default();
    kept.extend(added);
    if !kept.is_empty() {
        r.hooks.insert(key.to_path_buf(), kept);
    }
    outcomes
}

/// The current configuration generation (0 until the first successful reload).
pub fn generation(lua: &Lua) -> u64 {
    handle(lua).map_or(0, |h| h.lock().generation)
}

/// The error of the last failed reload, if the last reload attempt failed.
pub fn last_error(lua: &Lua) -> Option<String> {
    handle(lua).and_then(|h| h.lock().last_error.clone())
}

/// A reload safe point: applies changes to watched files that have settled. Returns the new
/// generation when something was reloaded. Long-running APIs call this between iterations or
/// checkpoints. Errors in reloaded code are reported and do not fail the caller; the `Err` case is
/// reserved for a broken Lua state.
pub fn poll_reload(lua: &Lua) -> mlua::Result<Option<u64>> {
    let Some(h) = handle(lua) else {
        return Ok(None);
    };
    let due = {
        let mut r = h.lock();
        if r.busy {
            return Ok(None);
        }
        r.take_due()
    };
    if due.is_empty() {
        return Ok(None);
    }
    reload_files(lua, &h, due)
}

/// Reloads the tracked files at `paths` now, skipping the watcher and the debounce (content that
/// did not change since it was loaded is still skipped).
pub fn reload_now(lua: &Lua, paths: &[&Path]) -> mlua::Result<Option<u64>> {
    let Some(h) = handle(lua) else {
        return Ok(None);
    };
    let keys = paths
        .iter()
        .filter_map(|p| watch_key(p).map(|k| k.0))
        .collect();
    reload_files(lua, &h, keys)
}

fn reload_files(lua: &Lua, h: &ReloadHandle, keys: Vec<PathBuf>) -> mlua::Result<Option<u64>> {
    let work = {
        let mut r = h.lock();
        if r.busy {
            return Ok(None);
        }
        let work = changes(&mut r, keys);
        if work.is_empty() {
            return Ok(None);
        }
        r.busy = true;
        work
    };
    let result = apply(lua, h, work);
    h.lock().busy = false;
    result
}

/// Evaluates the changes (no lock held) and swaps in the ones that succeeded.
fn apply(lua: &Lua, h: &ReloadHandle, work: Vec<Change>) -> mlua::Result<Option<u64>> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    let mut data_applied: Vec<(String, String)> = Vec::new();
    for c in work {
        if c.data {
            for outcome in run_hooks(h, &c.key) {
                match outcome {
                    DataOutcome::Applied(msg) => data_applied.push((c.display.clone(), msg)),
                    DataOutcome::Failed(e) => errors.push(e),
                    DataOutcome::Gone => {}
                }
            }
            continue;
        }
        let chunk = lua
            .load(c.source.as_slice())
            .set_name(format!("@{}", c.display));
        let Some(module) = c.module else {
            match chunk.into_function() {
                Ok(_) => ::log::warn!(
                    target: "rawrxd::reload",
                    "{} changed: the main script is not re-run; the edit applies on the next start",
                    c.display
                ),
                Err(e) => errors.push(describe(&e)),
            }
            continue;
        };
        let env = lua.create_table()?;
        let meta = lua.create_table()?;
        meta.set("__index", lua.globals())?;
        env.set_metatable(Some(meta))?;
        match chunk
            .set_environment(env.clone())
            .call::<Value>((module.as_str(), c.display.as_str()))
        {
            Ok(v) => loaded.push((module, c.display, c.key, v, env)),
            Err(e) => errors.push(describe(&e)),
        }
    }
    for e in &errors {
        ::log::error!(target: "rawrxd::reload", "reload failed, keeping the last good version: {e}");
    }
    if loaded.is_empty() && data_applied.is_empty() {
        if let Some(e) = errors.pop() {
            h.lock().last_error = Some(e);
        }
        return Ok(None);
    }

    let package_loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    let globals = lua.globals();
    let modules = lua.create_table()?;
    let files = lua.create_table()?;
    for (module, display, _key, value, env) in &loaded {
        let value = if value.is_nil() {
            Value::Boolean(true)
        } else {
            value.clone()
        };
        package_loaded.set(module.as_str(), value)?;
        for pair in env.pairs::<Value, Value>() {
            let (k, v) = pair?;
            globals.raw_set(k, v)?;
        }
        modules.push(module.as_str())?;
        files.push(display.as_str())?;
    }
    for (display, _) in &data_applied {
        files.push(display.as_str())?;
    }
    let generation = {
        let mut r = h.lock();
        r.generation += 1;
        r.last_error = errors.pop();
        r.generation
    };
    let mut names: Vec<&str> = loaded.iter().map(|l| l.0.as_str()).collect();
    names.extend(data_applied.iter().map(|d| d.0.as_str()));
    ::log::info!(
        target: "rawrxd::reload",
        "reloaded {} (generation {generation})",
        names.join(", ")
    );
    for (display, msg) in &data_applied {
        ::log::info!(target: "rawrxd::reload", "{display}: {msg}");
    }
    super::results::on_generation(lua, generation, &names);

    let info = lua.create_table()?;
    info.set("generation", generation)?;
    info.set("modules", modules)?;
    info.set("files", files)?;
    let callbacks: Table = lua.named_registry_value(CALLBACKS_KEY)?;
    for f in callbacks.sequence_values::<Function>() {
        if let Err(e) = f?.call::<()>(info.clone()) {
            ::log::error!(target: "rawrxd::reload", "on_reload callback failed: {}", describe(&e));
        }
    }
    Ok(Some(generation))
}

/// Adds `generation()`, `on_reload(fn)`, `poll_reload()` and `reload_error()` to the host module.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    module.set(
        "generation",
        lua.create_function(|lua, ()| Ok(generation(lua)))?,
    )?;
    module.set(
        "on_reload",
        lua.create_function(|lua, f: Function| {
            let callbacks: Table = lua.named_registry_value(CALLBACKS_KEY)?;
            callbacks.push(f)
        })?,
    )?;
    module.set(
        "poll_reload",
        lua.create_function(|lua, ()| poll_reload(lua))?,
    )?;
    module.set(
        "reload_error",
        lua.create_function(|lua, ()| Ok(last_error(lua)))?,
    )?;
    Ok(())
}
