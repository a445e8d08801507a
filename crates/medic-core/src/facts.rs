//! Facts gathered from the live host by `nginx-medic probe`: plain, serialisable data.
//!
//! The probes (in the `nginx-medic` crate) fill these; rules read them. Nothing here does I/O.
//! A probe that could not look records why ([`Skipped`], [`Connect::Denied`], ...) instead of
//! leaving a field empty, so a rule never mistakes "not seen" for "not there".
//!
//! ```
//! use medic_core::facts::{Connect, TcpFact};
//! let f = TcpFact { address: "127.0.0.1:8080".into(), connect: Connect::Refused };
//! assert_eq!(f.connect.label(), "refused");
//! ```

mod diagnosis;
mod listeners;
mod merge;
mod probes;
pub mod supervisor;
pub mod tls;

pub use diagnosis::*;
pub use listeners::*;
pub use merge::Merged;
pub use probes::*;

use serde::{Deserialize, Serialize};

/// A check that could not run, or ran partly, and why (`causes.md` §3 `skipped`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub check: String,
    pub why: String,
}

impl Skipped {
    pub fn new(check: impl Into<String>, why: impl Into<String>) -> Skipped {
        Skipped {
            check: check.into(),
            why: why.into(),
        }
    }
}
