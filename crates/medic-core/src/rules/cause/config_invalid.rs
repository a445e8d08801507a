use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::config::Src;
use crate::facts::{Facts, LogGroup, NginxTest};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding, Fix, RuleDoc, Severity};

rule! {
    /// ## What it detects
    /// nginx refuses its configuration: `nginx -t` fails, or the error log has an `[emerg]`
    /// entry from a start or reload, such as `[emerg] host not found in upstream
    /// "backend.internal:8080" in /etc/nginx/sites-enabled/app:12`, `[emerg] unknown directive
    /// "proxy_passs"`, `[emerg] invalid number of arguments in "proxy_pass" directive`. Live,
    /// when `nginx -t` passes now, an old `[emerg]` is history and is reported as `info`.
    ///
    /// ## Why it causes 502
    /// It causes worse than a 502: a start with a refused config leaves nginx down (clients
    /// get `connection refused`), and a refused reload keeps the old config running, so the fix
    /// you deployed is not in effect. `host not found in upstream` is the classic: a
    /// `proxy_pass` name is resolved once, when the config is loaded, and a name that does not
    /// resolve then stops nginx.
    ///
    /// ## Evidence
    /// `nginx -t`'s stderr; the `[emerg]` entries in the error log; the config line nginx names
    /// (`in FILE:LINE`).
    ///
    /// ## Fix
    /// Correct the line nginx names, run `nginx -t` until it says `syntax is ok` and `test is
    /// successful`, then `systemctl reload nginx` (or `systemctl start nginx` if it is down).
    /// For `host not found in upstream`: fix the name or its DNS record, add it to
    /// `/etc/hosts`, or use a variable with a `resolver` so nginx resolves it per request.
    pub struct ConfigInvalid = "config-invalid", "nginx refuses its configuration (nginx -t fails)";
    time = "5 min", risk = "low";
}

impl Cause for ConfigInvalid {
    fn classes(&self) -> &'static [FailureClass] {
        super::ALL_CLASSES
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        if g.detail != Some("emerg") {
            return None;
        }
        // A failing `nginx -t` is reported by `check`, with these entries as its evidence.
        if g.facts.nginx_t.iter().any(|t| !t.ok) {
            return None;
        }
        let log = g.log?;
        let msg = emerg_message(&log.first_line.text);
        let (what, at) = split_at(msg);
        let passes_now = g.live() && g.facts.nginx_t.iter().any(|t| t.ok);
        let title = match (passes_now, at) {
            (true, _) => format!("an earlier config was refused: {what} (nginx -t passes now)"),
            (false, Some((file, line))) => {
                format!(
                    "nginx could not load its config: {what} ({}:{line})",
                    base(file)
                )
            }
            (false, None) => format!("nginx could not load its config: {what}"),
        };
        let mut f = g.finding(self, title, fix(what, at));
        // nginx did not answer with a status: it did not start, or kept the old config.
        f.status = None;
        if passes_now {
            f.severity = Severity::Info;
            for t in g.facts.nginx_t.iter().filter(|t| t.ok) {
                f.evidence.push(test_evidence(t));
            }
        }
        if let Some((file, line)) = at {
            f.evidence.push(line_evidence(g.facts, file, line));
        }
        Some(f)
    }

    fn check(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let emerg: Vec<&LogGroup> = facts
            .logs
            .groups
            .iter()
            .filter(|l| l.detail.as_deref() == Some("emerg"))
            .collect();
        let failed: Vec<&NginxTest> = facts.nginx_t.iter().filter(|t| !t.ok).collect();
        if failed.is_empty() {
            // `[emerg]` entries of no failure class (`unknown directive`, ...) are no group of
            // the engine's; the others were explained as groups.
            for l in emerg.iter().filter(|l| l.class == FailureClass::Other) {
                let g = Group {
                    class: l.class,
                    upstream: l.upstream.clone(),
                    detail: l.detail.as_deref(),
                    log: Some(l),
                    targets: Vec::new(),
                    passes: Vec::new(),
                    backend: None,
                    facts,
                };
                if let Some(mut f) = self.explain(&g) {
                    f.class = None;
                    out.push(f);
                }
            }
            return;
        }
        for t in failed {
            let line = t
                .stderr
                .lines()
                .find(|l| l.contains("[emerg]"))
                .or_else(|| t.stderr.lines().find(|l| !l.trim().is_empty()))
                .unwrap_or("nginx -t failed");
            let msg = emerg_message(line);
            let (what, at) = split_at(msg);
            let title = match at {
                Some((file, n)) => format!("nginx -t fails: {what} ({}:{n})", base(file)),
                None => format!("nginx -t fails: {what}"),
            };
            let mut evidence = vec![test_evidence(t)];
            if let Some((file, n)) = at {
                evidence.push(line_evidence(facts, file, n));
            }
            let mut count = 0;
            let mut first = None;
            let mut last = None;
            for l in &emerg {
                evidence.push(Evidence::log(&l.first_line));
                if let Some(x) = &l.last_line {
                    evidence.push(Evidence::log(x));
                }
                count += l.count;
                first = Some(first.map_or(l.first, |f: medic_parse::time::LogTime| f.min(l.first)));
                last = Some(last.map_or(l.last, |x: medic_parse::time::LogTime| x.max(l.last)));
            }
            out.push(Finding {
                id: self.id(),
                class: None,
                severity: Severity::Error,
                status: None,
                upstream: None,
                title,
                count: Some(count),
                first_seen: first,
                last_seen: last,
                evidence,
                fix: fix(what, at),
                per_minute: Vec::new(),
                backend: None,
                impact: None,
                state: Default::default(),
                resolved_at: None,
                timeline: Vec::new(),
            });
        }
    }
}

