//! A recorded run (`diagnose --record DIR`) and its replay (`diagnose --replay DIR`).
//!
//! The bundle is what a support engineer needs to diagnose a host they cannot log into: the
//! config as `nginx -T` prints it, the logs that were read, and every fact the live run
//! gathered — probe results, listeners, the supervisors' records, `nginx -t` — plus the raw
//! answers of `systemctl`, `journalctl` and `pm2` ([`crate::host::Recording`]), so the
//! supervisor gatherer itself can be replayed. Replaying runs the same parser, log scan and
//! engine on it, without root and without the host.
//!
//! Layout: `bundle.json`, `nginx-T.txt`, `logs/N-NAME` (copies, gzip kept as it was).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use medic_core::facts::Skipped;
use medic_core::facts::{Facts, NginxTest, ProbeFacts};
use medic_parse::time::LogTime;
use serde::{Deserialize, Serialize};

use crate::cli::{DiagnoseArgs, InputArgs};
use crate::host::Recording;
use crate::load::InstanceReport;

/// Version of `bundle.json`.
pub const SCHEMA: u32 = 1;

/// `bundle.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bundle {
    pub schema: u32,
    pub tool_version: String,
    /// The instance as discovered (config path, prefix, binary, version).
    pub instance: Option<InstanceInfo>,
    /// The log files of the bundle (relative to its directory), oldest first, and the paths
    /// they were read from.
    pub error_logs: Vec<(String, String)>,
    pub access_logs: Vec<(String, String)>,
    pub log_format: Option<String>,
    /// The clock of the run, nginx's local wall clock (seconds, as [`LogTime`]).
    pub now: Option<i64>,
    /// When the config files last changed, same clock.
    #[serde(default)]
    pub config_changed: Option<i64>,
    pub nginx_t: Vec<NginxTest>,
    pub probes: Option<ProbeFacts>,
    pub skipped: Vec<Skipped>,
    /// The raw answers of the supervisor gatherer's host.
    pub host: Option<Recording>,
    #[serde(skip)]
    dir: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub config: String,
    pub prefix: Option<String>,
    pub binary: Option<String>,
    pub nginx_version: Option<String>,
}

impl Bundle {
    pub fn read(dir: &str) -> Result<Bundle> {
        let dir = PathBuf::from(dir);
        let path = dir.join("bundle.json");
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let mut b: Bundle =
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        anyhow::ensure!(
            b.schema <= SCHEMA,
            "{}: bundle schema {} is newer than this nginx-medic reads ({SCHEMA}); it was written by nginx-medic {}: upgrade to read it",
            path.display(),
            b.schema,
            b.tool_version
        );
        b.dir = dir;
        Ok(b)
    }

    /// The arguments that diagnose the bundle: its config dump, logs and format; the user's
    /// window and output options.
    pub fn args(&self, user: &DiagnoseArgs) -> DiagnoseArgs {
        let path = |rel: &String| self.dir.join(rel).display().to_string();
        DiagnoseArgs {
            input: InputArgs {
                config: Some(self.dir.join("nginx-T.txt").display().to_string()),
                prefix: self.instance.as_ref().and_then(|i| i.prefix.clone()),
                error_logs: self.error_logs.iter().map(|(r, _)| path(r)).collect(),
                access_logs: self.access_logs.iter().map(|(r, _)| path(r)).collect(),
                log_format: user
                    .input
                    .log_format
                    .clone()
                    .or_else(|| self.log_format.clone()),
                since: user.input.since.clone(),
                until: user.input.until.clone(),
                no_probe: self.probes.is_none(),
            },
            format: user.format,
            fail_on: user.fail_on,
            max: user.max,
            concurrency: user.concurrency,
            margin_ms: user.margin_ms,
            probe_wait_ms: user.probe_wait_ms,
            record: None,
            replay: None,
            bundle: None,
        }
    }

    pub fn now(&self) -> Option<LogTime> {
        self.now.map(LogTime)
    }

    /// Rewrites the paths of the bundle's log copies (`DIR/logs/0-error.log`) back to the
    /// paths they were read from on the host, in the evidence and the inputs.
    pub fn restore_paths(
        &self,
        findings: &mut [medic_core::rules::Finding],
        inputs: &mut crate::diagnose::Inputs,
    ) {
        let map: Vec<(String, &str)> = self
            .error_logs
            .iter()
            .chain(&self.access_logs)
            .map(|(rel, original)| (self.dir.join(rel).display().to_string(), original.as_str()))
            .collect();
        let restore = |s: &mut String| {
            for (copy, original) in &map {
                if let Some(rest) = s.strip_prefix(copy.as_str()) {
                    if rest.is_empty() || rest.starts_with(':') {
                        *s = format!("{original}{rest}");
                        return;
                    }
                }
            }
        };
        let evidence = |e: &mut medic_core::rules::Evidence| {
            restore(&mut e.source);
            if let Some((file, _)) = &mut e.at {
                let mut restored = file.to_string();
                restore(&mut restored);
                *file = restored.into();
            }
        };
        for f in findings.iter_mut() {
            f.evidence.iter_mut().for_each(evidence);
            for step in &mut f.timeline {
                if let Some(e) = &mut step.evidence {
                    evidence(e);
                }
            }
        }
        inputs.error_logs.iter_mut().for_each(restore);
        inputs.access_logs.iter_mut().for_each(restore);
    }
}

/// Writes the bundle of a live run into `dir` (created; existing files are replaced).
pub fn write(
    dir: &Path,
    instances: &[InstanceReport],
    config: &[(String, Vec<u8>)],
    facts: &Facts,
    skipped: &[Skipped],
    log_format: Option<&str>,
    host: Option<Recording>,
) -> Result<()> {
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("create {}", dir.display()))?;
    let instance = instances.first();
    // The config as `nginx -T` prints it: each file's text under its own name.
    let mut dump = String::new();
    for (f, text) in config {
        dump.push_str(&format!("# configuration file {f}:\n"));
        dump.push_str(&String::from_utf8_lossy(text));
        if !dump.ends_with('\n') {
            dump.push('\n');
        }
        dump.push('\n');
    }
    std::fs::write(dir.join("nginx-T.txt"), dump)?;
    let copy = |logs: &[String], n0: usize| -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (n, l) in logs.iter().enumerate() {
            let name = Path::new(l)
                .file_name()
                .map_or("log".into(), |n| n.to_string_lossy().into_owned());
            let rel = format!("logs/{}-{name}", n0 + n);
            std::fs::copy(l, dir.join(&rel)).with_context(|| format!("copy {l}"))?;
            out.push((rel, l.clone()));
        }
        Ok(out)
    };
    let error_logs = copy(&facts.logs.error_logs, 0)?;
    let access_logs = copy(&facts.logs.access_logs, error_logs.len())?;
    let bundle = Bundle {
        schema: SCHEMA,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        instance: instance.map(|i| InstanceInfo {
            config: i.config.clone(),
            prefix: i.prefix.clone(),
            binary: i.binary.clone(),
            nginx_version: i.nginx_version.clone(),
        }),
        error_logs,
        access_logs,
        log_format: log_format.map(str::to_string),
        now: facts.now.map(|t| t.0),
        config_changed: facts.config_changed.map(|t| t.0),
        nginx_t: facts.nginx_t.clone(),
        probes: facts.probes.clone(),
        skipped: skipped.to_vec(),
        host,
        dir: dir.to_path_buf(),
    };
    let path = dir.join("bundle.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&bundle)?)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
