use medic_parse::error_log::FailureClass;

use super::support::fpm::{listen_matches, pool_line};
use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while
    /// connecting to upstream` (logged at `[crit]`): the unix socket nginx is configured to use
    /// does not exist. The log text alone proves it; live, the probe confirms the path is still
    /// missing and whether a PHP-FPM pool is configured for it. When a backend listens on a
    /// different path, the finding is `socket-path-mismatch` instead.
    ///
    /// ## Why it causes 502
    /// A unix socket exists only while the process that created it runs (PHP-FPM creates its
    /// `listen` socket at start and removes it at stop). The backend is stopped, failed to
    /// start, or the socket's directory (often under `/run`, a tmpfs emptied at boot) was never
    /// re-created. Every connect fails at once and nginx answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The failures in the error log; the `fastcgi_pass`/`proxy_pass` line; live: the `stat` of
    /// the path, and whether a running PHP-FPM pool has `listen` set to it.
    ///
    /// ## Fix
    /// Start the backend that should create the socket (`systemctl start php8.2-fpm`) and read
    /// why it is not running (`journalctl -u php8.2-fpm -n 50`); check that its pool's `listen`
    /// is exactly the path in the `*_pass` line.
    pub struct SocketMissing = "socket-missing", "the unix socket nginx connects to does not exist";
    time = "5-10 min", risk = "medium";
}

impl Cause for SocketMissing {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::SocketMissing]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let path = g.unix_path().unwrap_or("the socket");
        let exists_now = g
            .target()
            .and_then(|t| t.facts.unix.as_ref())
            .is_some_and(|u| u.exists);
        let title = if exists_now {
            format!("the unix socket {path} was missing: its backend was not running (the socket exists now)")
        } else {
            format!("the unix socket {path} does not exist: its backend is not running")
        };
        let mut f = g.finding(
            self,
            title,
            match g.backend.as_ref().filter(|b| b.supervisor != "php-fpm") {
                // Another kind of backend owns the socket: its own supervisor's words.
                Some(_) => {
                    let (steps, commands) = g.restart_advice();
                    backend_fix(self,
                        format!("start the backend that creates {path}"),
                        steps,
                        commands
                    )
                }
                None => {
                    let unit = g
                        .backend
                        .as_ref()
                        .and_then(|b| b.unit.as_deref())
                        .unwrap_or("php8.2-fpm.service")
                        .trim_end_matches(".service")
                        .to_string();
                    backend_fix(self,
                        format!("start the backend that creates {path}, and make sure its `listen` is that path"),
                        vec![
                            format!("start PHP-FPM (or the app that owns the socket): `systemctl start {unit}`"),
                            format!("if it does not start, read why: `journalctl -u {unit} -n 50` (a pool file error, the socket's directory missing)"),
                            format!("check the pool's listen: `grep -rn '^listen' /etc/php/*/fpm/pool.d/` must show {path}"),
                        ],
                        vec![
                            format!("systemctl start {unit}"),
                            format!("journalctl -u {unit} -n 50 --no-pager"),
                            format!("ls -l {path}"),
                        ]
                    )
                }
            },
        );
        let Some(probes) = g.probes() else {
            return Some(f);
        };
        if let Some(u) = g.target().and_then(|t| t.facts.unix.as_ref()) {
            let now = if u.exists {
                u.ls.clone().unwrap_or_else(|| format!("{path} exists now"))
                    + " (it exists now: the backend was started since)"
            } else {
                format!("{path}: No such file or directory")
            };
            f.evidence.push(Evidence::probe("stat", now));
        }
        let pools: Vec<String> = probes
            .supervisors
            .fpm
            .iter()
            .flat_map(|m| m.pools.iter())
            .filter(|p| {
                p.listen
                    .as_deref()
                    .is_some_and(|l| listen_matches(l, &format!("unix:{path}")))
            })
            .map(pool_line)
            .collect();
        if pools.is_empty() {
            f.evidence.push(Evidence::probe(
                "supervisors",
                format!(
                    "no running PHP-FPM pool listens on {path} ({} master(s) running)",
                    probes.supervisors.fpm.len()
                ),
            ));
        } else {
            for p in pools {
                f.evidence.push(Evidence::probe(
                    "supervisors",
                    format!("{p}: configured for this path, but the socket is gone (deleted, or the pool failed to bind)"),
                ));
            }
        }
        // Other pools that run are hints, never the cause: nothing ties them to this path
        // (`socket-path-mismatch` took the ones in the same directory or of the same name).
        let others: Vec<String> = probes
            .supervisors
            .fpm
            .iter()
            .flat_map(|m| m.pools.iter().map(move |p| (m, p)))
            .filter_map(|(m, p)| {
                let l = p.listen.as_deref()?;
                (!listen_matches(l, &format!("unix:{path}")))
                    .then(|| format!("[{}] on {l} (php-fpm master {})", p.name, m.pid))
            })
            .take(5)
            .collect();
        if !others.is_empty() {
            f.evidence.push(Evidence::probe(
                "supervisors",
                format!(
                    "other PHP-FPM pools run, none tied to {path} (another directory and name; another site's, or this one's moved): {}",
                    others.join(", ")
                ),
            ));
        }
        Some(f)
    }
}
