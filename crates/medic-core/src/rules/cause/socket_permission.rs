use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct SocketPermission = "socket-permission", "PLACEHOLDER";
}

impl Cause for SocketPermission {}
