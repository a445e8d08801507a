//! The page of `diagnose --format html`: the verdict, the findings (as the text report has
//! them), the timeline, what was not checked and what was read.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

use medic_core::rules::{Evidence, Finding, Severity, State};
use medic_parse::time::LogTime;

use super::events::Marker;
use super::timeline::{self, Series, Timeline};
use super::{cut, esc, page, plural, span, when};
use crate::diagnose::DiagnoseReport;
use crate::report::diagnose_text::clients;

/// Longest evidence text shown; the `file:line` leads to the rest.
const MAX_TEXT: usize = 1200;
/// Markers listed under the timeline at most.
const MAX_LISTED: usize = 100;

/// Writes the page; `max` findings in detail (0: all), as the text report.
pub fn write(w: &mut impl io::Write, r: &DiagnoseReport, max: usize) -> io::Result<()> {
    let title = match r.findings.first() {
        Some(f) => format!(
            "nginx-medic: {}[{}] {}",
            f.severity.as_str(),
            f.id,
            f.upstream.as_deref().unwrap_or("")
        ),
        None => "nginx-medic: healthy".to_string(),
    };
    w.write_all(page(title.trim_end(), &body(r, max)).as_bytes())
}

fn body(r: &DiagnoseReport, max: usize) -> String {
    let shown = if max == 0 {
        r.findings.len()
    } else {
        max.min(r.findings.len())
    };
    let mut s = String::new();
    let window = match (&r.inputs.since, &r.inputs.until) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        (Some(a), None) => format!("since {a}"),
        (None, Some(b)) => format!("until {b}"),
        (None, None) => "all entries".to_string(),
    }
    .replace('T', " ");
    let _ = writeln!(
        s,
        "<header class=\"top\"><span class=\"brand\">nginx-medic diagnose</span><span class=\"meta\">{} run · window {} · nginx-medic {}</span></header>",
        esc(r.inputs.mode),
        esc(&window),
        esc(r.tool.version)
    );
    verdict(&mut s, r);
    if !r.findings.is_empty() {
        toc(&mut s, &r.findings[..shown], r.findings.len());
    }
    timeline_section(&mut s, r);
    if shown > 0 {
        s.push_str("<h2>Findings, most likely root cause first</h2>\n");
    }
    for (i, f) in r.findings[..shown].iter().enumerate() {
        finding(&mut s, f, i + 1);
    }
    if shown < r.findings.len() {
        let _ = writeln!(
            s,
            "<p class=\"note\">{} more {} not shown: <code>--max 0</code> shows all; <code>--format json</code> holds all.</p>",
            r.findings.len() - shown,
            if r.findings.len() - shown == 1 { "finding" } else { "findings" }
        );
    }
    if !r.skipped.is_empty() {
        s.push_str("<h2 id=\"skipped\">Not checked</h2>\n<ul class=\"plain\">\n");
        for k in &r.skipped {
            let _ = writeln!(
                s,
                "<li><strong>{}</strong>: {}</li>",
                esc(&k.check),
                inline(&k.why)
            );
        }
        s.push_str("</ul>\n");
    }
    inputs(&mut s, r);
    let _ = writeln!(
        s,
        "<footer>nginx-medic {} · <code>nginx-medic diagnose --format json</code> holds the same findings as data. Times are nginx's local clock.</footer>",
        esc(r.tool.version)
    );
    s
}

/// The top finding in one sentence, as the text report's first lines.
fn verdict(s: &mut String, r: &DiagnoseReport) {
    let Some(f) = r.findings.first() else {
        let _ = writeln!(
            s,
            "<section class=\"verdict healthy\"><p class=\"label\">Verdict</p><h1>Healthy: no problems found</h1><p class=\"line\">{} run; nothing in the logs, the config or the probes explains a 502, 503 or 504.</p></section>",
            esc(r.inputs.mode)
        );
        return;
    };
    let sev = f.severity.as_str();
    let _ = write!(
        s,
        "<section class=\"verdict sev-{sev}\">\n<p class=\"label\">Verdict: the most likely root cause</p>\n<h1><span class=\"sev {sev}\">{sev}</span> <code class=\"id\">{}</code> {}</h1>\n<p class=\"line\">",
        esc(f.id),
        esc(&f.title)
    );
    let mut parts = Vec::new();
    if let Some(u) = &f.upstream {
        parts.push(format!("upstream <code>{}</code>", esc(u)));
    }
    parts.push(state(f));
    if let Some(c) = clients(f) {
        parts.push(format!("clients: {}", esc(&c)));
    }
    if let Some(r) = requests(f) {
        parts.push(esc(&r).into_owned());
    }
    s.push_str(&parts.join(" · "));
    let _ = writeln!(
        s,
        "</p>\n<p class=\"fix\"><strong>Fix:</strong> {} <span class=\"tr\">(time {}, risk {})</span> · <a href=\"#f1\">evidence and steps</a></p>",
        inline(&f.fix.summary),
        esc(f.fix.time),
        esc(f.fix.risk)
    );
    let count = |sev| r.findings.iter().filter(|f| f.severity == sev).count() as u64;
    let _ = writeln!(
        s,
        "<p class=\"line\">{} in all: {}, {}, {} info.</p>\n</section>",
        plural(r.findings.len() as u64, "finding"),
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
        count(Severity::Info)
    );
}

