use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct BackendCrash = "backend-crash", "PLACEHOLDER";
}

impl Cause for BackendCrash {}
