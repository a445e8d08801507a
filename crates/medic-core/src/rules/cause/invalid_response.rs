use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct InvalidResponse = "invalid-response", "PLACEHOLDER";
}

impl Cause for InvalidResponse {}
