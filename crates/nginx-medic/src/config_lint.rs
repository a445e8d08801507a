//! `nginx-medic config lint`: latent upstream misconfigurations (`causes.md` §2b), rustc-style,
//! JSON or SARIF.
//!
//! The config comes from `--config` (a main file, or a saved `nginx -T` dump), or from
//! discovery: each running nginx master, read through its own `nginx -T`, or from its files when
//! `nginx -T` fails (which is itself a `config-invalid` finding: the next reload will fail).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use medic_core::config::{build, BuildOptions};
use medic_core::rules::{self, Evidence, Finding, Severity};
use medic_parse::config::{Config, ConfigErrorKind};
use serde::Serialize;

use crate::cli::{self, ConfigLintArgs, LintFormat};
use crate::discover::Skipped;
use crate::load;
use crate::report::{lint_text, sarif};

/// Version of the JSON layout (`causes.md` §3).
pub const SCHEMA: u32 = 1;

/// The JSON report: findings of every instance, and what could not be checked.
#[derive(Debug, Serialize)]
pub struct LintReport {
    pub schema: u32,
    pub kind: &'static str,
    pub tool: Tool,
    pub instances: Vec<InstanceReport>,
    pub findings: Vec<Finding>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

pub use crate::load::InstanceReport;

/// The text of each config file, for the source lines of the text report.
pub type Sources = BTreeMap<String, String>;

/// Returns the exit status: 0 clean, 1 findings at or above `--fail-on`, 2 config unreadable.
pub fn run(args: &ConfigLintArgs, color: bool) -> Result<u8> {
    let mut report = LintReport {
        schema: SCHEMA,
        kind: "config-lint",
        tool: Tool {
            name: "nginx-medic",
            version: env!("CARGO_PKG_VERSION"),
        },
        instances: Vec::new(),
        findings: Vec::new(),
        skipped: Vec::new(),
    };
    let mut sources = Sources::new();
    let Some(loaded) = load::load(
        args.config.as_deref(),
        args.prefix.as_deref(),
        &mut report.skipped,
    )?
    else {
        return Ok(2);
    };
    // Only the text report shows source lines, and only those its findings cite: reading a
    // 500-file config again for JSON cost as much memory as the text itself.
    let text_report = args.format == LintFormat::Text;
    for l in loaded {
        let first = report.findings.len();
        if let Some((binary, status, stderr)) = &l.nginx_t_failed {
            report
                .findings
                .push(nginx_t_failed(binary, *status, stderr));
        }
        lint(&l.cfg, l.prefix.clone(), &mut report.findings);
        if text_report {
            let cited = cited_files(&report.findings[first..]);
            if l.dump_sections.is_empty() {
                read_sources(&l.cfg, &cited, &mut sources);
            }
            for (p, text) in l.dump_sections {
                if cited.contains(p.as_str()) {
                    sources.insert(p, String::from_utf8_lossy(&text).into_owned());
                }
            }
        }
        report.instances.push(l.instance);
        // The process ends soon: freeing a large tree node by node costs more than exiting.
        std::mem::forget(l.cfg);
    }
    rules::rank(&mut report.findings);

    let mut out = io::BufWriter::with_capacity(64 * 1024, crate::report::unbuffered_stdout());
    match args.format {
        LintFormat::Text => lint_text::write(&mut out, &report, &sources, color)?,
        LintFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        LintFormat::Sarif => {
            serde_json::to_writer_pretty(&mut out, &sarif::sarif(&report))?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    let fail_on = match args.fail_on {
        cli::Severity::Info => Severity::Info,
        cli::Severity::Warning => Severity::Warning,
        cli::Severity::Error => Severity::Error,
    };
    let failed = report.findings.iter().any(|f| f.severity >= fail_on);
    // As the tree and the model: the process ends now, and freeing 1,443 findings string by
    // string took 0.45 ms (5,000-server config).
    std::mem::forget(report);
    Ok(u8::from(failed))
}

/// Builds the model, runs the catalog, and turns parse errors into a `config-invalid` finding.
fn lint(cfg: &Arc<Config>, prefix: Option<String>, out: &mut Vec<Finding>) {
    parse_findings(cfg, out);
    // What the parse threads freed (file texts, tokens, their stacks) goes back to the OS here,
    // what the build freed below, and what the rules freed after them: each phase's memory
    // would otherwise be allocated beside the last one's leftovers (5,000 servers: 58 -> 54 MiB
    // for the second; then 40,170 -> 39,590 KiB for the first and third, the same time within
    // 0.2 ms, 60 interleaved runs). Purging at every free instead (`MIMALLOC_PURGE_DELAY=0`)
    // cost more faults than it saved.
    crate::alloc::release_freed_memory();
    let model = build(cfg, &BuildOptions { prefix });
    crate::alloc::release_freed_memory();
    let found = rules::check_all(&model);
    crate::alloc::release_freed_memory();
    // Most configs parse: then the rules' list is the report's, not copied into it.
    if out.is_empty() {
        *out = found;
    } else {
        out.extend(found);
    }
    std::mem::forget(model);
}

/// The parse errors of a config as one `config-invalid` finding (none when it parses).
pub fn parse_findings(cfg: &Config, out: &mut Vec<Finding>) {
    let problems: Vec<Evidence> = cfg
        .errors()
        // Context errors come from crossplane's directive table, which does not know
        // third-party modules; nginx -t is the judge of those.
        .filter(|e| e.kind != ConfigErrorKind::Context)
        .map(|e| {
            let file = e.file.display().to_string();
            Evidence {
                kind: "config",
                source: match e.line {
                    Some(l) => format!("{file}:{l}"),
                    None => file.clone(),
                },
                text: e.message.clone(),
                at: e.line.map(|l| (file.into(), l)),
            }
        })
        .collect();
    if !problems.is_empty() {
        out.push(Finding {
            id: "config-invalid",
            class: None,
            severity: Severity::Error,
            status: None,
            upstream: None,
            title: format!("the configuration does not parse: {}", problems[0].text),
            count: None,
            first_seen: None,
            last_seen: None,
            per_minute: Vec::new(),
            backend: None,
            impact: None,
            state: Default::default(),
            resolved_at: None,
            timeline: Vec::new(),
            evidence: problems,
            fix: config_invalid().fix(
                "fix the reported line, then `nginx -t`".to_string(),
                vec![
                    "fix each reported line".to_string(),
                    "check: `nginx -t`; apply: `systemctl reload nginx`".to_string(),
                ],
                vec!["nginx -t".to_string()],
            ),
        });
    }
}

/// `nginx -T` failed: nginx will not start or reload with the config on disk.
fn nginx_t_failed(binary: &Path, status: Option<i32>, stderr: &str) -> Finding {
    let evidence: Vec<Evidence> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Evidence {
            kind: "nginx -t",
            source: format!("{} -t", binary.display()),
            text: l.to_string(),
            at: position_of(l),
        })
        .collect();
    let first = evidence
        .iter()
        .find(|e| e.text.contains("[emerg]"))
        .or(evidence.first())
        .map(|e| e.text.clone())
        .unwrap_or_else(|| format!("exit status {status:?}"));
    Finding {
        id: "config-invalid",
        class: None,
        severity: Severity::Error,
        status: None,
        upstream: None,
        title: format!("nginx -t fails: nginx will not start or reload with this config: {first}"),
        count: None,
        first_seen: None,
        last_seen: None,
        per_minute: Vec::new(),
        backend: None,
        impact: None,
        state: Default::default(),
        resolved_at: None,
        timeline: Vec::new(),
        evidence: if evidence.is_empty() {
            vec![Evidence {
                kind: "nginx -t",
                source: format!("{} -t", binary.display()),
                text: format!("exit status {status:?}, no output"),
                at: None,
            }]
        } else {
            evidence
        },
        fix: config_invalid().fix(
            "fix the reported line; `nginx -t` again".to_string(),
            vec![
                "fix the line nginx reports".to_string(),
                "check: `nginx -t`; apply: `systemctl reload nginx`".to_string(),
            ],
            vec!["nginx -t".to_string()],
        ),
    }
}

/// `... in /etc/nginx/sites-enabled/app:14` at the end of an nginx message
/// (`ngx_conf_log_error` in `src/core/ngx_conf_file.c`).
fn position_of(line: &str) -> Option<(std::sync::Arc<str>, u32)> {
    let (_, tail) = line.rsplit_once(" in ")?;
    let (file, l) = tail.trim().rsplit_once(':')?;
    Some((file.into(), l.parse().ok()?))
}

/// The files whose lines the findings' evidence points at.
fn cited_files(findings: &[Finding]) -> BTreeSet<&str> {
    findings
        .iter()
        .flat_map(|f| &f.evidence)
        .filter_map(|e| e.at.as_ref().map(|(file, _)| &**file))
        .collect()
}

/// Reads the `cited` files of the config for the text report's source lines (best effort: a
/// file that cannot be read again just shows the directive instead).
fn read_sources(cfg: &Config, cited: &BTreeSet<&str>, sources: &mut Sources) {
    for f in &cfg.files {
        let p = f.path.display().to_string();
        if !cited.contains(p.as_str()) {
            continue;
        }
        if let Ok(text) = fs::read(&f.path) {
            sources.insert(p, String::from_utf8_lossy(&text).into_owned());
        }
    }
}

/// The `config-invalid` rule, whose fix (time and risk) a config nginx refuses gets.
fn config_invalid() -> &'static dyn medic_core::rules::RuleDoc {
    medic_core::rules::find_doc("config-invalid").expect("config-invalid is in the catalog")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_positions() {
        assert_eq!(
            position_of("nginx: [emerg] host not found in upstream \"x\" in /etc/nginx/a.conf:7"),
            Some(("/etc/nginx/a.conf".into(), 7))
        );
        assert_eq!(
            position_of("nginx: configuration file /e/n.conf test failed"),
            None
        );
    }
}
