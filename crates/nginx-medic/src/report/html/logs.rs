//! The page of `logs --format html`: the failure classes per upstream over time, the access
//! log's statuses, the join, and the timeline by class.

use std::fmt::Write as _;
use std::io;

use medic_core::logs::report::{LogReport, TopItem};
use medic_core::logs::{AccessSummary, ErrorSummary};
use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;

use super::diagnose::{inline, markers_list};
use super::events::{Events, Marker, MarkerKind};
use super::timeline::{self, Series, Timeline};
use super::{cut, esc, page, plural};

/// Rows of a table at most (the JSON holds them all).
const MAX_ROWS: usize = 200;
const MAX_TEXT: usize = 600;

/// The timeline of a log summary.
#[derive(Debug, Default)]
pub struct Chart {
    pub what: &'static str,
    pub series: Vec<Series>,
    pub events: Events,
}

/// The timeline from the summaries' own minutes: the error log's failures by class (the whole
/// window), else the access log's 5xx by status; reloads and rotations as markers.
pub fn timeline(
    e: Option<&ErrorSummary>,
    a: Option<&AccessSummary<'_>>,
    rotations: &[(LogTime, String)],
) -> Chart {
    let mut series: Vec<Series> = Vec::new();
    let mut what = "failures by class";
    if let Some(e) = e {
        for class in FailureClass::ALL.into_iter().filter(|c| c.is_failure()) {
            let minutes: Vec<(LogTime, u64)> = e
                .minutes
                .iter()
                .filter(|(_, c)| c[class as usize] > 0)
                .map(|(m, c)| (LogTime(m * 60), u64::from(c[class as usize])))
                .collect();
            if !minutes.is_empty() {
                series.push(Series {
                    name: class.id().to_string(),
                    minutes,
                });
            }
        }
    }
    if series.is_empty() {
        if let Some(a) = a {
            what = "5xx responses by status";
            let mut by: std::collections::BTreeMap<u16, Vec<(LogTime, u64)>> = Default::default();
            for ((m, _, status, _), n) in &a.per_minute {
                by.entry(*status).or_default().push((LogTime(*m), *n));
            }
            series = by
                .into_iter()
                .map(|(s, minutes)| Series {
                    name: s.to_string(),
                    minutes,
                })
                .collect();
        }
    }
    let mut markers: Vec<Marker> = rotations
        .iter()
        .map(|(t, p)| Marker {
            kind: MarkerKind::Rotation,
            at: *t,
            label: format!("{p} begins (the first entry read from it)"),
        })
        .collect();
    let mut unknown = Vec::new();
    match e {
        Some(e) => markers.extend(e.reloads.iter().map(|t| Marker {
            kind: MarkerKind::Reload,
            at: *t,
            label: "nginx reloaded its configuration (`reconfiguring`)".into(),
        })),
        None => unknown.push((MarkerKind::Reload, "no error log was read".to_string())),
    }
    let why =
        "`logs` reads the log files only (`diagnose` reads process start times and the kernel log)";
    unknown.push((MarkerKind::Restart, why.to_string()));
    unknown.push((MarkerKind::Oom, why.to_string()));
    markers.sort_by_key(|m| (m.at, m.kind));
    Chart {
        what,
        series,
        events: Events {
            failures_per_minute: Vec::new(),
            markers,
            unknown,
        },
    }
}

pub fn write(w: &mut impl io::Write, r: &LogReport, chart: &Chart) -> io::Result<()> {
    w.write_all(page("nginx-medic: logs summary", &body(r, chart)).as_bytes())
}

