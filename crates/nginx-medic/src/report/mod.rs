//! Reporters: the printers never know how the data was parsed.

pub mod lint_text;
pub mod sarif;
pub mod text;
