use medic_parse::error_log::FailureClass;

use super::support::fpm::{in_window, master_log, pool_at, pool_events, pool_line};
use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// nginx lost the upstream connection mid-request (`recv() failed (104: Connection reset by
    /// peer)`, `upstream prematurely closed connection while reading response header from
    /// upstream`, `upstream prematurely closed FastCGI stdout`), and the host shows the
    /// backend process died at that time: the PHP-FPM master of the pool logged `WARNING:
    /// [pool www] child 1234 exited on signal 9 (SIGKILL)` (or `exited with code N`, or
    /// `execution timed out ... terminating` for `request_terminate_timeout`) within a minute
    /// of the failures, the kernel's OOM killer killed a process then, or systemd restarted
    /// the backend's unit. Live diagnosis only.
    ///
    /// ## Why it causes 502
    /// The process that was handling the request is gone: the kernel closes its sockets (a
    /// reset, or an end of stream before a complete answer) and nginx answers 502 Bad Gateway.
    /// Typical killers: the OOM killer (a memory leak, too many children for the RAM), PHP-FPM's
    /// own `request_terminate_timeout`, a segfault in an extension, a deploy's `kill -9`.
    ///
    /// ## Evidence
    /// The failures in the error log; the `*_pass` line; the PHP-FPM master's log line, the
    /// kernel OOM lines, or the unit's `NRestarts`.
    ///
    /// ## Fix
    /// Find the limit that was hit. Signal 9 without a deploy: the OOM killer (`journalctl -k |
    /// grep -i oom`): lower `pm.max_children` or fix the leak (`pm.max_requests = 500`
    /// recycles leaking children). Signal 11: a crashing extension (core dump, `php -m`).
    /// `execution timed out`: the script outran `request_terminate_timeout`.
    pub struct BackendCrash = "backend-crash", "the backend process died mid-request (killed, crashed or restarted)";
    time = "10-30 min", risk = "medium";
}

impl Cause for BackendCrash {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::UpstreamReset, FailureClass::PrematureClose]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        g.probes()?;
        let mut evidence = Vec::new();
        let mut what: Option<String> = None;
        let pool = pool_at(g);
        if let Some((m, p)) = pool {
            for e in pool_events(m, p)
                .filter(|e| matches!(e.kind.as_str(), "signal" | "exit-code" | "timed-out"))
                .filter(|e| !(e.kind == "exit-code" && e.value == Some(0)))
                .filter(|e| in_window(g, e.time.as_deref(), 60, 60))
            {
                if what.is_none() {
                    what = Some(match e.kind.as_str() {
                        "signal" => format!(
                            "a PHP-FPM child of pool [{}] was killed by signal {}{}",
                            p.name,
                            e.value.map_or("?".to_string(), |v| v.to_string()),
                            e.detail
                                .as_ref()
                                .map(|d| format!(" ({d})"))
                                .unwrap_or_default()
                        ),
                        "timed-out" => format!(
                            "PHP-FPM pool [{}] killed a child at request_terminate_timeout",
                            p.name
                        ),
                        _ => format!(
                            "a PHP-FPM child of pool [{}] exited with code {}",
                            p.name,
                            e.value.map_or("?".to_string(), |v| v.to_string())
                        ),
                    });
                }
                if evidence.len() < 3 {
                    evidence.push(Evidence::other("supervisor", master_log(m), e.line.clone()));
                }
            }
        }
        // What the backend's own supervisor and the kernel say: an OOM kill matched to the
        // backend (never by time alone), or its unit's restarts.
        if let Some(b) = &g.backend {
            let own = crate::backend::evidence(g.facts, b, g.window());
            if let Some(k) = own.iter().find(|e| e.kind == "kernel") {
                what.get_or_insert_with(|| format!("the kernel's OOM killer killed {}", b.name));
                evidence.push(k.clone());
            }
            let restarts = b.restarts.unwrap_or(0);
            if matches!(b.supervisor.as_str(), "systemd" | "pm2") && restarts > 0 {
                what.get_or_insert_with(|| {
                    format!("{} restarted {} {restarts} time(s)", b.supervisor, b.name)
                });
            }
        }
        let what = what?;
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let mut f = g.finding(
            self,
            format!("{up} lost requests mid-way: {what}"),
            if pool.is_some() {
                backend_fix(self,
                    "find the limit the backend hit (memory, time, a crash) and fix it",
                    vec![
                        "signal 9 (SIGKILL) without a deploy is usually the OOM killer: `journalctl -k | grep -i -e oom -e 'killed process'`; then lower `pm.max_children` to fit the RAM, or fix the leak (`pm.max_requests = 500` recycles leaking children)".to_string(),
                        "signal 11 (SIGSEGV): a crashing extension; enable core dumps and check `php -m` for recently added extensions".to_string(),
                        "`execution timed out ... terminating`: the script ran past `request_terminate_timeout`; make it faster or raise the limit for that pool".to_string(),
                    ],
                    vec![
                        "journalctl -k --no-pager | grep -i -e oom -e 'killed process'".to_string(),
                        "free -m".to_string(),
                    ]
                )
            } else {
                let (mut steps, mut commands) = g.restart_advice();
                steps.insert(
                    0,
                    "killed by signal 9 without a deploy: the OOM killer (`journalctl -k | grep -i -e oom -e 'killed process'`); give it the memory it needs (`MemoryMax=`, the host's RAM) or fix the leak".to_string(),
                );
                commands.insert(0, "journalctl -k --no-pager | grep -i -e oom -e 'killed process'".to_string());
                backend_fix(self,
                    "find why the backend died (memory, a crash) and fix it",
                    steps,
                    commands
                )
            },
        );
        f.evidence.extend(evidence);
        if let Some((_, p)) = pool {
            f.evidence.push(Evidence::other(
                "supervisor",
                format!("php-fpm pool {}", p.name),
                pool_line(p),
            ));
        }
        Some(f)
    }
}
