//! From findings to a plan: which remedies apply, the new bytes of every file they touch (as
//! byte-range edits on the original text), the diffs, the reload and the restarts.
//!
//! Nothing here changes the host: it reads the config files and the probe facts the diagnosis
//! already gathered.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;

use medic_core::config::Src;
use medic_core::facts::{Facts, SocketKind};
use medic_core::rules::remedy::directive_name;
use medic_core::rules::{Address, Change, Finding, Risk, State};
use medic_parse::config::edit::{self, Edit, EditableFile};
use serde::Serialize;

/// Which findings `fix` acts on.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only these IDs. Without it, only ongoing findings: a latent or resolved one is fixed only
    /// when asked for by name.
    pub ids: Vec<String>,
    /// Only findings about this upstream (as nginx names it).
    pub upstream: Option<String>,
    /// The highest risk applied; riskier remedies are printed as advice.
    pub risk: Option<Risk>,
}

/// What happens to one finding.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    pub id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    pub title: String,
    /// What to do, in one line (the finding's fix summary).
    pub summary: String,
    /// The remedy's risk (`None`: the finding has no machine fix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    /// Whether `--apply` makes this change.
    pub apply: bool,
    /// Why not, when it is advice only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
    pub changes: Vec<Change>,
    /// The finding's own steps, for advice.
    #[serde(skip)]
    pub steps: Vec<String>,
}

/// The new text of one config file.
#[derive(Clone, Debug, Serialize)]
pub struct FileEdit {
    pub path: String,
    #[serde(skip)]
    pub before: String,
    #[serde(skip)]
    pub after: String,
    /// `diff -u`.
    pub diff: String,
}

/// The plan: per finding what happens, the file edits, the reload and the service restarts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub items: Vec<Item>,
    pub files: Vec<FileEdit>,
    /// nginx must reload (a config edit, or a stale name to resolve again).
    pub reload: bool,
    /// `restart-unit` / `restart-pm2` changes, in order.
    pub actions: Vec<Change>,
}

impl Plan {
    /// Whether `--apply` has anything to do.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && !self.reload && self.actions.is_empty()
    }
}

/// Makes the plan for `findings`.
pub fn plan(findings: &[Finding], facts: &Facts, sel: &Selection) -> Plan {
    let level = sel.risk.unwrap_or(Risk::Low);
    let mut out = Plan::default();
    // Accepted edits per file, and the file's text.
    let mut files: BTreeMap<String, (String, Vec<Edit>)> = BTreeMap::new();
    for f in findings {
        if !sel.ids.is_empty() && !sel.ids.iter().any(|i| i == f.id) {
            continue;
        }
        if sel.ids.is_empty() && f.state != State::Ongoing {
            continue;
        }
        if let Some(u) = &sel.upstream {
            if f.upstream.as_deref() != Some(u.as_str()) {
                continue;
            }
        }
        let mut item = Item {
            id: f.id,
            upstream: f.upstream.clone(),
            title: f.title.clone(),
            summary: f.fix.summary.clone(),
            risk: f.fix.remedy.as_ref().map(|r| r.risk),
            apply: false,
            why_not: None,
            changes: f
                .fix
                .remedy
                .as_ref()
                .map(|r| r.changes.clone())
                .unwrap_or_default(),
            steps: f.fix.steps.clone(),
        };
        let Some(remedy) = &f.fix.remedy else {
            item.why_not = Some("no machine fix for this cause".into());
            out.items.push(item);
            continue;
        };
        if remedy.risk > level {
            item.why_not = Some(format!(
                "risk {} (above --risk {level}): pass --risk {} to apply it",
                remedy.risk, remedy.risk
            ));
            out.items.push(item);
            continue;
        }
        match edits_of(&remedy.changes, facts, &files) {
            Err(why) => item.why_not = Some(why),
            Ok(new) => {
                // All of a finding's edits or none: they must fit with the ones already taken.
                let mut trial = files.clone();
                let mut fits = Ok(());
                for (path, text, edits) in new {
                    let entry = trial.entry(path.clone()).or_insert((text, Vec::new()));
                    for e in edits {
                        if !entry.1.contains(&e) {
                            entry.1.push(e);
                        }
                    }
                    if let Err(e) = edit::apply(&entry.0, &entry.1) {
                        fits = Err(format!(
                            "its edit of {path} overlaps another fix's ({e}): fix one at a time with --id"
                        ));
                    }
                }
                match fits {
                    Err(why) => item.why_not = Some(why),
                    Ok(()) => {
                        files = trial;
                        item.apply = true;
                        for c in &remedy.changes {
                            match c {
                                Change::RestartUnit { .. } | Change::RestartPm2 { .. } => {
                                    if !out.actions.contains(c) {
                                        out.actions.push(c.clone());
                                    }
                                }
                                _ => out.reload = true,
                            }
                        }
                    }
                }
            }
        }
        out.items.push(item);
    }
    for (path, (before, edits)) in files {
        let Ok(after) = edit::apply(&before, &edits) else {
            continue;
        };
        if after == before {
            continue;
        }
        let diff = similar::TextDiff::from_lines(&before, &after)
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("a/{}", path.trim_start_matches('/')),
                &format!("b/{}", path.trim_start_matches('/')),
            )
            .to_string();
        out.files.push(FileEdit {
            path,
            before,
            after,
            diff,
        });
    }
    out
}

