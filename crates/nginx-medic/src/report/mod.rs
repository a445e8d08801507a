//! Reporters: the printers never know how the data was parsed.

pub mod text;
