//! Timeouts: the effective read or send timeout of a pass, and the requests a group's lines name.

use crate::config::values::format_time;
use crate::config::Pass;
use crate::rules::group::Group;
use crate::rules::Evidence;

/// The effective read (or send) timeout of a pass: the directive's name and value.
pub(crate) fn timeout_of(pass: Option<&Pass>, send: bool) -> (String, String) {
    let kind = if send { "send" } else { "read" };
    match pass {
        Some(p) => {
            let v = if send {
                &p.settings.send_timeout
            } else {
                &p.settings.read_timeout
            };
            (
                format!("{}_{kind}_timeout", p.kind.prefix()),
                format_time(v.value),
            )
        }
        None => (format!("proxy_{kind}_timeout"), "60s".to_string()),
    }
}

/// The timeout as evidence: its directive, or a note that it is nginx's default.
pub(crate) fn timeout_evidence(pass: Option<&Pass>, send: bool) -> Evidence {
    let (directive, value) = timeout_of(pass, send);
    let src = pass.and_then(|p| {
        if send {
            p.settings.send_timeout.src.as_ref()
        } else {
            p.settings.read_timeout.src.as_ref()
        }
    });
    match src {
        Some(src) => Evidence::config(src),
        None => Evidence::other(
            "config",
            "default".to_string(),
            format!("{directive} {value} (nginx's default: no directive sets it)"),
        ),
    }
}

/// The requests the group's log lines name (`request: "GET /slow.php HTTP/1.1"`), without the
/// protocol.
pub(crate) fn requests_of(g: &Group<'_>) -> Vec<String> {
    let Some(log) = g.log else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for line in std::iter::once(&log.first_line).chain(log.last_line.as_ref()) {
        if let Some(r) = request_in(&line.text) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// `GET /slow.php` from an error-log line's `request: "GET /slow.php HTTP/1.1"`.
pub(crate) fn request_in(line: &str) -> Option<String> {
    let i = line.find(", request: \"")? + ", request: \"".len();
    let r = &line[i..];
    let r = &r[..r.find('"').unwrap_or(r.len())];
    let r = r.rsplit_once(" HTTP/").map_or(r, |(head, _)| head);
    (!r.is_empty()).then(|| r.to_string())
}
