use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct HeaderTooBig = "header-too-big", "PLACEHOLDER";
}

impl Cause for HeaderTooBig {}
