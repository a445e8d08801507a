use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct SocketBacklog = "socket-backlog", "PLACEHOLDER";
}

impl Cause for SocketBacklog {}
