use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct SendTimeout = "send-timeout", "PLACEHOLDER";
}

impl Cause for SendTimeout {}
