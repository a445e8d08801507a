use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct PortsExhausted = "ports-exhausted", "PLACEHOLDER";
}

impl Cause for PortsExhausted {}
