use std::path::Path;

use medic_parse::error_log::FailureClass;

use super::support::fpm::{pool_file, pool_line};
use super::{nginx_fix, Cause};
use crate::backend::other_fpm_sockets;
use crate::config::Target;
use crate::facts::supervisor::FpmInstall;
use crate::facts::SocketKind;
use crate::rules::group::Group;
use crate::rules::remedy::retarget;
use crate::rules::{rule, Address, Evidence, Finding, Remedy, Risk};

rule! {
    /// ## What it detects
    /// `connect() to unix:/run/php/php-fpm.sock failed (2: No such file or directory)`, and
    /// the socket is still missing now, while a running PHP-FPM pool (or another process, when
    /// its socket sits in the same directory or its name looks like the same service) listens
    /// on a unix socket at another path. A pool counts only when its socket is tied to nginx's
    /// path: the same directory, or the same name stem; other sites' pools on the host are
    /// listed as hints of `socket-missing` instead. The two sides name different paths: a PHP
    /// upgrade (`php8.1-fpm.sock` to `php8.2-fpm.sock`), a pool's `listen` edited without the
    /// site, a
    /// site copied from another distribution. Live diagnosis only.
    ///
    /// ## Why it causes 502
    /// nginx connects to the path in `fastcgi_pass unix:...` (or `proxy_pass http://unix:...`);
    /// no file exists there, so every connect fails with ENOENT before any request is sent and
    /// nginx answers 502 Bad Gateway, while the backend waits on its own path for requests
    /// that never come.
    ///
    /// ## Evidence
    /// The failures in the error log; the `*_pass` line; the probe's `stat` of the missing
    /// path; the pool's `listen` (with its file) or the listening socket and its process.
    ///
    /// ## Fix
    /// Make the two paths the same: either point nginx at the socket that exists
    /// (`fastcgi_pass unix:/run/php/php8.2-fpm.sock;`, then `nginx -t` and `systemctl reload
    /// nginx`), or set the pool's `listen` to the path nginx uses and restart PHP-FPM.
    ///
    /// `nginx-medic fix` does it when something listens on the other path now (risk low): the
    /// `unix:` path of the `*_pass` becomes that one; a stopped installation is left to a human.
    pub struct SocketPathMismatch = "socket-path-mismatch", "nginx and the backend name different unix socket paths";
    time = "5-10 min", risk = "medium";
}

