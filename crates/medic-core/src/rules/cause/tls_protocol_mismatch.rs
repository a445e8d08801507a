use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct TlsProtocolMismatch = "tls-protocol-mismatch", "PLACEHOLDER";
}

impl Cause for TlsProtocolMismatch {}