/// The findings at a glance, each linked to its section.
fn toc(s: &mut String, shown: &[Finding], all: usize) {
    s.push_str("<h2>Summary</h2>\n<table class=\"toc\">\n<thead><tr><th>#</th><th>severity</th><th>cause</th><th>upstream</th><th class=\"n\">requests</th><th>state</th><th>last seen</th></tr></thead>\n<tbody>\n");
    for (i, f) in shown.iter().enumerate() {
        let sev = f.severity.as_str();
        let _ = writeln!(
            s,
            "<tr><td><a href=\"#f{n}\">{n}</a></td><td><span class=\"sev {sev}\">{sev}</span></td><td><a href=\"#f{n}\"><code>{}</code></a></td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"t\">{}</td></tr>",
            esc(f.id),
            code(f.upstream.as_deref()),
            f.count.map_or(String::new(), |c| c.to_string()),
            state(f),
            f.last_seen.map_or(String::new(), when),
            n = i + 1,
        );
    }
    s.push_str("</tbody>\n</table>\n");
    if shown.len() < all {
        let _ = writeln!(
            s,
            "<p class=\"note\">The {} most likely of {all} findings.</p>",
            shown.len()
        );
    }
}

fn timeline_section(s: &mut String, r: &DiagnoseReport) {
    let mut by_cause: BTreeMap<&str, Vec<(LogTime, u64)>> = BTreeMap::new();
    for f in &r.findings {
        by_cause
            .entry(f.id)
            .or_default()
            .extend(f.per_minute.iter().map(|(t, n)| (*t, u64::from(*n))));
    }
    let series: Vec<Series> = by_cause
        .into_iter()
        .map(|(name, minutes)| Series {
            name: name.to_string(),
            minutes,
        })
        .collect();
    let e = &r.events;
    let figure = timeline::render(&Timeline {
        what: "failures by cause",
        series,
        total: &e.failures_per_minute,
        total_note: "The dashed line counts every failure in the error log; a cause's bars hold the last 60 minutes it had entries (the JSON's per_minute).",
        markers: &e.markers,
        unknown: &e.unknown,
    });
    if figure.is_empty() {
        return;
    }
    s.push_str("<h2 id=\"timeline\">Timeline</h2>\n");
    s.push_str(&figure);
    markers_list(s, &e.markers);
}

/// The markers as a list: the SVG's tooltips are not printed.
pub(super) fn markers_list(s: &mut String, markers: &[Marker]) {
    if markers.is_empty() {
        return;
    }
    s.push_str(
        "<table>\n<thead><tr><th>time</th><th>event</th><th>what</th></tr></thead>\n<tbody>\n",
    );
    for m in markers.iter().rev().take(MAX_LISTED).rev() {
        let _ = writeln!(
            s,
            "<tr><td class=\"t\">{}</td><td>{}</td><td>{}</td></tr>",
            when(m.at),
            m.kind.name(),
            inline(&m.label)
        );
    }
    s.push_str("</tbody>\n</table>\n");
    if markers.len() > MAX_LISTED {
        let _ = writeln!(
            s,
            "<p class=\"note\">The newest {MAX_LISTED} of {} events.</p>",
            markers.len()
        );
    }
}