fn body(r: &LogReport, chart: &Chart) -> String {
    let mut s = String::new();
    let window = match (&r.window.since, &r.window.until) {
        (None, None) => "all entries".to_string(),
        (a, b) => format!(
            "{} to {}",
            a.as_deref().unwrap_or("the start"),
            b.as_deref().unwrap_or("the end")
        ),
    }
    .replace('T', " ");
    let _ = writeln!(
        s,
        "<header class=\"top\"><span class=\"brand\">nginx-medic logs</span><span class=\"meta\">window {} · nginx-medic {}</span></header>",
        esc(&window),
        esc(r.tool.version)
    );
    summary(&mut s, r);
    let figure = timeline::render(&Timeline {
        what: chart.what,
        series: chart.series.clone(),
        markers: &chart.events.markers,
        unknown: &chart.events.unknown,
        ..Default::default()
    });
    if !figure.is_empty() {
        s.push_str("<h2 id=\"timeline\">Timeline</h2>\n");
        s.push_str(&figure);
        markers_list(&mut s, &chart.events.markers);
    }
    if let Some(e) = &r.error_log {
        s.push_str("<h2 id=\"error-log\">Error log</h2>\n");
        let levels: Vec<String> = e.levels.iter().map(|(l, n)| format!("{l} {n}")).collect();
        let _ = writeln!(
            s,
            "<p>{} in {} ({}), {}{}.</p>",
            if e.entries == 1 {
                "1 entry".to_string()
            } else {
                format!("{} entries", e.entries)
            },
            plural(e.lines, "line"),
            esc(&levels.join(", ")),
            match (&e.first_seen, &e.last_seen) {
                (Some(a), Some(b)) => format!("from {} to {}", esc(&t(a)), esc(&t(b))),
                _ => "no entries in the window".to_string(),
            },
            if e.outside_window > 0 {
                format!("; {} outside the window", e.outside_window)
            } else {
                String::new()
            }
        );
        if !e.classes.is_empty() {
            s.push_str("<h3>Classes</h3>\n<table>\n<thead><tr><th>class</th><th>status</th><th class=\"n\">entries</th><th class=\"n\">upstreams</th><th>first</th><th>last</th><th>top requests</th><th>top clients</th></tr></thead>\n<tbody>\n");
            for c in &e.classes {
                let _ = writeln!(
                    s,
                    "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td></tr>",
                    esc(c.class),
                    c.status.map_or(String::new(), |s| s.to_string()),
                    c.count,
                    c.upstreams,
                    esc(&t(&c.first_seen)),
                    esc(&t(&c.last_seen)),
                    tops(&c.top_requests, 3),
                    tops(&c.top_clients, 3)
                );
            }
            s.push_str("</tbody>\n</table>\n");
        }
        let cells: Vec<_> = e
            .by_upstream
            .iter()
            .filter(|c| c.class != "other" && c.class != "fastcgi-stderr")
            .collect();
        if !cells.is_empty() {
            // One entry of each class as nginx wrote it (its largest upstream's first), then
            // the table, each row pointing at its first entry.
            s.push_str("<h3>One entry per class</h3>\n<ol class=\"evidence\">\n");
            let mut seen: Vec<&str> = Vec::new();
            for c in &cells {
                if seen.contains(&c.class) {
                    continue;
                }
                seen.push(c.class);
                let _ = writeln!(
                    s,
                    "<li><div class=\"ev-head\"><span class=\"kind\">{}</span> <code>{}</code></div><pre class=\"ev-body\">{}</pre></li>",
                    esc(c.class),
                    esc(&c.example.source),
                    esc(&cut(&c.example.text, MAX_TEXT))
                );
            }
            s.push_str("</ol>\n<h3>Failures per upstream</h3>\n<table>\n<thead><tr><th>class</th><th>upstream</th><th class=\"n\">entries</th><th>first</th><th>last</th><th>first entry</th></tr></thead>\n<tbody>\n");
            for c in cells.iter().take(MAX_ROWS) {
                let _ = writeln!(
                    s,
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td><code>{}</code></td></tr>",
                    esc(c.class),
                    esc(&c.upstream),
                    c.count,
                    esc(&t(&c.first_seen)),
                    esc(&t(&c.last_seen)),
                    esc(&c.example.source)
                );
            }
            s.push_str("</tbody>\n</table>\n");
            more(&mut s, cells.len());
        }
        if e.without_upstream > 0 {
            let _ = writeln!(
                s,
                "<p class=\"note\">{} entries were counted without their upstream (their class named too many distinct upstreams).</p>",
                e.without_upstream
            );
        }
        unparsed(&mut s, "error log", &e.unparsed);
    }
    if let Some(a) = &r.access_log {
        s.push_str("<h2 id=\"access-log\">Access log</h2>\n");
        let _ = writeln!(
            s,
            "<p>{} of {} read with <code>{}</code>{}{}.</p>",
            plural(a.records, "record"),
            plural(a.lines, "line"),
            esc(&a.format),
            a.format_note
                .as_deref()
                .map_or(String::new(), |n| format!(" ({})", esc(n))),
            match (&a.first_seen, &a.last_seen) {
                (Some(f), Some(l)) => format!(", from {} to {}", esc(&t(f)), esc(&t(l))),
                _ => String::new(),
            }
        );
        let statuses: Vec<String> = a
            .status
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .chain(
                a.status_codes
                    .iter()
                    .map(|(k, n)| format!("{}: {n}", esc(k))),
            )
            .collect();
        if !statuses.is_empty() {
            let _ = writeln!(
                s,
                "<p><strong>Statuses</strong> {}</p>",
                statuses.join(" · ")
            );
        }
        if !a.errors_5xx.is_empty() {
            s.push_str("<h3>5xx per upstream</h3>\n<table>\n<thead><tr><th>upstream</th><th>status</th><th>made by</th><th class=\"n\">requests</th><th>first</th><th>last</th><th>example</th></tr></thead>\n<tbody>\n");
            for c in a.errors_5xx.iter().take(MAX_ROWS) {
                let _ = writeln!(
                    s,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td><code>{}</code></td></tr>",
                    esc(&c.upstream),
                    c.status,
                    esc(c.origin),
                    c.count,
                    esc(&t(&c.first_seen)),
                    esc(&t(&c.last_seen)),
                    esc(&c.example)
                );
            }
            s.push_str("</tbody>\n</table>\n");
            more(&mut s, a.errors_5xx.len());
        }
        if !a.client_closed.is_empty() {
            s.push_str("<h3>Clients that gave up (499)</h3>\n<table>\n<thead><tr><th>upstream</th><th class=\"n\">requests</th><th class=\"n\">mean wait (s)</th><th class=\"n\">max wait (s)</th></tr></thead>\n<tbody>\n");
            for c in a.client_closed.iter().take(MAX_ROWS) {
                let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
                let _ = writeln!(
                    s,
                    "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    esc(&c.upstream),
                    c.count,
                    f(c.mean_upstream_response_time),
                    f(c.max_upstream_response_time)
                );
            }
            s.push_str("</tbody>\n</table>\n");
        }
        if !a.top_requests_5xx.is_empty() || !a.top_clients_5xx.is_empty() {
            let _ = writeln!(
                s,
                "<p><strong>Top requests with a 5xx</strong> {}</p>\n<p><strong>Top clients with a 5xx</strong> {}</p>",
                tops(&a.top_requests_5xx, 10),
                tops(&a.top_clients_5xx, 10)
            );
        }
        unparsed(&mut s, "access log", &a.unparsed);
    }
    if let Some(j) = &r.join {
        s.push_str("<h2 id=\"join\">Error log × access log</h2>\n<p class=\"note\">The same client and request line, the access line written within 2 s of the error entry.</p>\n<table>\n<thead><tr><th>error-log class</th><th>client got</th><th class=\"n\">requests</th></tr></thead>\n<tbody>\n");
        for m in &j.matched {
            let _ = writeln!(
                s,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(m.class),
                m.status,
                m.count
            );
        }
        for u in &j.unexplained_5xx {
            let _ = writeln!(
                s,
                "<tr><td>no error entry (made by {})</td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(u.origin),
                u.status,
                u.count
            );
        }
        s.push_str("</tbody>\n</table>\n");
        if j.not_indexed > 0 {
            let _ = writeln!(
                s,
                "<p class=\"note\">Partial: {} failures were not indexed (the index was full).</p>",
                j.not_indexed
            );
        }
    }
    s.push_str("<h2 id=\"inputs\">Inputs read</h2>\n<table>\n<thead><tr><th>file</th><th>kind</th><th class=\"n\">lines</th><th class=\"n\">bytes</th><th>problem</th></tr></thead>\n<tbody>\n");
    for i in &r.inputs {
        let _ = writeln!(
            s,
            "<tr><td><code>{}</code></td><td>{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&i.path),
            i.kind,
            if i.compressed { ", gzip" } else { "" },
            i.lines,
            i.bytes,
            esc(i.error.as_deref().unwrap_or(""))
        );
    }
    for p in &r.errors {
        let _ = writeln!(
            s,
            "<tr><td><code>{}</code></td><td></td><td></td><td></td><td>could not be read: {}</td></tr>",
            esc(&p.path),
            esc(&p.error)
        );
    }
    s.push_str("</tbody>\n</table>\n");
    let _ = writeln!(
        s,
        "<footer>nginx-medic {} · <code>nginx-medic logs --format json</code> holds the same summary as data. Times are nginx's local clock.</footer>",
        esc(r.tool.version)
    );
    s
}

