use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct TlsSniRequired = "tls-sni-required", "PLACEHOLDER";
}

impl Cause for TlsSniRequired {}