fn finding(s: &mut String, f: &Finding, n: usize) {
    let sev = f.severity.as_str();
    let _ = writeln!(
        s,
        "<article class=\"finding sev-{sev}\" id=\"f{n}\">\n<h3><span class=\"sev {sev}\">{sev}</span> <code class=\"id\">{}</code> {} {}</h3>",
        esc(f.id),
        esc(&f.title),
        state(f)
    );
    s.push_str("<dl class=\"facts\">\n");
    let mut fact = |k: &str, v: String| {
        let _ = writeln!(s, "<dt>{k}</dt><dd>{v}</dd>");
    };
    if let Some(u) = &f.upstream {
        fact("upstream", format!("<code>{}</code>", esc(u)));
    }
    if let Some(r) = requests(f) {
        fact("requests", esc(&r).into_owned());
    }
    if let Some(c) = clients(f) {
        fact("clients", esc(&c).into_owned());
    }
    let st = match (f.state, f.resolved_at) {
        (State::Resolved, Some(at)) => format!("resolved at {}", when(at)),
        (State::Resolved, None) => "resolved".to_string(),
        (State::Latent, _) => "latent: nothing has failed yet".to_string(),
        (State::Ongoing, _) => "ongoing: failing, or nothing shows it stopped".to_string(),
    };
    fact("state", st);
    if let Some(b) = &f.backend {
        let mut state = b.state.clone().unwrap_or_else(|| "?".into());
        if let Some(n) = b.restarts.filter(|n| *n > 0) {
            state.push_str(&format!(", {n} restarts"));
        }
        if let Some(since) = &b.since {
            state.push_str(&format!(", since {since}"));
        }
        fact(
            "backend",
            format!(
                "{} <code>{}</code> ({}); {} confidence: {}{}",
                esc(&b.supervisor),
                esc(&b.name),
                esc(&state),
                esc(&b.confidence),
                inline(&b.why),
                b.config.as_deref().map_or(String::new(), |c| format!(
                    "; config <code>{}</code>",
                    esc(c)
                ))
            ),
        );
    }
    if let Some(c) = f.class {
        fact("failure class", format!("<code>{}</code>", esc(c)));
    }
    s.push_str("</dl>\n<h4>Evidence</h4>\n<ol class=\"evidence\">\n");
    for (i, e) in f.evidence.iter().enumerate() {
        evidence(s, e, &format!("f{n}-e{}", i + 1));
    }
    s.push_str("</ol>\n");
    if !f.timeline.is_empty() {
        s.push_str("<h4>The same story</h4>\n<table>\n<thead><tr><th>from</th><th>to</th><th>cause</th><th class=\"n\">requests</th><th>what</th><th>where</th></tr></thead>\n<tbody>\n");
        for st in &f.timeline {
            let _ = writeln!(
                s,
                "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td><code>{}</code></td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                when(st.first_seen),
                when(st.last_seen),
                esc(st.id),
                st.count,
                esc(&st.title),
                code(st.evidence.as_ref().map(|e| e.source.as_str()))
            );
        }
        s.push_str("</tbody>\n</table>\n");
    }
    let _ = writeln!(
        s,
        "<h4>Fix</h4>\n<p><strong>{}</strong></p>",
        inline(&f.fix.summary)
    );
    if !f.fix.steps.is_empty() {
        s.push_str("<ol class=\"steps\">\n");
        for step in &f.fix.steps {
            let _ = writeln!(s, "<li>{}</li>", inline(step));
        }
        s.push_str("</ol>\n");
    }
    if !f.fix.commands.is_empty() {
        s.push_str("<pre class=\"cmd\">");
        for c in &f.fix.commands {
            let _ = writeln!(s, "$ {}", esc(c));
        }
        s.push_str("</pre>\n");
    }
    let _ = writeln!(
        s,
        "<p class=\"tr\">time {} · risk {}</p>\n</article>",
        esc(f.fix.time),
        esc(f.fix.risk)
    );
}

fn evidence(s: &mut String, e: &Evidence, id: &str) {
    let _ = writeln!(
        s,
        "<li id=\"{id}\"><div class=\"ev-head\"><span class=\"kind\">{}</span> <a href=\"#{id}\"><code>{}</code></a></div><pre class=\"ev-body\">{}</pre></li>",
        esc(e.kind),
        esc(&e.source),
        esc(&cut(&e.text, MAX_TEXT))
    );
}