type NewEdits = Vec<(String, String, Vec<Edit>)>;

/// The edits a remedy's changes make, per file; or why it cannot be made.
fn edits_of(
    changes: &[Change],
    facts: &Facts,
    taken: &BTreeMap<String, (String, Vec<Edit>)>,
) -> Result<NewEdits, String> {
    let mut out: NewEdits = Vec::new();
    let mut parsed: BTreeMap<String, EditableFile> = BTreeMap::new();
    for c in changes {
        let Some(src) = c.anchor() else {
            continue;
        };
        let path = src.file().to_string();
        if !parsed.contains_key(&path) {
            let text = match taken.get(&path) {
                Some((t, _)) => t.clone().into_bytes(),
                None => std::fs::read(&path).map_err(|e| format!("read {path}: {e}"))?,
            };
            let file = EditableFile::parse(&text).map_err(|e| format!("{path}: {e}"))?;
            parsed.insert(path.clone(), file);
        }
        let file = &parsed[&path];
        let d = find(file, src)?;
        let e = match c {
            Change::Set { name, args, .. } => file.set_in_block(&d, name, &strs(args)),
            Change::Append { args, .. } => {
                let names: Vec<&str> = args
                    .iter()
                    .map(|a| a.split('=').next().unwrap_or(a))
                    .collect();
                if d.args()
                    .iter()
                    .any(|a| names.contains(&a.split('=').next().unwrap_or(a)))
                {
                    return Err(format!(
                        "{} already has {}: nothing to add",
                        src.location(),
                        names.join(", ")
                    ));
                }
                file.append_args(&d, &strs(args))
            }
            Change::Retarget { index, to, .. } => {
                let arg = d
                    .args()
                    .get(*index)
                    .ok_or_else(|| format!("{} has no argument {}", src.location(), index + 1))?;
                let new = rewrite_address(arg, to).ok_or_else(|| {
                    format!(
                        "{}: `{arg}` is not an address the machine can rewrite",
                        src.location()
                    )
                })?;
                listens_at(&new, facts)?;
                file.set_arg(&d, *index, &new)
                    .map_err(|e| format!("{}: {e}", src.location()))?
            }
            _ => continue,
        };
        match out.iter_mut().find(|(p, _, _)| *p == path) {
            Some((_, _, edits)) => edits.push(e),
            None => out.push((path.clone(), file.text().to_string(), vec![e])),
        }
    }
    Ok(out)
}

/// The directive a [`Src`] points at, in the file as it is now.
fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn find<'f>(file: &'f EditableFile, src: &Src) -> Result<edit::DirectiveRef<'f>, String> {
    let name = directive_name(src);
    file.find(src.line(), name).ok_or_else(|| {
        format!(
            "{}: no `{name}` on that line any more (the file changed since it was read)",
            src.location()
        )
    })
}

