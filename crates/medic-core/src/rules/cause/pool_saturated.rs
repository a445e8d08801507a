use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct PoolSaturated = "pool-saturated", "PLACEHOLDER";
}

impl Cause for PoolSaturated {}
