use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct ConnectPermission = "connect-permission", "PLACEHOLDER";
}

impl Cause for ConnectPermission {}
