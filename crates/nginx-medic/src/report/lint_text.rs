//! The terminal report of `nginx-medic config lint`, in rustc's shape:
//!
//! ```text
//! warning[ssl-no-sni]: TLS upstream api.example.com:443 is named by host, but nginx sends no SNI
//!   --> /etc/nginx/sites-enabled/app:14
//!    |
//! 14 |         proxy_pass https://api.example.com;
//!    |         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
//!    = help: proxy_ssl_server_name on;
//! ```

use std::io::{self, Write};

use medic_core::rules::{Evidence, Finding, Severity};

use super::Style;
use crate::config_lint::{LintReport, Sources};

/// The severity word in its color.
fn severity(st: &Style, sev: Severity) -> String {
    match sev {
        Severity::Error => st.paint("1;31", "error"),
        Severity::Warning => st.paint("1;33", "warning"),
        Severity::Info => st.paint("1;36", "info"),
    }
}

pub fn write(w: &mut impl Write, r: &LintReport, sources: &Sources, color: bool) -> io::Result<()> {
    let st = Style { color };
    for f in &r.findings {
        finding(w, f, sources, &st)?;
        writeln!(w)?;
    }
    for s in &r.skipped {
        writeln!(w, "{}: skipped {}: {}", st.bold("note"), s.check, s.why)?;
    }
    let count = |sev| r.findings.iter().filter(|f| f.severity == sev).count();
    let configs: Vec<&str> = r.instances.iter().map(|i| i.config.as_str()).collect();
    if r.findings.is_empty() {
        writeln!(w, "no findings in {}", configs.join(", "))?;
    } else {
        let n = |k: usize, word: &str| format!("{k} {word}{}", if k == 1 { "" } else { "s" });
        writeln!(
            w,
            "{}: {} ({}, {}) in {}",
            st.bold("summary"),
            n(r.findings.len(), "finding"),
            n(count(Severity::Error), "error"),
            n(count(Severity::Warning), "warning"),
            configs.join(", ")
        )?;
    }
    Ok(())
}

fn finding(w: &mut impl Write, f: &Finding, sources: &Sources, st: &Style) -> io::Result<()> {
    writeln!(
        w,
        "{}{}: {}",
        severity(st, f.severity),
        st.bold(&format!("[{}]", f.id)),
        st.bold(&f.title)
    )?;
    let Some(main) = f.evidence.first() else {
        return Ok(());
    };
    // The gutter is as wide as the largest line number shown.
    let width = f
        .evidence
        .iter()
        .filter_map(|e| e.at.as_ref().map(|(_, l)| l.to_string().len()))
        .max()
        .unwrap_or(1);
    let pad = " ".repeat(width);
    snippet(w, main, sources, st, &pad, "-->")?;
    for e in &f.evidence[1..] {
        if e.at.is_some() {
            snippet(w, e, sources, st, &pad, ":::")?;
        } else {
            writeln!(w, "{pad} {} note: {}", st.blue("="), e.text)?;
        }
    }
    if let Some(u) = &f.upstream {
        writeln!(w, "{pad} {} upstream: {u}", st.blue("="))?;
    }
    writeln!(w, "{pad} {} help: {}", st.blue("="), f.fix.summary)?;
    writeln!(
        w,
        "{pad} {} fix: {}, risk {}",
        st.blue("="),
        f.fix.time,
        f.fix.risk
    )?;
    Ok(())
}

fn snippet(
    w: &mut impl Write,
    e: &Evidence,
    sources: &Sources,
    st: &Style,
    pad: &str,
    arrow: &str,
) -> io::Result<()> {
    let Some((file, line)) = &e.at else {
        writeln!(w, "{pad}{} {}", st.blue(arrow), e.source)?;
        writeln!(w, "{pad} {}", st.blue("|"))?;
        writeln!(w, "{pad} {} {}", st.blue("|"), e.text)?;
        return Ok(());
    };
    writeln!(w, "{pad}{} {file}:{line}", st.blue(arrow))?;
    // The line as written in the file; the directive re-assembled when the file is not at hand.
    let text = sources
        .get(&**file)
        .and_then(|s| s.lines().nth((*line as usize).saturating_sub(1)))
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.trim().is_empty())
        .unwrap_or_else(|| e.text.clone());
    let first_word = e.text.split_whitespace().next().unwrap_or("");
    let start = text
        .find(first_word)
        .filter(|_| !first_word.is_empty())
        .unwrap_or_else(|| text.len() - text.trim_start().len());
    // Underline the directive up to its `;` (or `{`), or to the end of the line.
    let rest = &text[start..];
    let len = rest
        .find([';', '{'])
        .map_or(rest.trim_end().chars().count(), |i| {
            rest[..=i].chars().count()
        });
    let num = format!("{line:>width$}", width = pad.len());
    writeln!(w, "{pad} {}", st.blue("|"))?;
    writeln!(w, "{} {} {text}", st.blue(&num), st.blue("|"))?;
    writeln!(
        w,
        "{pad} {} {}{}",
        st.blue("|"),
        " ".repeat(text[..start].chars().count()),
        st.paint("1;33", &"^".repeat(len.max(1)))
    )?;
    Ok(())
}