/// `arg` (a `*_pass` URL or an upstream `server` address) with its host, port or socket
/// path replaced; `None` for what is not a plain address (variables, a group name).
pub fn rewrite_address(arg: &str, to: &Address) -> Option<String> {
    if arg.contains('$') {
        return None;
    }
    if let Address::Unix(path) = to {
        let start = arg.find("unix:")? + "unix:".len();
        // `http://unix:/run/app.sock:/uri`: the path ends at the `:` before the URI.
        let end = arg[start..].find(':').map_or(arg.len(), |i| start + i);
        return Some(format!("{}{path}{}", &arg[..start], &arg[end..]));
    }
    if arg.contains("unix:") {
        return None;
    }
    let (scheme, rest) = match arg.find("://") {
        Some(i) => arg.split_at(i + 3),
        None => ("", arg),
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = split_authority(authority)?;
    let (host, port) = match to {
        Address::Host(h) => (h.as_str(), port.map(str::to_string)),
        Address::Port(p) => (host, Some(p.to_string())),
        Address::Unix(_) => return None,
    };
    Some(match port {
        Some(p) => format!("{scheme}{host}:{p}{tail}"),
        None => format!("{scheme}{host}{tail}"),
    })
}

/// `host[:port]`, `[v6][:port]`.
fn split_authority(a: &str) -> Option<(&str, Option<&str>)> {
    if a.starts_with('[') {
        let close = a.find(']')?;
        let (h, rest) = a.split_at(close + 1);
        return Some((h, rest.strip_prefix(':')));
    }
    match a.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
            Some((h, Some(p)))
        }
        Some(_) => None,
        None if a.is_empty() => None,
        None => Some((a, None)),
    }
}

