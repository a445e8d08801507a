//! The terminal report of `nginx-medic logs`.

use std::io::{self, Write};

use medic_core::logs::report::{AccessLogReport, ErrorLogReport, LogReport, TopItem, Unparsed};
use medic_parse::time::LogTime;

use super::Style;

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const SPARK_WIDTH: usize = 72;

pub fn logs(w: &mut impl Write, r: &LogReport, color: bool) -> io::Result<()> {
    let st = Style { color };
    if r.window.since.is_some() || r.window.until.is_some() {
        writeln!(
            w,
            "{} {} .. {}",
            st.dim("window:"),
            r.window.since.as_deref().unwrap_or("start"),
            r.window.until.as_deref().unwrap_or("end")
        )?;
    }
    if let Some(e) = &r.error_log {
        error_section(w, e, &st)?;
    }
    if let Some(a) = &r.access_log {
        access_section(w, a, &st)?;
    }
    if let Some(j) = &r.join {
        writeln!(
            w,
            "\n{}",
            st.bold("Error log x access log (same client and request, within 2 s)")
        )?;
        if j.matched.is_empty() {
            writeln!(w, "  no access-log line matches an error-log failure")?;
        }
        for m in &j.matched {
            writeln!(w, "  {:<22} -> {}  {:>8}", m.class, m.status, m.count)?;
        }
        for u in &j.unexplained_5xx {
            writeln!(
                w,
                "  {:<22} -> {}  {:>8}  (origin: {})",
                "no error entry", u.status, u.count, u.origin
            )?;
        }
        if j.not_indexed > 0 {
            writeln!(
                w,
                "  {}",
                st.dim(&format!(
                    "partial: {} failures were not indexed (index full)",
                    j.not_indexed
                ))
            )?;
        }
    }
    if !r.errors.is_empty() {
        writeln!(w, "\n{}", st.red("Inputs that could not be read"))?;
        for e in &r.errors {
            writeln!(w, "  {}", e.error)?;
        }
    }
    for i in r.inputs.iter().filter(|i| i.error.is_some() && i.bytes > 0) {
        writeln!(
            w,
            "  {} {}",
            st.red("partly read:"),
            i.error.as_deref().unwrap_or("")
        )?;
    }
    if !r.inputs.is_empty() {
        let files: Vec<String> = r
            .inputs
            .iter()
            .map(|i| format!("{} ({}, {} lines)", i.path, i.kind, i.lines))
            .collect();
        writeln!(w, "\n{} {}", st.dim("read:"), files.join(", "))?;
    }
    Ok(())
}

fn error_section(w: &mut impl Write, e: &ErrorLogReport, st: &Style) -> io::Result<()> {
    let span = match (&e.first_seen, &e.last_seen) {
        (Some(a), Some(b)) => format!("{a} .. {b}"),
        _ => "no entries".to_string(),
    };
    let levels: Vec<String> = e.levels.iter().map(|(l, n)| format!("{l} {n}")).collect();
    writeln!(
        w,
        "{} {} entries, {}  ({})",
        st.bold("Error log:"),
        e.entries,
        span,
        levels.join(", ")
    )?;
    if e.outside_window > 0 {
        writeln!(
            w,
            "  {}",
            st.dim(&format!("{} entries outside the window", e.outside_window))
        )?;
    }
    let failures: Vec<_> = e
        .by_upstream
        .iter()
        .filter(|c| c.class != "other" && c.class != "fastcgi-stderr")
        .collect();
    if failures.is_empty() {
        writeln!(w, "  no upstream failures logged")?;
    } else {
        writeln!(
            w,
            "\n  {:<20} {:<36} {:>8}  {:<19}  {:<19}",
            "CLASS", "UPSTREAM", "COUNT", "FIRST", "LAST"
        )?;
        for c in failures.iter().take(30) {
            writeln!(
                w,
                "  {:<20} {:<36} {:>8}  {}  {}",
                st.red(&pad(c.class, 20)),
                trunc(&c.upstream, 36),
                c.count,
                c.first_seen,
                c.last_seen
            )?;
        }
        if failures.len() > 30 {
            writeln!(
                w,
                "  {}",
                st.dim(&format!(
                    "... {} more (--format json has them all)",
                    failures.len() - 30
                ))
            )?;
        }
        for c in failures.iter().take(3) {
            writeln!(
                w,
                "  {} {}\n    {}",
                st.dim("e.g."),
                c.example.source,
                trunc(&c.example.text, 220)
            )?;
        }
    }
    let series: Vec<(LogTime, u64)> = e
        .per_minute
        .iter()
        .filter_map(|m| LogTime::parse_iso(m.minute.as_bytes()).map(|t| (t, m.failures)))
        .collect();
    sparkline(w, "failures per minute", &series, st)?;
    let with_tops: Vec<_> = e
        .classes
        .iter()
        .filter(|c| c.failure && !c.top_requests.is_empty())
        .collect();
    if !with_tops.is_empty() {
        writeln!(w, "\n  {}", st.bold("Top requests and clients per class"))?;
        for c in with_tops.iter().take(8) {
            writeln!(w, "  {} ({}):", st.red(c.class), c.count)?;
            writeln!(w, "    requests: {}", tops(&c.top_requests, 4))?;
            writeln!(w, "    clients:  {}", tops(&c.top_clients, 4))?;
        }
    }
    for c in e.classes.iter().filter(|c| !c.failure) {
        writeln!(
            w,
            "  {}",
            st.dim(&format!("{}: {} entries", c.class, c.count))
        )?;
    }
    if e.without_upstream > 0 {
        writeln!(
            w,
            "  {}",
            st.dim(&format!(
                "{} entries counted without their upstream: their class names more than {} upstreams",
                e.without_upstream,
                medic_core::logs::error_summary::MAX_CELLS_PER_CLASS
            ))
        )?;
    }
    unparsed(w, &e.unparsed, st)
}

