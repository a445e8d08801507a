use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `connect() to 127.0.0.1:8080 failed (22: Invalid argument) while connecting to
    /// upstream`, or any other `connect()` failure whose errno is none of those with a cause of
    /// their own (refused, no such file, permission, backlog, timeout, unreachable, no free
    /// port, reset). nginx often writes these at `[crit]`: the kernel refused the connect
    /// before any packet left (an address of the wrong family for `proxy_bind`, a broadcast
    /// or otherwise unusable address, an exhausted resource).
    ///
    /// ## Why it causes 502
    /// The connect fails at once; nginx marks the peer failed, tries the next server if any,
    /// and answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The failures in the error log, with nginx's errno and text, and the `*_pass` line.
    ///
    /// ## Fix
    /// Read the errno: `(22: Invalid argument)` usually means the upstream's address cannot be
    /// used from the local address nginx binds (`proxy_bind`) or is not a unicast address;
    /// `(9: Bad file descriptor)` or `(105: No buffer space available)` point at the host's
    /// resources. Check the address in the `*_pass`, `proxy_bind`, and `dmesg`.
    pub struct ConnectFailed = "connect-failed", "nginx's connect to the upstream failed with an uncommon error";
    time = "5-10 min", risk = "low";
}

impl Cause for ConnectFailed {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectFailed]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let errno = g
            .log
            .and_then(|l| errno_of(&l.first_line.text))
            .unwrap_or("an uncommon error");
        let mut f = g.finding(
            self,
            format!("nginx could not connect to {up}: {errno}"),
            backend_fix(
                self,
                format!("find why the kernel refuses nginx's connect to {up} ({errno})"),
                vec![
                    format!("check the address in the `*_pass` and any `proxy_bind`: is {up} a unicast address of the same family as the address nginx binds?"),
                    "read the kernel's log at the time of the failures: `dmesg -T | tail -50`".to_string(),
                ],
                vec!["dmesg -T".to_string(), "ss -s".to_string()],
            ),
        );
        f.evidence.push(Evidence::other(
            "log",
            "error log".to_string(),
            format!("connect() failed with {errno}: not a refusal, a timeout or a missing socket, so nothing here says the backend is down"),
        ));
        Some(f)
    }
}

/// `22: Invalid argument` from `connect() ... failed (22: Invalid argument) while ...`.
pub(crate) fn errno_of(line: &str) -> Option<&str> {
    let i = line.find("failed (")? + "failed (".len();
    let n = line[i..].find(')')?;
    Some(&line[i..i + n])
}

#[cfg(test)]
mod tests {
    use medic_parse::error_log::FailureClass;

    use crate::facts::LogLine;
    use crate::rules::cause::tests::{log_group, post_mortem, top};

    #[test]
    fn fires_with_nginx_errno() {
        let mut g = log_group(FailureClass::ConnectFailed, Some("127.0.0.1:8080"), None, 1);
        g.first_line = LogLine {
            source: "/var/log/nginx/error.log:3".into(),
            text: "2026/11/20 14:32:10 [crit] 7#7: *3 connect() to 127.0.0.1:8080 failed (22: Invalid argument) while connecting to upstream".into(),
        };
        let f = top(&post_mortem(vec![g]));
        assert_eq!((f.id, f.status), ("connect-failed", Some(502)));
        assert!(f.title.contains("22: Invalid argument"), "{}", f.title);
    }
}
