//! `nginx-medic config lint`: latent upstream misconfigurations (`causes.md` §2b), rustc-style,
//! JSON or SARIF.
//!
//! The config comes from `--config` (a main file, or a saved `nginx -T` dump), or from
//! discovery: each running nginx master, read through its own `nginx -T`, or from its files when
//! `nginx -T` fails (which is itself a `config-invalid` finding: the next reload will fail).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use medic_core::config::{build, BuildOptions};
use medic_core::rules::{self, Evidence, Finding, Fix, Severity};
use medic_parse::config::{
    is_nginx_t, parse_file, parse_nginx_t, split_nginx_t, Config, ConfigErrorKind, Options,
};
use serde::Serialize;

use crate::cli::{self, ConfigLintArgs, LintFormat};
use crate::discover::{self, Dump, Skipped};
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

#[derive(Debug, Serialize)]
pub struct InstanceReport {
    pub config: String,
    pub prefix: Option<String>,
    pub nginx_version: Option<String>,
    /// The master's PID, when discovered running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// `nginx -T`, `nginx -T dump` (a saved one) or `files`.
    pub read_from: &'static str,
}

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
    match &args.config {
        Some(path) => {
            let bytes = match fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    let _ = writeln!(io::stderr(), "nginx-medic: read config {path}: {e}");
                    return Ok(2);
                }
            };
            let prefix = args.prefix.clone().or_else(|| {
                Path::new(path)
                    .parent()
                    .map(|p| p.display().to_string())
                    .filter(|p| !p.is_empty())
            });
            let (cfg, read_from) = if is_nginx_t(&bytes) {
                for (p, text) in split_nginx_t(&bytes).unwrap_or_default() {
                    sources.insert(p, String::from_utf8_lossy(&text).into_owned());
                }
                let cfg = parse_nginx_t(&bytes, &Options::nginx())
                    .with_context(|| format!("{path}: not an nginx -T dump"))?;
                (cfg, "nginx -T dump")
            } else {
                (parse_file(path, &Options::nginx()), "files")
            };
            if main_unreadable(&cfg) {
                let why = cfg
                    .errors()
                    .next()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                let _ = writeln!(io::stderr(), "nginx-medic: read config {path}: {why}");
                return Ok(2);
            }
            if read_from == "files" {
                read_sources(&cfg, &mut sources);
            }
            lint(&cfg, prefix.clone(), &mut report.findings);
            // The process ends soon: freeing a large tree node by node costs more than exiting.
            std::mem::forget(cfg);
            report.instances.push(InstanceReport {
                config: path.clone(),
                prefix,
                nginx_version: None,
                pid: None,
                binary: None,
                read_from,
            });
        }
        None => {
            let found = discover::discover();
            report.skipped.extend(found.skipped);
            if found.instances.is_empty() {
                let why = report
                    .skipped
                    .iter()
                    .map(|s| format!("{}: {}", s.check, s.why))
                    .collect::<Vec<_>>()
                    .join("; ");
                let _ = writeln!(
                    io::stderr(),
                    "nginx-medic: no nginx found to lint ({why}); pass --config FILE"
                );
                return Ok(2);
            }
            let mut read_any = false;
            for inst in found.instances {
                let prefix = args.prefix.clone().unwrap_or(inst.prefix.clone());
                let (cfg, read_from) = match &inst.dump {
                    Dump::NginxT { stdout } => {
                        let bytes = stdout.as_bytes();
                        for (p, text) in split_nginx_t(bytes).unwrap_or_default() {
                            sources.insert(p, String::from_utf8_lossy(&text).into_owned());
                        }
                        match parse_nginx_t(bytes, &Options::nginx()) {
                            Some(cfg) => (cfg, "nginx -T"),
                            None => (parse_file(&inst.conf, &Options::nginx()), "files"),
                        }
                    }
                    Dump::Failed { status, stderr } => {
                        report
                            .findings
                            .push(nginx_t_failed(&inst.binary, *status, stderr));
                        (parse_file(&inst.conf, &Options::nginx()), "files")
                    }
                    Dump::NotRun { .. } => (parse_file(&inst.conf, &Options::nginx()), "files"),
                };
                if main_unreadable(&cfg) {
                    let why = cfg
                        .errors()
                        .next()
                        .map(|e| e.message.clone())
                        .unwrap_or_default();
                    report
                        .skipped
                        .push(Skipped::new(format!("config {}", inst.conf), why));
                } else {
                    read_any = true;
                    if read_from == "files" {
                        read_sources(&cfg, &mut sources);
                    }
                    lint(&cfg, Some(prefix.clone()), &mut report.findings);
                }
                report.instances.push(InstanceReport {
                    config: inst.conf.clone(),
                    prefix: Some(prefix),
                    nginx_version: inst.build.as_ref().and_then(|b| b.version.clone()),
                    pid: inst.master.as_ref().map(|m| m.pid),
                    binary: Some(inst.binary.display().to_string()),
                    read_from,
                });
            }
            if !read_any {
                let _ = writeln!(
                    io::stderr(),
                    "nginx-medic: could not read any nginx config: {}",
                    report
                        .skipped
                        .iter()
                        .map(|s| format!("{}: {}", s.check, s.why))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                return Ok(2);
            }
        }
    }
    rules::rank(&mut report.findings);

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
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
    Ok(u8::from(
        report.findings.iter().any(|f| f.severity >= fail_on),
    ))
}

