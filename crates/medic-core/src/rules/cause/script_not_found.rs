use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct ScriptNotFound = "script-not-found", "PLACEHOLDER";
}

impl Cause for ScriptNotFound {}
