//! The Lua host: runs a test-plan script in one Lua 5.4 state (mlua), with `require "rawrxd"`
//! bound to the host's APIs, and hot-reloads the files the script requires.
//!
//! Layout (one module per Lua API, WezTerm style): [`host`] builds the state and the module table
//! from each API's `register`; [`args`], [`log`], [`time`], [`results`], [`reload`], [`model`],
//! [`engine`], [`bench`], [`probe`], [`quant`], [`report`], [`alerts`] and [`webhook`] are the APIs; [`error`] turns Lua
//! errors into `file:line: message` (and is `rawrxd.error_message`); `opts` reads option tables.
//!
//! Threading: a `Host` and its state are used from one thread at a time. Long work runs in Rust;
//! Lua is called at the edges. Long-running Rust APIs call [`poll_reload`] at their safe points.

pub mod alerts;
pub mod args;
pub mod bench;
pub mod engine;
pub mod error;
mod faults;
pub mod host;
pub mod log;
pub mod model;
mod opts;
pub mod pool;
pub mod probe;
pub mod quant;
pub mod reload;
pub mod report;
pub mod results;
pub mod soak;
pub mod time;
pub mod webhook;

pub use error::describe;
pub use host::{lib_lua_paths, Host, HostInfo, LUA_PATH_ENV};
pub use reload::{generation, poll_reload};

#[cfg(test)]
mod alerts_tests;
#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod tests;
