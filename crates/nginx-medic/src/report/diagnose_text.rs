//! The terminal report of `nginx-medic diagnose`, in the shape of rustc's diagnostics:
//!
//! ```text
//! error[socket-permission]: nginx workers (www-data) cannot write the PHP-FPM socket
//!   --> /var/log/nginx/error.log:120
//!    | 2026/11/20 14:32:10 [crit] 812#812: *1 connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) ...
//!    = 42 requests (502) from 2026-11-20T14:32:10 to 2026-11-20T14:35:22  ▁▃█▅▂
//!   ::: /etc/nginx/sites-enabled/app:14
//!    | fastcgi_pass unix:/run/php/php8.2-fpm.sock;
//!    = probe (stat): srw------- root:root /run/php/php8.2-fpm.sock
//! fix: set listen.owner/listen.group of the pool to www-data; restart PHP-FPM
//!    1. ...
//!    $ systemctl restart php8.2-fpm
//!    time 5 min, risk low
//! ```

use std::io::{self, Write};

use medic_core::rules::{Evidence, Finding, Severity};
use medic_parse::time::LogTime;

use super::Style;
use crate::diagnose::DiagnoseReport;

fn severity(st: &Style, sev: Severity) -> String {
    match sev {
        Severity::Error => st.paint("1;31", "error"),
        Severity::Warning => st.paint("1;33", "warning"),
        Severity::Info => st.paint("1;36", "info"),
    }
}

/// Longest log line shown; the file:line leads to the rest.
const MAX_LINE: usize = 300;

/// Writes the report; `max` findings at most (0: all).
pub fn write(w: &mut impl Write, r: &DiagnoseReport, max: usize, color: bool) -> io::Result<()> {
    let st = Style { color };
    let shown = if max == 0 {
        r.findings.len()
    } else {
        max.min(r.findings.len())
    };
    for f in &r.findings[..shown] {
        finding(w, f, &st)?;
        writeln!(w)?;
    }
    if shown < r.findings.len() {
        let rest = &r.findings[shown..];
        let ids: std::collections::BTreeSet<&str> = rest.iter().map(|f| f.id).collect();
        writeln!(
            w,
            "{} more findings not shown ({} errors; {}): `--max 0` shows all, `--format json` holds all\n",
            rest.len(),
            rest.iter().filter(|f| f.severity == Severity::Error).count(),
            ids.into_iter().collect::<Vec<_>>().join(", ")
        )?;
    }
    let count = |sev| r.findings.iter().filter(|f| f.severity == sev).count();
    let configs: Vec<&str> = r.instances.iter().map(|i| i.config.as_str()).collect();
    let logs: Vec<&str> = r
        .inputs
        .error_logs
        .iter()
        .chain(r.inputs.access_logs.iter())
        .map(String::as_str)
        .collect();
    if r.findings.is_empty() {
        writeln!(
            w,
            "{}: no problems found ({} run; config {}; logs {})",
            st.bold("healthy"),
            r.inputs.mode,
            if configs.is_empty() {
                "none".to_string()
            } else {
                configs.join(", ")
            },
            if logs.is_empty() {
                "none".to_string()
            } else {
                logs.join(", ")
            }
        )?;
    } else {
        let n = |k: usize, word: &str| format!("{k} {word}{}", if k == 1 { "" } else { "s" });
        writeln!(
            w,
            "{}: {} ({}, {}, {}), most likely root cause first; {} run",
            st.bold("summary"),
            n(r.findings.len(), "finding"),
            n(count(Severity::Error), "error"),
            n(count(Severity::Warning), "warning"),
            n(count(Severity::Info), "info"),
            r.inputs.mode,
        )?;
        writeln!(
            w,
            "  config: {}",
            if configs.is_empty() {
                "none".to_string()
            } else {
                configs.join(", ")
            }
        )?;
        writeln!(
            w,
            "  logs: {}{}",
            if logs.is_empty() {
                "none".to_string()
            } else {
                logs.join(", ")
            },
            r.inputs
                .since
                .as_ref()
                .map(|s| format!(" (since {s})"))
                .unwrap_or_default()
        )?;
    }
    if !r.skipped.is_empty() {
        writeln!(w, "{}:", st.bold("not checked"))?;
        for s in &r.skipped {
            writeln!(w, "  - {}: {}", s.check, s.why)?;
        }
    }
    Ok(())
}

fn finding(w: &mut impl Write, f: &Finding, st: &Style) -> io::Result<()> {
    let resolved = match (&f.state, &f.resolved_at) {
        (medic_core::rules::State::Resolved, Some(at)) => format!(" (resolved at {at})"),
        (medic_core::rules::State::Resolved, None) => " (resolved)".to_string(),
        _ => String::new(),
    };
    writeln!(
        w,
        "{}{}: {}{resolved}",
        severity(st, f.severity),
        st.bold(&format!("[{}]", f.id)),
        st.bold(&f.title)
    )?;
    let mut first = true;
    for e in &f.evidence {
        evidence(w, e, st, first)?;
        if first {
            timeline(w, f, st)?;
            first = false;
        }
    }
    let bar = st.blue("|");
    writeln!(w, "{} {}", st.paint("1;32", "fix:"), f.fix.summary)?;
    for (i, step) in f.fix.steps.iter().enumerate() {
        writeln!(w, "   {bar} {}. {step}", i + 1)?;
    }
    for c in &f.fix.commands {
        writeln!(w, "   {bar} {} {c}", st.dim("$"))?;
    }
    writeln!(w, "   {bar} time {}, risk {}", f.fix.time, f.fix.risk)?;
    Ok(())
}

