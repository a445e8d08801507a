use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct TlsVerify = "tls-verify", "PLACEHOLDER";
}

impl Cause for TlsVerify {}