fn inputs(s: &mut String, r: &DiagnoseReport) {
    s.push_str("<h2 id=\"inputs\">Inputs read</h2>\n<dl class=\"facts\">\n");
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|p| format!("<code>{}</code>", esc(p)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let configs: Vec<String> = r
        .instances
        .iter()
        .map(|i| {
            let mut c = format!(
                "<code>{}</code> (read from {})",
                esc(&i.config),
                esc(i.read_from)
            );
            if let Some(v) = &i.nginx_version {
                let _ = write!(c, ", nginx {}", esc(v));
            }
            c
        })
        .collect();
    let _ = writeln!(
        s,
        "<dt>config</dt><dd>{}</dd>",
        if configs.is_empty() {
            "none".to_string()
        } else {
            configs.join("; ")
        }
    );
    let _ = writeln!(
        s,
        "<dt>error logs</dt><dd>{}</dd>\n<dt>access logs</dt><dd>{}</dd>",
        list(&r.inputs.error_logs),
        list(&r.inputs.access_logs)
    );
    let _ = writeln!(
        s,
        "<dt>window</dt><dd>{} to {}</dd>\n<dt>mode</dt><dd>{}</dd>\n</dl>",
        esc(&r
            .inputs
            .since
            .as_deref()
            .unwrap_or("the start")
            .replace('T', " ")),
        esc(&r
            .inputs
            .until
            .as_deref()
            .unwrap_or("the end")
            .replace('T', " ")),
        esc(r.inputs.mode)
    );
}

/// `<code>text</code>`, or nothing.
fn code(text: Option<&str>) -> String {
    text.map_or(String::new(), |t| format!("<code>{}</code>", esc(t)))
}

/// `ongoing` / `resolved` / `latent`, as a badge.
fn state(f: &Finding) -> String {
    let s = match f.state {
        State::Ongoing => "ongoing",
        State::Resolved => "resolved",
        State::Latent => "latent",
    };
    format!("<span class=\"state {s}\">{s}</span>")
}

/// `2 requests (504) from 2026-11-21 20:40:10 to 20:40:11`.
fn requests(f: &Finding) -> Option<String> {
    let count = f.count.filter(|&c| c > 0)?;
    let status = f.status.map(|s| format!(" ({s})")).unwrap_or_default();
    let when = match (f.first_seen, f.last_seen) {
        (Some(a), Some(b)) => format!(" {}", span(a, b)),
        _ => String::new(),
    };
    Some(format!("{}{status}{when}", plural(count, "request")))
}

/// Prose with `code` spans (the rules write commands and directives in backticks).
pub(super) fn inline(text: &str) -> String {
    if !text.matches('`').count().is_multiple_of(2) {
        return esc(text).into_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use medic_core::backend::Backend;
    use medic_core::facts::Skipped;
    use medic_core::rules::{Fix, Step};

    use super::super::events::{Events, MarkerKind};
    use super::*;
    use crate::config_lint::Tool;
    use crate::diagnose::{Inputs, SCHEMA};
    use crate::load::InstanceReport;

    fn t(s: &str) -> LogTime {
        LogTime::parse_iso(s.as_bytes()).unwrap()
    }

    /// A small report: one finding with every part (log, config and probe evidence, a story,
    /// a backend, the clients, a fix), a latent one, a skipped check, markers; hostile strings
    /// in the log line and the upstream.
    fn report() -> DiagnoseReport {
        let line = "2026/11/20 14:32:10 [error] 812#812: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.9, server: shop, request: \"GET /</script><svg onload=alert(1)> HTTP/1.1\", upstream: \"http://127.0.0.1:3000/\", host: \"\\\"><img src=x onerror=alert(1)>\"";
        let down = Finding {
            id: "backend-down",
            class: Some("connect-refused"),
            severity: Severity::Error,
            status: Some(502),
            upstream: Some("127.0.0.1:3000".into()),
            title: "nothing listens on 127.0.0.1:3000: the backend is down".into(),
            count: Some(42),
            first_seen: Some(t("2026-11-20T14:32:10")),
            last_seen: Some(t("2026-11-20T14:35:22")),
            evidence: vec![
                Evidence::log(&medic_core::facts::LogLine {
                    source: "/var/log/nginx/error.log:120".into(),
                    text: line.into(),
                }),
                Evidence {
                    kind: "config",
                    source: "/etc/nginx/sites-enabled/shop:14".into(),
                    text: "proxy_pass http://127.0.0.1:3000;".into(),
                    at: None,
                },
                Evidence::probe("connect", "127.0.0.1:3000: refused".into()),
            ],
            fix: Fix {
                summary: "start `my-backend.service` again".into(),
                steps: vec![
                    "why did it stop? `journalctl -u my-backend.service -n 50`".into(),
                    "restart it".into(),
                ],
                commands: vec!["systemctl restart my-backend.service".into()],
                time: "1-3 min",
                risk: "low",
                remedy: None,
            },
            per_minute: vec![
                (t("2026-11-20T14:32:00"), 12),
                (t("2026-11-20T14:33:00"), 25),
                (t("2026-11-20T14:35:00"), 5),
            ],
            backend: Some(Box::new(Backend {
                supervisor: "systemd".into(),
                name: "my-backend.service".into(),
                state: Some("failed".into()),
                restarts: Some(4),
                pid: None,
                since: Some("2026-11-20T14:31:58".into()),
                confidence: "high".into(),
                why: "its ExecStart names 127.0.0.1:3000".into(),
                unit: None,
                config: Some("/etc/systemd/system/my-backend.service".into()),
                pm2_home: None,
                user: None,
            })),
            impact: Some(medic_core::facts::Impact {
                requests: 42,
                client_errors: 40,
                retried_ok: 2,
                statuses: [("502".to_string(), 40), ("200".to_string(), 2)]
                    .into_iter()
                    .collect(),
                cut_off: 0,
            }),
            state: State::Ongoing,
            resolved_at: None,
            timeline: vec![Step {
                id: "upstream-reset",
                class: Some("upstream-reset"),
                count: 3,
                first_seen: t("2026-11-20T14:31:50"),
                last_seen: t("2026-11-20T14:31:57"),
                title: "127.0.0.1:3000 reset connections mid-request".into(),
                evidence: None,
            }],
        };
        let latent = Finding::latent(
            "limit-req-no-burst",
            "limit_req without burst rejects the second request of a burst".into(),
            vec![Evidence {
                kind: "config",
                source: "/etc/nginx/nginx.conf:30".into(),
                text: "limit_req zone=one;".into(),
                at: None,
            }],
            Fix {
                summary: "add `burst=`".into(),
                steps: vec![],
                commands: vec![],
                time: "2 min",
                risk: "low",
                remedy: None,
            },
        );
        let mut facts = medic_core::facts::Facts::default();
        facts.logs.error_logs = vec!["/var/log/nginx/error.log".into()];
        let mut events = Events::of(&facts, std::slice::from_ref(&down));
        events.failures_per_minute = vec![
            (t("2026-11-20T14:31:00"), 3),
            (t("2026-11-20T14:32:00"), 12),
            (t("2026-11-20T14:33:00"), 25),
            (t("2026-11-20T14:35:00"), 5),
        ];
        events.markers.push(Marker {
            kind: MarkerKind::Reload,
            at: t("2026-11-20T14:34:30"),
            label: "nginx reloaded its configuration (`reconfiguring`)".into(),
        });
        events.markers.sort_by_key(|m| m.at);
        DiagnoseReport {
            schema: SCHEMA,
            tool: Tool {
                name: "nginx-medic",
                version: "0.1.0",
            },
            instances: vec![InstanceReport {
                config: "/etc/nginx/nginx.conf".into(),
                prefix: None,
                nginx_version: Some("1.22.1".into()),
                pid: None,
                binary: None,
                read_from: "files",
                unit: None,
            }],
            findings: vec![down, latent],
            skipped: vec![Skipped::new(
                "probes",
                "--no-probe: post-mortem from the files only",
            )],
            inputs: Inputs {
                error_logs: vec!["/var/log/nginx/error.log".into()],
                access_logs: vec![],
                since: Some("2026-11-19T14:35:22".into()),
                until: None,
                mode: "post-mortem",
            },
            events,
        }
    }

    #[test]
    fn small_report() {
        let body = body(&report(), 0);
        assert!(!body.contains("<svg onload"));
        assert!(!body.contains("<img src=x"));
        insta::assert_snapshot!(body);
    }

    #[test]
    fn max_limits_the_findings_in_detail() {
        let body = body(&report(), 1);
        assert!(body.contains("id=\"f1\""));
        assert!(!body.contains("id=\"f2\""));
        assert!(body.contains("1 more finding not shown"));
    }

    #[test]
    fn inline_code_spans_are_escaped() {
        assert_eq!(
            inline("run `a<b` then <i>"),
            "run <code>a&lt;b</code> then &lt;i&gt;"
        );
        assert_eq!(inline("odd ` tick <"), "odd ` tick &lt;");
    }
}
