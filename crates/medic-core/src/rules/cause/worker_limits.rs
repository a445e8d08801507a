use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct WorkerLimits = "worker-limits", "PLACEHOLDER";
}

impl Cause for WorkerLimits {}