/// The headline: what failed most, and what the clients got.
fn summary(s: &mut String, r: &LogReport) {
    let failures: Vec<_> = r
        .error_log
        .iter()
        .flat_map(|e| e.classes.iter().filter(|c| c.failure))
        .collect();
    let total: u64 = failures.iter().map(|c| c.count).sum();
    let a5xx = r
        .access_log
        .as_ref()
        .and_then(|a| a.status.get("5xx").copied())
        .unwrap_or(0);
    let class = if total > 0 || a5xx > 0 {
        "sev-error"
    } else {
        "healthy"
    };
    let _ = write!(
        s,
        "<section class=\"verdict {class}\">\n<p class=\"label\">Summary</p>\n<h1>"
    );
    match failures.first() {
        Some(top) => {
            let _ = write!(
                s,
                "{} upstream {} in the error log; most: <code class=\"id\">{}</code> ({}, {})",
                total,
                if total == 1 { "failure" } else { "failures" },
                esc(top.class),
                top.count,
                plural(top.upstreams as u64, "upstream")
            );
        }
        None if r.error_log.is_some() => s.push_str("No upstream failures in the error log"),
        None => s.push_str("No error log read"),
    }
    s.push_str("</h1>\n");
    if let Some(a) = &r.access_log {
        let _ = writeln!(
            s,
            "<p class=\"line\">Access log: {} of {} got a 5xx.</p>",
            a5xx,
            plural(a.records, "request")
        );
    }
    if failures.len() > 1 {
        let rest: Vec<String> = failures[1..]
            .iter()
            .take(8)
            .map(|c| format!("<code>{}</code> {}", esc(c.class), c.count))
            .collect();
        let _ = writeln!(s, "<p class=\"line\">Also: {}.</p>", rest.join(", "));
    }
    s.push_str("</section>\n");
}

