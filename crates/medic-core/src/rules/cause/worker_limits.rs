use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Finding};

rule! {
    /// ## What it detects
    /// nginx ran out of its own capacity: `1024 worker_connections are not enough` (every
    /// connection slot of a worker is in use; with proxying, each request takes two: the
    /// client's and the upstream's), or `(24: Too many open files)` from `socket()`,
    /// `accept4()` or `open()` (the worker's file descriptor limit, `ulimit -n`, is reached).
    ///
    /// ## Why it causes 502/500
    /// Without a free connection slot or descriptor, nginx cannot open the upstream connection
    /// (502 Bad Gateway or 500), or cannot accept the client at all (the connection is
    /// dropped). It comes with traffic peaks, slow upstreams that hold connections open, and
    /// long-lived connections (WebSockets).
    ///
    /// ## Evidence
    /// The entries in the error log (count, first and last, per minute) and the `*_pass` line
    /// when one is named.
    ///
    /// ## Fix
    /// Raise `worker_connections` in `events {}` (e.g. 4096) and the descriptor limit to at
    /// least twice that: `worker_rlimit_nofile 8192;` in the main context (and `LimitNOFILE=`
    /// in nginx's systemd unit); then `nginx -t` and `systemctl reload nginx`. If slow
    /// upstreams hold the connections, fix those too.
    pub struct WorkerLimits = "worker-limits", "nginx ran out of worker connections or file descriptors";
    time = "5 min", risk = "low";
}

impl Cause for WorkerLimits {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::WorkerLimits]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let text = g.log.map_or("", |l| l.first_line.text.as_str());
        let fds = text.contains("Too many open files");
        let title = if fds {
            "nginx workers ran out of file descriptors (24: Too many open files)".to_string()
        } else {
            "nginx ran out of worker_connections".to_string()
        };
        let mut steps = vec![
            "raise `worker_connections 4096;` in `events {}` (each proxied request uses two connections)".to_string(),
            "raise the descriptor limit above it: `worker_rlimit_nofile 8192;` in the main context, and `LimitNOFILE=8192` in nginx's systemd unit (`systemctl edit nginx`)".to_string(),
            "if slow upstreams hold connections open, fix those too (see the other findings)".to_string(),
        ];
        if fds {
            steps.swap(0, 1);
        }
        Some(g.finding(
            self,
            title,
            nginx_fix(
                self,
                "give nginx more connection slots and file descriptors",
                steps,
            ),
        ))
    }
}
