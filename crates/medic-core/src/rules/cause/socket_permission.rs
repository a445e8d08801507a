use medic_parse::error_log::FailureClass;

use super::support::fpm::{fpm_unit, pool_at, pool_file, pool_line};
use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) while
    /// connecting to upstream` (logged at `[crit]`): the socket exists, but the user nginx's
    /// workers run as (the `user` directive, `nobody` by default) may not connect to it. The
    /// log text alone proves it; live, the probe shows the socket's owner, group and mode, the
    /// worker user's groups and what denies it (the socket, or a directory above it), and the
    /// PHP-FPM pool's `listen.owner`/`listen.group`/`listen.mode`.
    ///
    /// ## Why it causes 502
    /// Connecting to a unix socket needs write permission on the socket file and search (`x`)
    /// permission on every directory above it. PHP-FPM creates its socket with
    /// `listen.owner`/`listen.group`/`listen.mode` (default: the pool's user, mode `0660`); when
    /// the nginx worker user is neither that owner nor in that group, every connect fails with
    /// EACCES and nginx answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The failures in the error log; the `fastcgi_pass` line; `ls -l` of the socket
    /// (`srw------- root:root /run/php/php8.2-fpm.sock`); the worker user and why it is denied;
    /// the pool's `listen.*` settings and file.
    ///
    /// ## Fix
    /// In the pool file set `listen.owner` and `listen.group` to the nginx worker user (for
    /// example `www-data`), or `listen.acl_users = www-data`, and `listen.mode = 0660`; then
    /// `systemctl restart php8.2-fpm` (the socket is re-created with the new owner). If a
    /// directory above the socket denies search, `chmod o+x` it or put the socket elsewhere.
    pub struct SocketPermission = "socket-permission", "nginx workers may not connect to the unix socket (owner, group, mode)";
    time = "5 min", risk = "low";
}

impl Cause for SocketPermission {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectPermission]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let path = g.unix_path()?;
        let unix = g.target().and_then(|t| t.facts.unix.as_ref());
        // The modes let the worker in, and SELinux is enforcing: the denial is SELinux's.
        if unix.is_some_and(|u| u.worker.allowed == Some(true))
            && g.probes().and_then(|p| p.selinux.as_deref()) == Some("enforcing")
        {
            return None;
        }
        let user = unix.map(|u| u.worker.user.clone()).unwrap_or_else(|| {
            g.passes
                .first()
                .map(|(m, _)| *m)
                .or_else(|| g.facts.models.first())
                .map_or_else(|| "nobody".to_string(), |m| m.worker_user().name)
        });
        let pool = pool_at(g);
        let unit = pool.map_or_else(|| "php8.2-fpm".to_string(), |(m, _)| fpm_unit(g, m));
        let file = pool.map_or_else(
            || "the pool file (/etc/php/8.2/fpm/pool.d/www.conf)".to_string(),
            |(_, p)| pool_file(p),
        );
        let mut steps = vec![
            format!("in {file} set `listen.owner = {user}`, `listen.group = {user}` (or `listen.acl_users = {user}`) and `listen.mode = 0660`"),
            format!("restart the pool so it re-creates the socket: `systemctl restart {unit}`"),
            format!("check: `ls -l {path}` shows the socket owned by or writable for {user}"),
        ];
        if let Some(why) = unix
            .map(|u| u.worker.why.as_str())
            .filter(|w| w.contains("no search"))
        {
            steps.insert(
                0,
                format!("a directory above the socket denies search ({why}): `chmod o+x` it, or move the socket to a directory {user} can enter"),
            );
        }
        let mut f = g.finding(
            self,
            format!("nginx workers ({user}) may not connect to the unix socket {path}"),
            backend_fix(self,
                format!("let {user} connect to {path}: the pool's listen.owner/listen.group (or listen.acl_users) and listen.mode"),
                steps,
                vec![
                    format!("systemctl restart {unit}"),
                    format!("ls -l {path}"),
                ]
            ),
        );
        if let Some(u) = unix {
            if let Some(ls) = &u.ls {
                f.evidence.push(Evidence::probe("stat", ls.clone()));
            } else if !u.exists {
                f.evidence.push(Evidence::probe(
                    "stat",
                    format!("{path}: No such file or directory (now)"),
                ));
            }
            let verdict = match u.worker.allowed {
                Some(true) => "may connect now",
                Some(false) => "may not connect",
                None => "unknown",
            };
            let groups = if u.worker.gids.is_empty() {
                String::new()
            } else {
                format!(
                    ", gids {}",
                    u.worker
                        .gids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            f.evidence.push(Evidence::probe(
                "unix.worker",
                format!(
                    "nginx worker user {}{}{groups}: {verdict} ({})",
                    u.worker.user,
                    u.worker
                        .uid
                        .map(|id| format!(" (uid {id})"))
                        .unwrap_or_default(),
                    u.worker.why
                ),
            ));
        } else {
            let src = g
                .passes
                .first()
                .map(|(m, _)| *m)
                .or_else(|| g.facts.models.first())
                .and_then(|m| m.user.as_ref()?.src.as_ref());
            f.evidence.push(match src {
                Some(src) => Evidence::config(src),
                None => Evidence::other(
                    "config",
                    "user".to_string(),
                    format!("nginx workers run as {user} (no `user` directive: nginx's default)"),
                ),
            });
        }
        if let Some((m, p)) = pool {
            f.evidence.push(Evidence::other(
                "supervisor",
                format!("php-fpm master {}", m.pid),
                pool_line(p),
            ));
        }
        Some(f)
    }
}
