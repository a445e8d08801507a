//! The pure logic of nginx-medic: facts in, findings out. Nothing here opens a socket or a file.
//!
//! - [`logs`]: summaries of error and access logs (failure class x upstream x minute, 5xx by
//!   origin, the join of both logs), as chunk sinks for [`medic_parse::input`].
//! - [`topk`]: bounded counting of the most frequent requests and clients.

pub mod hashkey;
pub mod logs;
pub mod topk;

/// The catalog's failure classes (`causes.md` §1), defined by the parser that produces them.
pub use medic_parse::error_log::FailureClass;
