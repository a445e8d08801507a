use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct SlowBackend = "slow-backend", "PLACEHOLDER";
}

impl Cause for SlowBackend {}
