//! Pure parsers for nginx-medic: bytes in, spans out.
//!
//! - [`error_log`]: the error-log entry grammar and the failure classifier (`causes.md` §1).
//! - [`access_log`]: access-log lines, parsed by a compiled `log_format`.
//! - [`upstream`]: upstream names as nginx writes them, and its multi-value `$upstream_*` lists.
//! - [`fpm`]: PHP-FPM configuration (pools, includes) and the FPM error-log events.
//! - [`input`]: files, globs, rotated series, gzip and stdin, read in parallel where it pays.
//! - [`time`]: nginx's wall-clock timestamps.
//!
//! Nothing here panics on input: every parser returns `None`/`Err` for bytes it does not
//! understand, and the fuzz targets in `fuzz/` hold it to that.
//!
//! ```
//! use medic_parse::error_log::{parse, classify};
//! let e = parse(b"2026/11/20 14:32:10 [crit] 7#7: *3 connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) while connecting to upstream, client: 10.0.0.1, server: _, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"x\"").unwrap();
//! assert_eq!(classify(&e).id(), "connect-permission");
//! assert_eq!(medic_parse::upstream::target(e.context.upstream.unwrap()), b"unix:/run/php/php8.2-fpm.sock");
//! ```

pub mod access_log;
pub mod config;
pub mod error_log;
pub mod fpm;
pub mod input;
pub mod time;
pub mod upstream;