/// A time of the summary (`2026-11-20T14:32:10`) as the page writes times.
fn t(iso: &str) -> String {
    iso.replacen('T', " ", 1)
}

fn tops(items: &[TopItem], n: usize) -> String {
    items
        .iter()
        .take(n)
        .map(|t| format!("<code>{}</code> {}", esc(&cut(&t.value, 120)), t.count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn more(s: &mut String, len: usize) {
    if len > MAX_ROWS {
        let _ = writeln!(
            s,
            "<p class=\"note\">The largest {MAX_ROWS} of {len} rows; <code>--format json</code> holds all.</p>"
        );
    }
}

fn unparsed(s: &mut String, what: &str, u: &medic_core::logs::report::Unparsed) {
    if u.count == 0 {
        return;
    }
    let _ = writeln!(
        s,
        "<h3>Lines that are not {what} records</h3>\n<p>{} lines were counted, not read. {}:</p>\n<ol class=\"evidence\">",
        u.count,
        if u.samples.len() as u64 == u.count {
            "They are"
        } else {
            "The first"
        }
    );
    for x in &u.samples {
        let _ = writeln!(
            s,
            "<li><div class=\"ev-head\"><code>{}</code> {}</div><pre class=\"ev-body\">{}</pre></li>",
            esc(&x.source),
            inline(&x.reason),
            esc(&cut(&x.text, MAX_TEXT))
        );
    }
    s.push_str("</ol>\n");
}
