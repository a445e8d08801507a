use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct SelinuxDenied = "selinux-denied", "PLACEHOLDER";
}

impl Cause for SelinuxDenied {}
