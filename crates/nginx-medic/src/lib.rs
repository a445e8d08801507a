//! nginx-medic: the CLI, the gatherers that read the host, and the reporters.
//!
//! `main.rs` only calls [`cli::main`]. Parsing lives in `medic-parse`, logic in `medic-core`;
//! this crate wires them to files, terminals and (later) the live host.

pub mod alloc;
pub mod bundle;
pub mod cli;
pub mod config_lint;
pub mod config_parse;
pub mod diagnose;
pub mod discover;
pub mod exec;
pub mod explain;
pub mod fix;
pub mod generate;
pub mod host;
pub mod load;
pub mod logs;
pub mod probe;
pub mod record;
pub mod report;
pub mod watch;
