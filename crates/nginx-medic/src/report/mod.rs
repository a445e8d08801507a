//! Reporters: the printers never know how the data was parsed.

pub mod diagnose_text;
pub mod html;
pub mod lint_text;
pub mod sarif;
pub mod text;

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
