use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Finding, Severity};

rule! {
    /// ## What it detects
    /// `FastCGI sent in stderr: "PHP message: PHP Fatal error:  Uncaught Error: ..."`: the
    /// application wrote errors to the FastCGI stderr stream and nginx logged them. Fatal and
    /// parse errors end the request; warnings, notices and deprecations do not (those are
    /// reported as a warning). `Primary script unknown` is `script-not-found`.
    ///
    /// ## Why it causes 500
    /// nginx only relays: PHP answers 500 Internal Server Error when a fatal error happens
    /// before any output (or whatever status the script had sent), and nginx passes that on.
    /// The status is the application's, so it is not known from the error log.
    ///
    /// ## Evidence
    /// The messages in the error log (first and last, count, per minute) and the `fastcgi_pass`
    /// line.
    ///
    /// ## Fix
    /// Fix the application error the message names (file and line are in it); deploys that
    /// left a half-updated tree or a missing extension are common causes. The PHP-FPM pool's
    /// log and the application's own log have the full trace.
    pub struct AppError = "app-error", "the application (PHP) reported errors through FastCGI";
    time = "10 min", risk = "low";
}

impl Cause for AppError {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::FastcgiStderr]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the FastCGI backend");
        let message = g
            .log
            .and_then(|l| stderr_message(&l.first_line.text))
            .unwrap_or_default();
        let fatal = message.is_empty() || is_fatal(&message);
        let shown = shorten(&message, 160);
        let title = if shown.is_empty() {
            format!("the application behind {up} reported errors")
        } else {
            format!("the application behind {up} reported: {shown}")
        };
        let mut f = g.finding(
            self,
            title,
            backend_fix(self,
                "fix the application error the message names (its file and line)",
                vec![
                    "read the whole message and trace in the error log or the PHP-FPM pool's log".to_string(),
                    "after a deploy: a half-updated tree, a missing extension (`php -m`), a changed config".to_string(),
                    "fix the code or the environment, then reload PHP-FPM if its config changed".to_string(),
                ],
                vec!["php -m".to_string()]
            ),
        );
        f.status = None;
        if !fatal {
            f.severity = Severity::Warning;
        }
        Some(f)
    }
}

/// The text inside `FastCGI sent in stderr: "..."`.
fn stderr_message(line: &str) -> Option<String> {
    let open = "FastCGI sent in stderr: \"";
    let i = line.find(open)? + open.len();
    let rest = &line[i..];
    let end = rest
        .rfind("\" while ")
        .or_else(|| rest.rfind("\", client: "))
        .or_else(|| rest.rfind('"'))
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// Whether a PHP message ends the request (fatal, parse, uncaught) rather than warns.
fn is_fatal(m: &str) -> bool {
    let benign = ["PHP Warning", "PHP Notice", "PHP Deprecated", "PHP Strict"];
    let bad = [
        "Fatal error",
        "Parse error",
        "Uncaught",
        "Recoverable fatal",
    ];
    bad.iter().any(|b| m.contains(b)) || !benign.iter().any(|b| m.contains(b))
}

/// The first line of `s`, at most `max` characters, the `PHP message: ` prefix dropped.
fn shorten(s: &str, max: usize) -> String {
    let s = s.strip_prefix("PHP message: ").unwrap_or(s);
    let s = s
        .split("\\n")
        .next()
        .unwrap_or(s)
        .split('\n')
        .next()
        .unwrap_or(s);
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}...")
    }
}
