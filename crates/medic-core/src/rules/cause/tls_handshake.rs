use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct TlsHandshake = "tls-handshake", "PLACEHOLDER";
}

impl Cause for TlsHandshake {}
