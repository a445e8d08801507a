use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct SocketMissing = "socket-missing", "PLACEHOLDER";
}

impl Cause for SocketMissing {}
