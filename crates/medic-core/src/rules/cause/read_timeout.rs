use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct ReadTimeout = "read-timeout", "PLACEHOLDER";
}

impl Cause for ReadTimeout {}
