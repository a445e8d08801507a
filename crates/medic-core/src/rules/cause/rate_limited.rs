use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct RateLimited = "rate-limited", "PLACEHOLDER";
}

impl Cause for RateLimited {}
