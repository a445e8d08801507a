use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct TlsExpired = "tls-expired", "PLACEHOLDER";
}

impl Cause for TlsExpired {}
