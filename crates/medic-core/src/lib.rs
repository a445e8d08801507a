//! The pure logic of nginx-medic: facts in, findings out. Nothing here opens a socket or a file.
//!
//! - [`logs`]: summaries of error and access logs (failure class x upstream x minute, 5xx by
//!   origin, the join of both logs), as chunk sinks for [`medic_parse::input`].
//! - [`facts`]: what the live probes saw (listeners, connects, HTTP/FastCGI answers).
//! - [`config`]: the effective nginx configuration (inheritance applied) of every upstream pass.
//! - [`rules`]: the rule catalog: one file per rule, findings as in `causes.md` §3.
//! - [`topk`]: bounded counting of the most frequent requests and clients.

pub mod backend;
pub mod config;
pub mod diagnose;
pub mod facts;
pub mod hashkey;
pub mod incidents;
pub mod logs;
pub mod rules;
pub mod topk;

/// The catalog's failure classes (`causes.md` §1), defined by the parser that produces them.
pub use medic_parse::error_log::FailureClass;
