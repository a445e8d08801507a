use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct ClientClosed = "client-closed", "PLACEHOLDER";
}

impl Cause for ClientClosed {}
