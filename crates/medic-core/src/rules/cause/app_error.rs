use super::Cause;
use crate::rules::rule;

rule! {
    /// ## What it detects
    /// PLACEHOLDER
    pub struct AppError = "app-error", "PLACEHOLDER";
}

impl Cause for AppError {}
