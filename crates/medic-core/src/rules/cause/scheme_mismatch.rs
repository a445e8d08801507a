use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct SchemeMismatch = "scheme-mismatch", "PLACEHOLDER";
}

impl Cause for SchemeMismatch {}
