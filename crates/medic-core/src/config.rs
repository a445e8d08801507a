//! The effective nginx configuration: what each upstream-bound location really uses.
//!
//! [`build`] turns the parsed tree ([`medic_parse::config::Config`]) into a [`Model`]: the
//! `http`/`server`/`location`/`upstream`/`stream` contexts with nginx's inheritance applied,
//! every `*_pass` with its target and effective timeouts, buffers, headers, TLS settings and
//! limits, plus what the log engine needs (`user`, `error_log`, `access_log` + `log_format`,
//! `pid`, `listen`). Pure: no file is opened here; includes were resolved by the parser.
//!
//! ```
//! use std::sync::Arc;
//!
//! use medic_core::config::{build, BuildOptions};
//! use medic_parse::config::{Config, ConfigFile, Directive};
//!
//! let d = |name: &str, args: &[&str], line: u32, block: Option<Vec<Directive>>| Directive {
//!     name: name.into(),
//!     args: args.iter().map(|&a| a.into()).collect(),
//!     line,
//!     block: block.map(Into::into),
//!     ..Directive::default()
//! };
//! let location = d("location", &["/"], 3, Some(vec![d("proxy_pass", &["http://127.0.0.1:8080"], 4, None)]));
//! let server = d("server", &[], 2, Some(vec![location]));
//! let http = d("http", &[], 1, Some(vec![d("proxy_read_timeout", &["5s"], 2, None), server]));
//! let cfg = Arc::new(Config { files: vec![ConfigFile { path: "nginx.conf".into(), parsed: vec![http], ..Default::default() }] });
//! let model = build(&cfg, &BuildOptions::default());
//! assert_eq!(model.passes[0].target.display(), "127.0.0.1:8080");
//! assert_eq!(model.passes[0].settings.read_timeout.value.as_secs(), 5);
//! assert!(model.passes[0].settings.connect_timeout.is_default());
//! ```

mod build;
pub mod model;
pub mod values;

pub use build::{build, directive_text, BuildOptions, DEFAULT_TIMEOUT, PAGE};
pub use model::*;

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