fn access_section(w: &mut impl Write, a: &AccessLogReport, st: &Style) -> io::Result<()> {
    let total: u64 = a.status.values().sum();
    let five = a.status.get("5xx").copied().unwrap_or(0);
    let pct = if total > 0 {
        five as f64 * 100.0 / total as f64
    } else {
        0.0
    };
    let codes: Vec<String> = a
        .status_codes
        .iter()
        .filter(|(k, _)| k.starts_with('5') || k.as_str() == "499")
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    writeln!(
        w,
        "\n{} {} requests, 5xx {} ({:.2}%){}",
        st.bold("Access log:"),
        a.records,
        five,
        pct,
        if codes.is_empty() {
            String::new()
        } else {
            format!("  [{}]", codes.join(", "))
        }
    )?;
    if let Some(n) = &a.format_note {
        writeln!(w, "  {}", st.dim(&format!("log_format: {n}")))?;
    }
    if a.outside_window > 0 {
        writeln!(
            w,
            "  {}",
            st.dim(&format!("{} requests outside the window", a.outside_window))
        )?;
    }
    if !a.errors_5xx.is_empty() {
        writeln!(
            w,
            "\n  {:<36} {:>6} {:<9} {:>8}  {:<19}  {:<19}",
            "UPSTREAM", "STATUS", "MADE BY", "COUNT", "FIRST", "LAST"
        )?;
        for c in a.errors_5xx.iter().take(20) {
            writeln!(
                w,
                "  {:<36} {:>6} {:<9} {:>8}  {}  {}",
                trunc(&c.upstream, 36),
                c.status,
                c.origin,
                c.count,
                c.first_seen,
                c.last_seen
            )?;
        }
        if a.errors_5xx.iter().any(|c| c.origin == "unknown") {
            writeln!(w, "  {}", st.dim("unknown: nginx and the upstream both write 502/504 in $upstream_status; add $upstream_header_time to the log_format to tell them apart"))?;
        }
    }
    let series: Vec<(LogTime, u64)> = a
        .per_minute
        .iter()
        .filter_map(|m| LogTime::parse_iso(m.minute.as_bytes()).map(|t| (t, m.total)))
        .collect();
    sparkline(w, "5xx per minute", &series, st)?;
    if !a.top_requests_5xx.is_empty() {
        writeln!(w, "  5xx requests: {}", tops(&a.top_requests_5xx, 4))?;
        writeln!(w, "  5xx clients:  {}", tops(&a.top_clients_5xx, 4))?;
    }
    for c in a.client_closed.iter().take(5) {
        let urt = c
            .mean_upstream_response_time
            .map(|m| format!(", upstream had taken {m:.3}s on average"))
            .unwrap_or_default();
        writeln!(
            w,
            "  499 (client gave up) via {}: {}{}",
            c.upstream, c.count, urt
        )?;
    }
    unparsed(w, &a.unparsed, st)
}

fn unparsed(w: &mut impl Write, u: &Unparsed, st: &Style) -> io::Result<()> {
    if u.count == 0 {
        return Ok(());
    }
    writeln!(
        w,
        "  {}",
        st.dim(&format!("{} lines not understood, for example:", u.count))
    )?;
    for s in u.samples.iter().take(3) {
        writeln!(w, "    {}: {}: {}", s.source, s.reason, trunc(&s.text, 100))?;
    }
    Ok(())
}

/// A per-minute series as one line of block characters, minutes grouped to fit the width.
fn sparkline(
    w: &mut impl Write,
    what: &str,
    series: &[(LogTime, u64)],
    st: &Style,
) -> io::Result<()> {
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        return Ok(());
    };
    let minutes = ((last.0 .0 - first.0 .0) / 60 + 1) as usize;
    let per_cell = minutes.div_ceil(SPARK_WIDTH).max(1);
    let cells = minutes.div_ceil(per_cell);
    let mut buckets = vec![0u64; cells];
    for (t, n) in series {
        let i = ((t.0 - first.0 .0) / 60) as usize / per_cell;
        buckets[i.min(cells - 1)] += n;
    }
    let max = buckets.iter().copied().max().unwrap_or(0).max(1);
    let line: String = buckets
        .iter()
        .map(|&n| {
            if n == 0 {
                ' '
            } else {
                SPARK[((n * 7).div_ceil(max)) as usize].min('█')
            }
        })
        .collect();
    let unit = if per_cell == 1 {
        "1 min".to_string()
    } else {
        format!("{per_cell} min")
    };
    writeln!(
        w,
        "\n  {} ({}/cell, max {}): {} .. {}",
        st.bold(what),
        unit,
        max,
        first.0.minute_string(),
        last.0.minute_string()
    )?;
    writeln!(w, "  |{line}|")
}

fn tops(items: &[TopItem], n: usize) -> String {
    items
        .iter()
        .take(n)
        .map(|t| format!("{} ({})", trunc(&t.value, 60), t.count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pad(s: &str, n: usize) -> String {
    format!("{s:<n$}")
}

fn trunc(s: &str, n: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if s.chars().count() <= n {
        return s;
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}