fn evidence(w: &mut impl Write, e: &Evidence, st: &Style, first: bool) -> io::Result<()> {
    let bar = st.blue("|");
    match e.kind {
        "log" | "config" => {
            let arrow = if first { " -->" } else { " :::" };
            writeln!(w, "{} {}", st.blue(arrow), e.source)?;
            let mut text: String = e.text.chars().take(MAX_LINE).collect();
            if text.len() < e.text.len() {
                text.push_str(" ...");
            }
            writeln!(w, "   {bar} {text}")?;
        }
        kind => {
            writeln!(w, "   {} {} ({}): {}", st.blue("="), kind, e.source, e.text)?;
        }
    }
    Ok(())
}

/// `= 42 requests (502) from FIRST to LAST  ▁▃█▅▂`
fn timeline(w: &mut impl Write, f: &Finding, st: &Style) -> io::Result<()> {
    let Some(count) = f.count.filter(|&c| c > 0) else {
        return Ok(());
    };
    let status = f.status.map(|s| format!(" ({s})")).unwrap_or_default();
    let when = match (&f.first_seen, &f.last_seen) {
        (Some(a), Some(b)) if a == b => format!(" at {a}"),
        (Some(a), Some(b)) => format!(" from {a} to {b}"),
        _ => String::new(),
    };
    writeln!(
        w,
        "   {} {count} request{}{status}{when}  {}",
        st.blue("="),
        if count == 1 { "" } else { "s" },
        sparkline(&f.per_minute)
    )?;
    if let Some(u) = &f.upstream {
        writeln!(w, "   {} upstream: {u}", st.blue("="))?;
    }
    if !f.timeline.is_empty() {
        // The same target's other failures around the same time: one story, in time order.
        writeln!(w, "   {} the same story:", st.blue("="))?;
        for s in &f.timeline {
            let at = s
                .evidence
                .as_ref()
                .map_or(String::new(), |e| format!(" ({})", e.source));
            writeln!(
                w,
                "   {}   {} to {}: {} x{}: {}{at}",
                st.blue("="),
                s.first_seen,
                s.last_seen,
                s.id,
                s.count,
                s.title
            )?;
        }
    }
    if let Some(c) = clients(f) {
        writeln!(w, "   {} clients: {c}", st.blue("="))?;
    }
    if let Some(b) = &f.backend {
        let mut state = b.state.clone().unwrap_or_else(|| "?".into());
        if let Some(n) = b.restarts.filter(|n| *n > 0) {
            state.push_str(&format!(", {n} restarts"));
        }
        writeln!(
            w,
            "   {} backend: {} {} ({state}); {} confidence: {}",
            st.blue("="),
            b.supervisor,
            b.name,
            b.confidence,
            b.why
        )?;
    }
    Ok(())
}

/// What the clients got (the text after `clients: `); `None` for a finding without failures
/// in the logs.
pub(crate) fn clients(f: &Finding) -> Option<String> {
    use medic_core::rules::group::statuses_text;
    match &f.impact {
        Some(i) if i.cut_off > 0 => Some(format!(
            "{} of {} joined requests got a response cut short after its header, {} a 5xx ({})",
            i.cut_off,
            i.requests,
            i.client_errors,
            statuses_text(i)
        )),
        Some(i) if i.all_retried() => Some(format!(
            "0 affected: nginx retried the next peer for all {} requests ({})",
            i.requests,
            statuses_text(i)
        )),
        Some(i) => Some(format!(
            "{} of {} joined requests got a 5xx, {} served by a retry ({})",
            i.client_errors,
            i.requests,
            i.retried_ok,
            statuses_text(i)
        )),
        None if f.count.unwrap_or(0) > 0 => {
            Some("impact unknown (no access-log line joins these failures)".to_string())
        }
        None => None,
    }
}

/// One character per minute from the first to the last (at most 60, the last hour shown).
pub fn sparkline(per_minute: &[(LogTime, u32)]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let points: Vec<(i64, u32)> = per_minute.iter().map(|(t, n)| (t.0 / 60, *n)).collect();
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return String::new();
    };
    let start = first.0.max(last.0 - 59);
    let mut buckets = vec![0u32; (last.0 - start + 1) as usize];
    for (m, n) in &points {
        if *m >= start {
            buckets[(m - start) as usize] += n;
        }
    }
    let max = buckets.iter().copied().max().unwrap_or(1).max(1);
    buckets
        .iter()
        .map(|&n| {
            if n == 0 {
                ' '
            } else {
                BARS[((n as usize * 7) / max as usize).min(7)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_fills_quiet_minutes() {
        let s = sparkline(&[
            (LogTime::parse_iso(b"2026-11-20T14:30:00").unwrap(), 1),
            (LogTime::parse_iso(b"2026-11-20T14:33:00").unwrap(), 8),
        ]);
        assert_eq!(s, "▁  █");
    }
}
