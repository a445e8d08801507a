use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct ConfigInvalid = "config-invalid", "PLACEHOLDER";
}

impl Cause for ConfigInvalid {}
