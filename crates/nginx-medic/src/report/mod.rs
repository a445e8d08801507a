//! Reporters: the printers never know how the data was parsed.

pub mod diagnose_text;
pub mod html;
pub mod lint_text;
pub mod sarif;
pub mod text;

use std::io::{self, Write};
use std::os::fd::AsFd;

/// Standard output without its line buffering, for reports of megabytes: `io::stdout()`
/// searches each write for its last newline and writes twice, up to it and the rest later
/// (`config lint` on a 5,000-server config: 540 writes for 2.2 MB of JSON; `config parse`: 10 M
/// instructions of searching for 9 MB). A duplicate of its descriptor writes straight through;
/// when none can be made, the locked standard output is the fallback.
pub fn unbuffered_stdout() -> Box<dyn Write> {
    let stdout = io::stdout();
    match stdout.as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(stdout.lock()),
    }
}

/// ANSI styling, only when color is on (a terminal, or `--color always`).
pub(crate) struct Style {
    pub color: bool,
}

impl Style {
    pub fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub fn blue(&self, s: &str) -> String {
        self.paint("1;34", s)
    }
}
