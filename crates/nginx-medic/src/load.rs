//! The config(s) a command works on: the file given with `--config` (a config, or a saved
//! `nginx -T` dump), else every running nginx that discovery finds, read through its own
//! `nginx -T` when that works and from disk when it does not.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use medic_parse::config::{
    is_nginx_t, parse_file, parse_nginx_t, split_nginx_t, Config, ConfigErrorKind, Options,
};
use serde::Serialize;

use crate::discover::{self, Dump, Skipped};

/// Where a config came from, as the reports show it.
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
    /// nginx is not running and was found through its systemd unit (`nginx.service`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One config, parsed with nginx's rules.
pub struct Loaded {
    /// Shared with the model built from it, whose sources it holds.
    pub cfg: Arc<Config>,
    pub prefix: Option<String>,
    pub instance: InstanceReport,
    /// The sections of the `nginx -T` output it was read from (path, text); empty when it was
    /// read from files.
    pub dump_sections: Vec<(String, Vec<u8>)>,
    /// `nginx -T` ran and failed (binary, exit status, stderr): nginx would not start or reload.
    pub nginx_t_failed: Option<(PathBuf, Option<i32>, String)>,
}

/// Reads `--config`, or discovers. `None` when nothing could be read: the reason is on stderr.
/// What discovery could not check goes into `skipped`.
pub fn load(
    config: Option<&str>,
    prefix: Option<&str>,
    skipped: &mut Vec<Skipped>,
) -> Result<Option<Vec<Loaded>>> {
    load_with(config, prefix, true, skipped)
}

/// [`load`]; `run_nginx_t: false` reads discovered configs from disk without `nginx -T`.
pub fn load_with(
    config: Option<&str>,
    prefix: Option<&str>,
    run_nginx_t: bool,
    skipped: &mut Vec<Skipped>,
) -> Result<Option<Vec<Loaded>>> {
    match config {
        Some(path) => Ok(load_file(path, prefix)?.map(|l| vec![l])),
        None => Ok(load_discovered(prefix, run_nginx_t, skipped)),
    }
}

fn load_file(path: &str, prefix: Option<&str>) -> Result<Option<Loaded>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(io::stderr(), "nginx-medic: read config {path}: {e}");
            return Ok(None);
        }
    };
    let prefix = prefix.map(str::to_string).or_else(|| {
        Path::new(path)
            .parent()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
    });
    let (cfg, read_from, dump_sections) = if is_nginx_t(&bytes) {
        let cfg = parse_nginx_t(&bytes, &Options::nginx())
            .with_context(|| format!("{path}: not an nginx -T dump"))?;
        (
            cfg,
            "nginx -T dump",
            split_nginx_t(&bytes).unwrap_or_default(),
        )
    } else {
        (parse_file(path, &Options::nginx()), "files", Vec::new())
    };
    if main_unreadable(&cfg) {
        let _ = writeln!(
            io::stderr(),
            "nginx-medic: read config {path}: {}",
            first_error(&cfg)
        );
        return Ok(None);
    }
    Ok(Some(Loaded {
        cfg: Arc::new(cfg),
        instance: InstanceReport {
            config: path.to_string(),
            prefix: prefix.clone(),
            nginx_version: None,
            pid: None,
            binary: None,
            read_from,
            unit: None,
        },
        prefix,
        dump_sections,
        nginx_t_failed: None,
    }))
}

fn load_discovered(
    prefix: Option<&str>,
    run_nginx_t: bool,
    skipped: &mut Vec<Skipped>,
) -> Option<Vec<Loaded>> {
    let found = if run_nginx_t {
        discover::discover()
    } else {
        discover::discover_without_nginx_t()
    };
    skipped.extend(found.skipped);
    let why = |skipped: &[Skipped]| {
        skipped
            .iter()
            .map(|s| format!("{}: {}", s.check, s.why))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if found.instances.is_empty() {
        let _ = writeln!(
            io::stderr(),
            "nginx-medic: no nginx found ({}); pass --config FILE",
            why(skipped)
        );
        return None;
    }
    let mut out = Vec::new();
    for inst in found.instances {
        let prefix = prefix.map(str::to_string).unwrap_or(inst.prefix.clone());
        let mut nginx_t_failed = None;
        let mut dump_sections = Vec::new();
        let (cfg, read_from) = match &inst.dump {
            Dump::NginxT { stdout } => match parse_nginx_t(stdout.as_bytes(), &Options::nginx()) {
                Some(cfg) => {
                    dump_sections = split_nginx_t(stdout.as_bytes()).unwrap_or_default();
                    (cfg, "nginx -T")
                }
                None => (parse_file(&inst.conf, &Options::nginx()), "files"),
            },
            Dump::Failed { status, stderr } => {
                nginx_t_failed = Some((inst.binary.clone(), *status, stderr.clone()));
                (parse_file(&inst.conf, &Options::nginx()), "files")
            }
            Dump::NotRun { .. } => (parse_file(&inst.conf, &Options::nginx()), "files"),
        };
        if main_unreadable(&cfg) {
            skipped.push(Skipped::new(
                format!("config {}", inst.conf),
                first_error(&cfg),
            ));
            continue;
        }
        out.push(Loaded {
            cfg: Arc::new(cfg),
            instance: InstanceReport {
                config: inst.conf.clone(),
                prefix: Some(prefix.clone()),
                nginx_version: inst.build.as_ref().and_then(|b| b.version.clone()),
                pid: inst.master.as_ref().map(|m| m.pid).filter(|p| *p != 0),
                binary: Some(inst.binary.display().to_string()),
                read_from,
                unit: inst
                    .master
                    .as_ref()
                    .filter(|m| m.pid == 0)
                    .map(|_| "nginx.service".to_string()),
            },
            prefix: Some(prefix),
            dump_sections,
            nginx_t_failed,
        });
    }
    if out.is_empty() {
        let _ = writeln!(
            io::stderr(),
            "nginx-medic: could not read any nginx config: {}",
            why(skipped)
        );
        return None;
    }
    Some(out)
}

/// Whether the main file itself could not be read (nothing to work on).
fn main_unreadable(cfg: &Config) -> bool {
    match cfg.files.first() {
        Some(f) => f.parsed.is_empty() && f.errors.iter().any(|e| e.kind == ConfigErrorKind::Io),
        None => true,
    }
}

fn first_error(cfg: &Config) -> String {
    cfg.errors()
        .next()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}
