use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct CertExpiresSoon = "cert-expires-soon", "PLACEHOLDER";
}

impl Cause for CertExpiresSoon {}
