use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct PrematureClose = "premature-close", "PLACEHOLDER";
}

impl Cause for PrematureClose {}
