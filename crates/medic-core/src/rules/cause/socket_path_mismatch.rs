use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct SocketPathMismatch = "socket-path-mismatch", "PLACEHOLDER";
}

impl Cause for SocketPathMismatch {}
