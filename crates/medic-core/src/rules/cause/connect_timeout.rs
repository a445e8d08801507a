use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct ConnectTimeout = "connect-timeout", "PLACEHOLDER";
}

impl Cause for ConnectTimeout {}
