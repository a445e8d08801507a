use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct DnsFailure = "dns-failure", "PLACEHOLDER";
}

impl Cause for DnsFailure {}
