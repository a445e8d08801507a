use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct ConnectUnreachable = "connect-unreachable", "PLACEHOLDER";
}

impl Cause for ConnectUnreachable {}
