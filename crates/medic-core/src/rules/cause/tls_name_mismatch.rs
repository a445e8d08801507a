use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct TlsNameMismatch = "tls-name-mismatch", "PLACEHOLDER";
}

impl Cause for TlsNameMismatch {}