/// Whether the main file itself could not be read (nothing to lint).
fn main_unreadable(cfg: &Config) -> bool {
    match cfg.files.first() {
        Some(f) => f.parsed.is_empty() && f.errors.iter().any(|e| e.kind == ConfigErrorKind::Io),
        None => true,
    }
}

/// Builds the model, runs the catalog, and turns parse errors into a `config-invalid` finding.
fn lint(cfg: &Config, prefix: Option<String>, out: &mut Vec<Finding>) {
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
                at: e.line.map(|l| (file, l)),
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
            evidence: problems,
            fix: Fix {
                summary: "fix the reported line, then `nginx -t`".to_string(),
                steps: vec![
                    "fix each reported line".to_string(),
                    "check: `nginx -t`; apply: `nginx -s reload`".to_string(),
                ],
                commands: vec!["nginx -t".to_string()],
                time: "5 min",
                risk: "low",
            },
        });
    }
    let model = build(cfg, &BuildOptions { prefix });
    out.extend(rules::check_all(&model));
    std::mem::forget(model);
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
        fix: Fix {
            summary: "fix the reported line; `nginx -t` again".to_string(),
            steps: vec![
                "fix the line nginx reports".to_string(),
                "check: `nginx -t`; apply: `nginx -s reload`".to_string(),
            ],
            commands: vec!["nginx -t".to_string()],
            time: "5 min",
            risk: "low",
        },
    }
}

/// `... in /etc/nginx/sites-enabled/app:14` at the end of an nginx message
/// (`ngx_conf_log_error` in `src/core/ngx_conf_file.c`).
fn position_of(line: &str) -> Option<(String, u32)> {
    let (_, tail) = line.rsplit_once(" in ")?;
    let (file, l) = tail.trim().rsplit_once(':')?;
    Some((file.to_string(), l.parse().ok()?))
}

/// Reads every file of the config for the text report's source lines (best effort: a file
/// that cannot be read again just shows the directive instead).
fn read_sources(cfg: &Config, sources: &mut Sources) {
    for f in &cfg.files {
        let p = f.path.display().to_string();
        if let Ok(text) = fs::read(&f.path) {
            sources.insert(p, String::from_utf8_lossy(&text).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_positions() {
        assert_eq!(
            position_of("nginx: [emerg] host not found in upstream \"x\" in /etc/nginx/a.conf:7"),
            Some(("/etc/nginx/a.conf".to_string(), 7))
        );
        assert_eq!(
            position_of("nginx: configuration file /e/n.conf test failed"),
            None
        );
    }
}