/// Whether something listens where `new` (a rewritten address) points, per the probes; the
/// machine never points nginx at an address nothing was seen listening on.
fn listens_at(new: &str, facts: &Facts) -> Result<(), String> {
    if let Some(start) = new.find("unix:") {
        let rest = &new[start + 5..];
        let path = rest.split(':').next().unwrap_or(rest);
        return match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            Ok(_) => Err(format!("{path} is not a socket")),
            Err(e) => Err(format!("{path}: {e}")),
        };
    }
    let Some(probes) = &facts.probes else {
        return Err(format!(
            "no probe ran (--no-probe): nothing shows that anything listens at {new}"
        ));
    };
    let rest = new.split_once("://").map_or(new, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = split_authority(authority).ok_or_else(|| format!("{new}: no address"))?;
    let port: u16 = port
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("{new}: no port to check"))?;
    let ip: Option<std::net::IpAddr> = host.trim_matches(['[', ']']).parse().ok();
    let hit = probes.listeners.sockets.iter().any(|l| {
        matches!(l.kind, SocketKind::Tcp | SocketKind::Tcp6)
            && l.port == Some(port)
            && match (ip, l.ip) {
                (_, Some(lip)) if lip.is_unspecified() => true,
                (Some(ip), Some(lip)) => ip == lip,
                // A name: any loopback listener on the port will do (nginx tries each address).
                (None, Some(lip)) => lip.is_loopback(),
                (_, None) => false,
            }
    });
    if hit {
        Ok(())
    } else {
        Err(format!(
            "the probe saw nothing listening at {host}:{port}: not pointing nginx there"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use medic_core::rules::{Evidence, Fix, Remedy};

    use super::*;

    const CONF: &str = "# the app\nserver {\n    listen 80;\n\n    location / {\n\t\tproxy_pass http://127.0.0.1:3000; # the app\n\t\tproxy_buffer_size 4k;\n\t\tlimit_req zone=one;\n    }\n}\n";

    fn src(path: &str, line: u32, text: &str) -> Src {
        Src::new(Arc::from(path), line, Arc::from(text))
    }

    fn finding(id: &'static str, risk: Risk, changes: Vec<Change>) -> Finding {
        let mut f = Finding::latent(
            id,
            format!("{id} title"),
            vec![Evidence::other("test", "t".into(), "t".into())],
            Fix {
                summary: format!("{id} summary"),
                steps: vec![],
                commands: vec![],
                time: "1 min",
                risk: "low",
                remedy: Some(Remedy::new(risk, changes)),
            },
        );
        f.state = State::Ongoing;
        f
    }

    /// The plan of `findings` at `risk`, its diff headers naming the temp file `app.conf`.
    fn planned(findings: &[Finding], risk: Risk, path: &std::path::Path) -> Plan {
        let mut plan = plan(
            findings,
            &Facts::default(),
            &Selection {
                risk: Some(risk),
                ..Selection::default()
            },
        );
        let p = path.display().to_string();
        for f in &mut plan.files {
            f.diff = f.diff.replace(p.trim_start_matches('/'), "app.conf");
        }
        plan
    }

    #[test]
    fn edits_keep_every_other_byte_and_respect_the_risk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.conf");
        std::fs::write(&path, CONF).expect("write");
        let p = path.display().to_string();
        let pass = src(&p, 6, "proxy_pass http://127.0.0.1:3000;");
        let findings = vec![
            finding(
                "header-too-big",
                Risk::Low,
                vec![
                    Change::Set {
                        near: pass.clone(),
                        name: "proxy_buffer_size".into(),
                        args: vec!["16k".into()],
                    },
                    Change::Set {
                        near: pass.clone(),
                        name: "proxy_buffers".into(),
                        args: vec!["8".into(), "16k".into()],
                    },
                ],
            ),
            finding(
                "rate-limited",
                Risk::Medium,
                vec![Change::Append {
                    at: src(&p, 8, "limit_req zone=one;"),
                    args: vec!["burst=20".into()],
                }],
            ),
        ];
        let low = planned(&findings, Risk::Low, &path);
        assert_eq!(
            low.items.iter().map(|i| i.apply).collect::<Vec<_>>(),
            [true, false]
        );
        assert!(low.reload);
        insta::assert_snapshot!("low", low.files[0].diff);
        let medium = planned(&findings, Risk::Medium, &path);
        insta::assert_snapshot!("medium", medium.files[0].diff);
        // Only the intended bytes: the edited text, re-read, differs from the file in the two
        // replaced/added places alone.
        let after = &medium.files[0].after;
        assert!(after.starts_with("# the app\nserver {\n    listen 80;\n\n    location / {\n\t\tproxy_pass http://127.0.0.1:3000; # the app\n"));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            CONF,
            "planning wrote"
        );
    }

    #[test]
    fn a_retarget_needs_a_listener_and_a_moved_directive_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.conf");
        std::fs::write(&path, CONF).expect("write");
        let p = path.display().to_string();
        let retarget = finding(
            "wrong-port",
            Risk::Low,
            vec![Change::Retarget {
                at: src(&p, 6, "proxy_pass http://127.0.0.1:3000;"),
                index: 0,
                to: Address::Port(3001),
            }],
        );
        let plan = planned(&[retarget], Risk::Low, &path);
        assert!(!plan.items[0].apply);
        assert!(
            plan.items[0]
                .why_not
                .as_deref()
                .is_some_and(|w| w.contains("no probe ran")),
            "{:?}",
            plan.items[0].why_not
        );
        let moved = finding(
            "tls-sni-required",
            Risk::Low,
            vec![Change::Set {
                near: src(&p, 7, "proxy_pass http://127.0.0.1:3000;"),
                name: "proxy_ssl_server_name".into(),
                args: vec!["on".into()],
            }],
        );
        let plan = planned(&[moved], Risk::Low, &path);
        assert!(!plan.items[0].apply);
        assert!(plan.files.is_empty());
        assert!(
            plan.items[0]
                .why_not
                .as_deref()
                .is_some_and(|w| w.contains("changed since")),
            "{:?}",
            plan.items[0].why_not
        );
    }

    #[test]
    fn rewrites_hosts_ports_and_sockets() {
        let host = |s: &str| Address::Host(s.into());
        assert_eq!(
            rewrite_address("http://127.0.0.1:3000/api", &Address::Port(3001)).as_deref(),
            Some("http://127.0.0.1:3001/api")
        );
        assert_eq!(
            rewrite_address("http://localhost", &Address::Port(8080)).as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(
            rewrite_address("http://[::1]:8080", &host("127.0.0.1")).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            rewrite_address("localhost:9000", &host("[::1]")).as_deref(),
            Some("[::1]:9000")
        );
        assert_eq!(
            rewrite_address(
                "unix:/run/php/php8.1-fpm.sock",
                &Address::Unix("/run/php/php8.2-fpm.sock".into())
            )
            .as_deref(),
            Some("unix:/run/php/php8.2-fpm.sock")
        );
        assert_eq!(
            rewrite_address(
                "http://unix:/run/app.sock:/v1/",
                &Address::Unix("/run/app2.sock".into())
            )
            .as_deref(),
            Some("http://unix:/run/app2.sock:/v1/")
        );
        assert_eq!(rewrite_address("http://$backend", &Address::Port(1)), None);
        assert_eq!(rewrite_address("unix:/x", &Address::Port(1)), None);
    }
}
