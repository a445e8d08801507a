use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct UpstreamReset = "upstream-reset", "PLACEHOLDER";
}

impl Cause for UpstreamReset {}