impl Cause for SocketPathMismatch {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::SocketMissing]
    }

    fn explain<'f>(&self, g: &Group<'f>) -> Option<Finding> {
        let path = g.unix_path()?;
        let probes = g.probes()?;
        let unix = g.target().and_then(|t| t.facts.unix.as_ref());
        if unix.is_some_and(|u| u.exists) {
            return None;
        }
        // Paths other passes of the config use belong to them, not to this one.
        let used: Vec<&str> = g
            .facts
            .models
            .iter()
            .flat_map(|m| m.passes.iter())
            .filter_map(|p| match &p.target {
                Target::Unix { path } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        // (score, path, why, evidence, the stopped installation that would create it)
        type Best<'a> = (
            u32,
            String,
            String,
            Option<Evidence>,
            Option<&'a FpmInstall>,
        );
        let mut best: Option<Best<'_>> = None;
        let mut consider = |score: u32,
                            at: &str,
                            why: String,
                            extra: Option<Evidence>,
                            stopped: Option<&'f FpmInstall>| {
            if at == path || used.contains(&at) {
                return;
            }
            if best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, at.to_string(), why, extra, stopped));
            }
        };
        for m in &probes.supervisors.fpm {
            for p in &m.pools {
                let Some(l) = p.listen.as_deref().filter(|l| l.starts_with('/')) else {
                    continue;
                };
                // A pool is this backend only when something ties its socket to nginx's path:
                // the same directory or the same name stem. A host runs other sites' pools
                // (another vhost, a container's); those stay hints of `socket-missing`.
                if likeness(path, l) & (SAME_DIR | SAME_STEM) == 0 {
                    continue;
                }
                consider(
                    10 + likeness(path, l),
                    l,
                    format!(
                        "PHP-FPM pool [{}] listens on {l} (listen in {})",
                        p.name,
                        pool_file(p)
                    ),
                    Some(Evidence::other(
                        "supervisor",
                        format!("php-fpm master {}", m.pid),
                        pool_line(p),
                    )),
                    None,
                );
            }
        }
        // PHP-FPM installed but not running (the classic upgrade: nginx still names the old
        // version's socket, the new version is stopped): its pool files say which socket it
        // would create.
        for (inst, p) in other_fpm_sockets(g.facts, path) {
            if inst.running {
                continue;
            }
            let l = p.listen.as_deref().unwrap_or_default();
            // A stopped installation is a candidate only for a socket in the same directory
            // (`/run/php/php8.1-fpm.sock` vs `php8.2-fpm.sock`): nothing of it runs to show
            // that it is the backend meant.
            if likeness(path, l) & SAME_DIR == 0 {
                continue;
            }
            consider(
                8 + likeness(path, l),
                l,
                format!(
                    "PHP-FPM {} is installed but not running; its pool [{}] would listen on {l}",
                    inst.version.as_deref().unwrap_or("?"),
                    p.name
                ),
                p.listen_at.as_ref().map(|at| Evidence {
                    kind: "config",
                    source: at.clone(),
                    text: format!("listen = {l}"),
                    at: at
                        .rsplit_once(':')
                        .and_then(|(f, n)| Some((f.into(), n.parse().ok()?))),
                }),
                Some(inst),
            );
        }
        for l in &probes.listeners.sockets {
            let Some(at) = l.path.as_deref().filter(|p| p.starts_with('/')) else {
                continue;
            };
            if l.kind != SocketKind::Unix || l.processes.iter().any(|p| p.program == "nginx") {
                continue;
            }
            // A socket in the same directory alone is not enough (`/run` holds many): the
            // name must look like the same service, or like PHP-FPM in the same directory. A
            // PHP-FPM name elsewhere is another site's pool.
            let score = likeness(path, at);
            if score & SAME_STEM == 0 && score & (SAME_DIR | PHP_NAME) != SAME_DIR | PHP_NAME {
                continue;
            }
            let who = l
                .processes
                .first()
                .map(|p| format!("{} (pid {})", p.program, p.pid))
                .unwrap_or_else(|| "a process that could not be inspected".into());
            consider(score, at, format!("{who} listens on unix:{at}"), None, None);
        }
        let (_, at, why, extra, stopped) = best?;
        let directive = g
            .passes
            .first()
            .map_or("fastcgi_pass", |(_, p)| p.kind.directive());
        let pass_line = g
            .passes
            .first()
            .map(|(_, p)| format!(" ({})", p.src.location()))
            .unwrap_or_default();
        let mut fix = nginx_fix(self,
            format!("make `{directive}` and the backend's socket the same path: unix:{at}"),
            vec![
                format!("either point nginx at the socket the backend creates: `{directive} unix:{at};` instead of unix:{path}{pass_line}"),
                format!("or set the pool's `listen = {path}` (and its directory must exist), then restart PHP-FPM"),
            ]
        );
        if let Some(inst) = stopped {
            let unit = inst
                .unit
                .as_deref()
                .unwrap_or("php-fpm")
                .trim_end_matches(".service");
            fix.steps.insert(
                1,
                format!("start the installed PHP-FPM, which is stopped: `systemctl enable --now {unit}` (read `journalctl -u {unit} -n 50` if it does not start)"),
            );
            fix.commands
                .insert(0, format!("systemctl enable --now {unit}"));
        }
        let mut f = g.finding(
            self,
            format!("nginx connects to unix:{path}, but the backend listens on unix:{at}"),
            fix,
        );
        // Something listens on the path now and is tied to this target with confidence:
        // pointing nginx at it is the whole fix. A stopped installation must be started first,
        // and an unrelated pool guessed on a busy host is no target: a human's call.
        let sure = f
            .backend
            .as_ref()
            .is_none_or(|b| matches!(b.confidence.as_str(), "certain" | "high"));
        if stopped.is_none() && sure {
            let changes = retarget(g, Address::Unix(at.clone()));
            if !changes.is_empty() {
                f.fix = f.fix.clone().with_remedy(Remedy::new(Risk::Low, changes));
            }
        }
        if let Some(inst) = stopped {
            if let Some(p) = inst
                .pools
                .iter()
                .find(|p| p.listen.as_deref() == Some(at.as_str()))
            {
                let mut b = crate::backend::fpm_backend(g.facts, inst, p, None);
                b.confidence = "high".into();
                b.why = format!(
                    "no backend names unix:{path}; the installed PHP-FPM {}'s pool [{}] listens on unix:{at} ({})",
                    inst.version.as_deref().unwrap_or("?"),
                    p.name,
                    p.listen_at.as_deref().unwrap_or("listen")
                );
                f.backend = Some(Box::new(b));
            }
        }
        f.evidence.push(Evidence::probe(
            "stat",
            format!("{path}: No such file or directory"),
        ));
        f.evidence.push(Evidence::probe("listeners", why));
        f.evidence.extend(extra);
        Some(f)
    }
}

/// [`likeness`]: the socket is in the same directory.
const SAME_DIR: u32 = 4;
/// [`likeness`]: the names share a stem of three or more characters (`php8.1-fpm`, `php8.2-fpm`).
const SAME_STEM: u32 = 2;
/// [`likeness`]: the name says PHP or FPM.
const PHP_NAME: u32 = 1;

/// How much a socket path looks like the one nginx wants: the same directory, a shared stem
/// (`php8.1-fpm.sock` / `php8.2-fpm.sock`), a PHP-FPM name.
pub(crate) fn likeness(want: &str, other: &str) -> u32 {
    let (w, o) = (Path::new(want), Path::new(other));
    let mut score = 0;
    if w.parent() == o.parent() {
        score += SAME_DIR;
    }
    let stem = |p: &Path| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let (ws, os) = (stem(w), stem(o));
    let common = ws
        .chars()
        .zip(os.chars())
        .take_while(|(a, b)| a == b)
        .count();
    if common >= 3 {
        score += SAME_STEM;
    }
    let lower = other.to_ascii_lowercase();
    if lower.contains("php") || lower.contains("fpm") {
        score += PHP_NAME;
    }
    score
}