/// The message of an `[emerg]` line, from the error log (`2026/11/20 14:32:10 [emerg]
/// 1234#1234: MESSAGE`) or `nginx -t`'s stderr (`nginx: [emerg] MESSAGE`).
fn emerg_message(line: &str) -> &str {
    let Some(i) = line.find("[emerg]") else {
        return line.trim();
    };
    let rest = line[i + "[emerg]".len()..].trim_start();
    // `PID#TID: ` in the error log.
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && rest[digits..].starts_with('#') {
        if let Some(j) = rest.find(": ") {
            return rest[j + 2..].trim_end();
        }
    }
    rest.trim_end()
}

/// `MESSAGE in FILE:LINE` to the message and the position, when nginx names one.
fn split_at(msg: &str) -> (&str, Option<(&str, u32)>) {
    if let Some((what, pos)) = msg.rsplit_once(" in ") {
        if let Some((file, line)) = pos.rsplit_once(':') {
            if let Ok(n) = line.trim().parse::<u32>() {
                return (what, Some((file, n)));
            }
        }
    }
    (msg, None)
}

/// The file name of a path, for titles.
fn base(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

/// The run of `nginx -t` as evidence.
fn test_evidence(t: &NginxTest) -> Evidence {
    let text = t
        .stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Evidence::other("nginx -t", t.command.clone(), text)
}

/// The config line nginx names: the directive the model has at that line, or the position.
fn line_evidence(facts: &Facts, file: &str, line: u32) -> Evidence {
    let at = |s: &Src| s.file() == file && s.line() == line;
    for m in &facts.models {
        let srcs = m
            .passes
            .iter()
            .map(|p| &p.src)
            .chain(m.upstreams.iter().map(|u| &u.src))
            .chain(
                m.upstreams
                    .iter()
                    .flat_map(|u| u.servers.iter().map(|s| &s.src)),
            )
            .chain(m.listens.iter().map(|l| &l.src))
            .chain(m.scopes.iter().map(|s| &s.src));
        if let Some(src) = srcs.into_iter().find(|s| at(s)) {
            return Evidence::config(src);
        }
    }
    Evidence {
        kind: "config",
        source: format!("{file}:{line}"),
        text: "the line nginx names".to_string(),
        at: Some((file.into(), line)),
    }
}

fn fix(what: &str, at: Option<(&str, u32)>) -> Fix {
    let place = at.map_or("the line nginx names".to_string(), |(f, l)| {
        format!("{f}:{l}")
    });
    let mut steps = vec![format!("correct {place}: {what}")];
    if what.starts_with("host not found in upstream") {
        steps.push("nginx resolves a `proxy_pass` name once, when it loads the config: fix the name or its DNS record, add it to /etc/hosts, or write the host as a variable (`set $b NAME; proxy_pass http://$b:PORT;` with a `resolver`) so nginx resolves it per request".to_string());
    }
    steps.push("run `nginx -t` until it says `test is successful`".to_string());
    steps.push("if nginx is down, start it: `systemctl start nginx`".to_string());
    nginx_fix(
        &ConfigInvalid,
        format!("fix the config line nginx refuses ({what}), then `nginx -t` again"),
        steps,
    )
}
