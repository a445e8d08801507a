use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct TlsUntrusted = "tls-untrusted", "PLACEHOLDER";
}

impl Cause for TlsUntrusted {}
