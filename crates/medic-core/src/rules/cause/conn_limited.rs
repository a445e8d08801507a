use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct ConnLimited = "conn-limited", "PLACEHOLDER";
}

impl Cause for ConnLimited {}
