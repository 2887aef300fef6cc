//! The command line's subcommands. Each module holds one subcommand's clap arguments and its
//! `run`; errors are `anyhow` here and nowhere in the library.

pub mod results;
pub mod script;
