use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct Backend5xx = "backend-5xx", "PLACEHOLDER";
}

impl Cause for Backend5xx {}
