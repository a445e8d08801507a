//! nginx configuration: lexer, parser, includes, `nginx -T` input, crossplane-compatible output.

pub mod ast;

pub use ast::{Config, ConfigError, ConfigFile, Directive, FileId};
