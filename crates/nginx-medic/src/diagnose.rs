//! `nginx-medic diagnose`: gathers the facts (config, logs, `nginx -t`, probes, supervisors),
//! runs the root-cause catalog (`medic_core::rules::cause`) and prints the ranked findings.
//!
//! Read-only: it reads files, connects to the upstreams the config names (one request each, as
//! `nginx-medic probe` does) and runs `nginx -t`, `systemctl show`, `journalctl` with argv and
//! timeouts. `--no-probe` reads files only.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use medic_core::config::{build, BuildOptions, Model};
use medic_core::diagnose;
use medic_core::facts::Skipped;
use medic_core::facts::{
    Access5xx, ClientClosedGroup, Facts, LogFacts, LogGroup, LogLine, NginxTest, ProbeFacts,
};
use medic_core::logs::{AccessSummary, ErrorSummary, Window};
use medic_core::rules::{Finding, Severity};
use medic_parse::access_log::{Escape, LogFormat, COMBINED};
use medic_parse::error_log::FailureClass;
use medic_parse::input::LineLoc;
use medic_parse::time::LogTime;
use serde::Serialize;

use crate::cli::{DiagnoseArgs, DiagnoseFormat, FailOn};
use crate::config_lint::Tool;
use crate::exec;
use crate::load::{self, InstanceReport};
use crate::logs::{parse_when_at, scan, ScanSpec};
use crate::record;

/// Version of the JSON layout (`causes.md` §3).
pub const SCHEMA: u32 = 1;

/// The JSON report, `causes.md` §3.
#[derive(Debug, Serialize)]
pub struct DiagnoseReport {
    pub schema: u32,
    pub tool: Tool,
    pub instances: Vec<InstanceReport>,
    pub findings: Vec<Finding>,
    pub skipped: Vec<Skipped>,
    /// What was read (not in §3's example; extra fields are allowed).
    pub inputs: Inputs,
    /// The HTML timeline's context: every failure per minute, restarts, reloads, OOM kills,
    /// rotations (not in the JSON).
    #[serde(skip)]
    pub events: crate::report::html::Events,
}

/// The logs read and the window.
#[derive(Debug, Default, Serialize)]
pub struct Inputs {
    pub error_logs: Vec<String>,
    pub access_logs: Vec<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// `live` (probes ran) or `post-mortem` (`--no-probe`).
    pub mode: &'static str,
}

/// Returns the exit status: 0 done, 1 a finding at or above `--fail-on`, 2 nothing to work on.
pub fn run(args: &DiagnoseArgs, color: bool) -> Result<u8> {
    run_to(args, color, &mut io::stdout().lock())
}

/// [`run`], the report written to `out` (`collect` keeps the JSON in its bundle).
pub fn run_to(args: &DiagnoseArgs, color: bool, out: &mut dyn Write) -> Result<u8> {
    let Some(Analysis { report, .. }) = analyze(args)? else {
        return Ok(2);
    };
    render(args, &report, color, out)
}

/// A diagnosis and the facts it was made of (`fix` plans from both).
pub struct Analysis {
    pub report: DiagnoseReport,
    pub facts: Facts,
}

/// Runs the diagnosis; `None` when there was nothing to work on (the reason is on stderr).
pub fn analyze(args: &DiagnoseArgs) -> Result<Option<Analysis>> {
    // A bundle is unpacked (and checked) into a temporary directory that lives as long as
    // this run, then replayed like a --record directory.
    let unpacked = args
        .bundle
        .as_deref()
        .map(|b| crate::bundle::archive::read(Path::new(b)))
        .transpose()?;
    let replay_dir = match &unpacked {
        Some(u) => Some(u.root().display().to_string()),
        None => args.replay.clone(),
    };
    let replay = replay_dir
        .as_deref()
        .map(record::Bundle::read)
        .transpose()?;
    let replayed_args;
    let args = match &replay {
        Some(b) => {
            replayed_args = b.args(args);
            &replayed_args
        }
        None => args,
    };
    let mut skipped: Vec<Skipped> = Vec::new();
    let loaded = if args.input.config.is_none() && !args.input.error_logs.is_empty() {
        // Logs alone are enough for a post-mortem; a config helps but is not required.
        load::load_with(
            None,
            args.input.prefix.as_deref(),
            !args.input.no_probe,
            &mut skipped,
        )
        .ok()
        .flatten()
        .unwrap_or_default()
    } else {
        match load::load_with(
            args.input.config.as_deref(),
            args.input.prefix.as_deref(),
            !args.input.no_probe,
            &mut skipped,
        )? {
            Some(l) => l,
            None => return Ok(None),
        }
    };
    let mut instances = Vec::new();
    let mut models: Vec<Model> = Vec::new();
    let mut nginx_t: Vec<NginxTest> = Vec::new();
    let mut parse_findings: Vec<Finding> = Vec::new();
    // The config's files as read, for --record.
    let mut config_text: Vec<(String, Vec<u8>)> = Vec::new();
    // When the config on disk last changed (a finding for a target it no longer names, failing
    // before that, is resolved).
    let mut config_changed: Option<std::time::SystemTime> = None;
    for l in loaded {
        if replay.is_none() {
            for f in &l.cfg.files {
                if let Ok(t) = std::fs::metadata(&f.path).and_then(|m| m.modified()) {
                    config_changed = Some(config_changed.map_or(t, |c| c.max(t)));
                }
            }
        }
        if args.record.is_some() && config_text.is_empty() {
            if l.dump_sections.is_empty() {
                for f in &l.cfg.files {
                    let name = f.path.display().to_string();
                    match std::fs::read(&f.path) {
                        Ok(t) => config_text.push((name, t)),
                        Err(e) => {
                            skipped.push(Skipped::new(format!("--record {name}"), e.to_string()))
                        }
                    }
                }
            } else {
                config_text = l.dump_sections.clone();
            }
        }
        if let Some((bin, status, stderr)) = &l.nginx_t_failed {
            nginx_t.push(NginxTest {
                command: format!("{} -T", bin.display()),
                ok: false,
                stderr: if stderr.is_empty() {
                    format!("exit status {status:?}")
                } else {
                    stderr.clone()
                },
            });
        } else if l.instance.read_from == "nginx -T" {
            nginx_t.push(NginxTest {
                command: format!("{} -T", l.instance.binary.as_deref().unwrap_or("nginx")),
                ok: true,
                stderr: String::new(),
            });
        } else if !args.input.no_probe && replay.is_none() && l.instance.read_from == "files" {
            nginx_t.extend(run_nginx_t(
                l.instance.binary.as_deref(),
                &l.instance.config,
                l.prefix.as_deref(),
                &mut skipped,
            ));
        }
        parse_findings.extend(parse_problems(&l.cfg));
        models.push(build(
            &l.cfg,
            &BuildOptions {
                prefix: l.prefix.clone(),
            },
        ));
        instances.push(l.instance);
    }
    if args.input.no_probe {
        skipped.push(Skipped::new(
            "probes",
            "--no-probe: post-mortem from the files only; run without it to probe the upstreams, listeners and supervisors",
        ));
        skipped.push(Skipped::new("nginx -t", "--no-probe: not run"));
    }

    // Logs: the ones given, else the ones the config names.
    let (mut error_logs, mut access_logs, format) =
        log_inputs(&args.input, &models, true, &mut skipped);
    let clock = NginxClock::of(&access_logs);
    let window = window(args, &error_logs, &access_logs, clock)?;
    if args.input.error_logs.is_empty() {
        error_logs = with_older_rotations(&error_logs, window.since);
    }
    if args.input.access_logs.is_empty() {
        access_logs = with_older_rotations(&access_logs, window.since);
    }
    let format_text = format.as_ref().map(|f| f.source().to_string());
    let logs = read_logs(&error_logs, &access_logs, format, window, &mut skipped)?;

    let system = crate::host::System::default();
    let recorder = args
        .record
        .as_ref()
        .map(|_| crate::host::Recorder::new(&system));
    let probes = if let Some(b) = &replay {
        skipped.extend(b.skipped.iter().cloned());
        // A post-mortem recording (`--no-probe`) has no probes: it replays as one.
        b.probes.clone()
    } else if args.input.no_probe {
        None
    } else {
        let gather = crate::probe::supervisor::GatherOptions {
            // The journal from a little before the logs' window: a unit's last words come
            // before nginx's first failure.
            since: window.since.map_or("-24h".to_string(), |t| {
                LogTime(t.0 - 600).to_string().replace('T', " ")
            }),
            ..Default::default()
        };
        let host: &dyn crate::host::Host = match &recorder {
            Some(r) => r,
            None => &system,
        };
        let probed = crate::probe::probe_all_on(
            host,
            &models,
            crate::probe::Wait {
                margin: Duration::from_millis(args.margin_ms),
                cap: (args.probe_wait_ms > 0).then(|| Duration::from_millis(args.probe_wait_ms)),
            },
            args.concurrency,
            &gather,
            &mut skipped,
        );
        skipped.extend(probed.supervisors.skipped.iter().cloned());
        Some(ProbeFacts {
            targets: probed.targets,
            listeners: probed.listeners,
            supervisors: probed.supervisors,
            selinux: selinux(),
        })
    };
    if let Some(b) = &replay {
        nginx_t = b.nginx_t.clone();
    }
    let facts = Facts {
        models,
        logs,
        probes,
        nginx_t,
        now: Some(
            replay
                .as_ref()
                .and_then(|b| b.now())
                .unwrap_or_else(|| clock.now()),
        ),
        config_changed: match &replay {
            Some(b) => b.config_changed.map(LogTime),
            None => config_changed.map(|t| clock.at(t)),
        },
    };
    let mut findings = diagnose::diagnose(&facts);
    findings.extend(parse_findings);
    medic_core::rules::rank(&mut findings);
    reload_in_hosts_words(&mut findings, &facts, &instances);
    if let Some(dir) = &args.record {
        record::write(
            Path::new(dir),
            &instances,
            &config_text,
            &facts,
            &skipped,
            format_text.as_deref(),
            recorder.map(crate::host::Recorder::into_recording),
        )?;
    }
    for t in facts.probes.iter().flat_map(|p| p.targets.iter()) {
        for s in &t.facts.skipped {
            skipped.push(Skipped::new(
                format!("{} of {}", s.check, t.facts.upstream),
                s.why.clone(),
            ));
        }
    }
    dedup_skipped(&mut skipped);

    let events = crate::report::html::Events::of(&facts, &findings);
    let mut report = DiagnoseReport {
        schema: SCHEMA,
        tool: Tool {
            name: "nginx-medic",
            version: env!("CARGO_PKG_VERSION"),
        },
        instances,
        findings,
        skipped,
        inputs: Inputs {
            error_logs: facts.logs.error_logs.clone(),
            access_logs: facts.logs.access_logs.clone(),
            since: window.since.map(|t| t.to_string()),
            until: window.until.map(|t| t.to_string()),
            mode: if replay.is_some() {
                "replay"
            } else if args.input.no_probe {
                "post-mortem"
            } else {
                "live"
            },
        },
        events,
    };
    if let Some(b) = &replay {
        // Evidence cites the host's paths, not the replay directory's copies.
        b.restore_paths(&mut report.findings, &mut report.inputs);
    }
    Ok(Some(Analysis { report, facts }))
}

/// Writes the report in `--format` and returns the exit status `--fail-on` asks for.
fn render(
    args: &DiagnoseArgs,
    report: &DiagnoseReport,
    color: bool,
    out: &mut dyn Write,
) -> Result<u8> {
    let mut out = io::BufWriter::new(out);
    match args.format {
        DiagnoseFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        DiagnoseFormat::Sarif => {
            serde_json::to_writer_pretty(
                &mut out,
                &crate::report::sarif::sarif_findings(&report.findings),
            )?;
            writeln!(out)?;
        }
        DiagnoseFormat::Text => {
            crate::report::diagnose_text::write(&mut out, report, args.max, color)?
        }
        DiagnoseFormat::Html => crate::report::html::diagnose(&mut out, report, args.max)?,
    }
    out.flush()?;
    let fail = match args.fail_on {
        None => false,
        Some(FailOn::Error) => report
            .findings
            .iter()
            .any(|f| f.severity == Severity::Error),
        Some(FailOn::Warning) => report
            .findings
            .iter()
            .any(|f| f.severity >= Severity::Warning),
    };
    Ok(u8::from(fail))
}

/// Config problems the parser found (the config does not load): `config-invalid`.
pub(crate) fn parse_problems(cfg: &medic_parse::config::Config) -> Vec<Finding> {
    let mut out = Vec::new();
    crate::config_lint::parse_findings(cfg, &mut out);
    out
}

/// `nginx -t -q -p PREFIX -c CONF -e stderr`: whether nginx would start or reload with the
/// config on disk. `-e stderr` keeps nginx from opening (and writing to) the compiled-in error
/// log while it parses.
fn run_nginx_t(
    binary: Option<&str>,
    conf: &str,
    prefix: Option<&str>,
    skipped: &mut Vec<Skipped>,
) -> Option<NginxTest> {
    let bin = binary.map(PathBuf::from).or_else(|| {
        crate::discover::CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    });
    let Some(bin) = bin else {
        skipped.push(Skipped::new(
            "nginx -t",
            "no nginx binary found (/usr/sbin/nginx, /usr/local/sbin/nginx, ...): install nginx or run where it is",
        ));
        return None;
    };
    let mut cmd = Command::new(&bin);
    cmd.arg("-t").arg("-q");
    if let Some(p) = prefix {
        let p = if p.ends_with('/') {
            p.to_string()
        } else {
            format!("{p}/")
        };
        cmd.arg("-p").arg(p);
    }
    cmd.arg("-c").arg(conf).arg("-e").arg("stderr");
    let command = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    match exec::run(&mut cmd, crate::discover::COMMAND_TIMEOUT) {
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if !out.status.success() && !is_root() && stderr.contains("Permission denied") {
                skipped.push(Skipped::new(
                    "nginx -t",
                    format!("{command} failed on permissions ({}); run as root to check the config as nginx does", first_line(&stderr)),
                ));
                return None;
            }
            Some(NginxTest {
                command,
                ok: out.status.success(),
                stderr,
            })
        }
        Err(e) => {
            skipped.push(Skipped::new("nginx -t", format!("run {command}: {e}")));
            None
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// SELinux's mode, from selinuxfs; `disabled` when it is not mounted.
fn selinux() -> Option<String> {
    match std::fs::read_to_string("/sys/fs/selinux/enforce") {
        Ok(s) if s.trim() == "1" => Some("enforcing".into()),
        Ok(_) => Some("permissive".into()),
        Err(_) => Some("disabled".into()),
    }
}

/// A file time on nginx's local wall clock (as its log times are).
fn local_time(t: std::time::SystemTime) -> LogTime {
    LogTime(
        chrono::DateTime::<chrono::Local>::from(t)
            .naive_local()
            .and_utc()
            .timestamp(),
    )
}

/// nginx's wall clock. The logs' times are local times of nginx's own time zone, which need not
/// be this process's (a service or a container with its own `TZ`): "the last hour", "now" and
/// the config files' mtimes must be read on nginx's clock, or a failure a minute old falls out
/// of `--since 1h`. The access log's `$time_local` carries nginx's UTC offset; without one, this
/// process's zone is assumed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NginxClock {
    /// Seconds east of UTC, from the access log.
    offset: Option<i64>,
}

impl NginxClock {
    pub(crate) fn of(access_logs: &[String]) -> NginxClock {
        let offset = access_logs.iter().find_map(|p| {
            let tail = tail(Path::new(p), 64 << 10)?;
            tail.split(|&b| b == b'\n')
                .rev()
                .take(200)
                .find_map(time_local_offset)
        });
        NginxClock { offset }
    }

    /// A system time on nginx's wall clock.
    pub(crate) fn at(self, t: std::time::SystemTime) -> LogTime {
        match self.offset {
            Some(o) => LogTime(chrono::DateTime::<chrono::Utc>::from(t).timestamp() + o),
            None => local_time(t),
        }
    }

    pub(crate) fn now(self) -> LogTime {
        self.at(std::time::SystemTime::now())
    }
}

/// The UTC offset of the first `$time_local` in an access line: `[20/Nov/2026:14:32:10 +0530]`.
fn time_local_offset(line: &[u8]) -> Option<i64> {
    let i = memchr::memchr(b'[', line)?;
    let t = line.get(i + 1..i + 27)?;
    LogTime::parse_time_local(t)?;
    let (sign, zone) = (t[21], &t[22..26]);
    if t[20] != b' ' || !(sign == b'+' || sign == b'-') || !zone.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |b: &[u8]| i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0');
    let secs = n(&zone[0..2]) * 3600 + n(&zone[2..4]) * 60;
    Some(if sign == b'-' { -secs } else { secs })
}

/// The error and access logs to read, and the access log's format.
/// `with_rotated`: also the newest rotation of each log the config names (`watch` follows the
/// live files only).
pub(crate) fn log_inputs(
    input: &crate::cli::InputArgs,
    models: &[Model],
    with_rotated: bool,
    skipped: &mut Vec<Skipped>,
) -> (Vec<String>, Vec<String>, Option<Arc<LogFormat>>) {
    let mut error_logs = input.error_logs.clone();
    let mut access_logs = input.access_logs.clone();
    let mut format: Option<Arc<LogFormat>> = None;
    let push = |list: &mut Vec<String>, p: String| {
        if with_rotated {
            push_with_rotated(list, p);
        } else if !list.contains(&p) {
            list.push(p);
        }
    };
    if let Some(f) = &input.log_format {
        match LogFormat::compile_with(f, Escape::Default) {
            Ok(f) => format = Some(Arc::new(f)),
            Err(e) => skipped.push(Skipped::new(
                "--log-format",
                format!("{e}: the format is recognised from the log instead"),
            )),
        }
    }
    if error_logs.is_empty() {
        for m in models {
            for l in &m.error_logs {
                if let Some(p) = log_file(&l.path, m.prefix.as_deref()) {
                    push(&mut error_logs, p);
                }
            }
        }
        if error_logs.is_empty() && !models.is_empty() {
            skipped.push(Skipped::new(
                "error log",
                "the config names no error log file (stderr, syslog or none): pass --error-log FILE",
            ));
        }
    }
    // One format per run: the first access log of the config whose format records the
    // upstream (the join and the 5xx origin need it), else its first one. Its format also
    // reads the access logs given with --access-log, unless --log-format says otherwise.
    let mut chosen: Option<(String, String, String)> = None;
    for m in models {
        for a in &m.access_logs {
            let Some(p) = log_file(&a.path, m.prefix.as_deref()) else {
                continue;
            };
            let fmt = match &a.format {
                Some(f) => f.to_string(),
                None if a.format_name == "combined" => COMBINED.to_string(),
                None => String::new(),
            };
            let better = fmt.contains("$upstream_status")
                && !chosen
                    .as_ref()
                    .is_some_and(|c| c.1.contains("$upstream_status"));
            if chosen.is_none() || better {
                chosen = Some((p, fmt, a.escape.clone()));
            }
        }
    }
    if let Some((p, fmt, escape)) = chosen {
        let escape = match escape.as_str() {
            "json" => Escape::Json,
            "none" => Escape::None,
            _ => Escape::Default,
        };
        if format.is_none() && !fmt.is_empty() {
            format = LogFormat::compile_with(&fmt, escape).ok().map(Arc::new);
        }
        if access_logs.is_empty() {
            push(&mut access_logs, p);
        }
    }
    (error_logs, access_logs, format)
}

/// A log path of the config as a file to read: relative ones against the prefix; `stderr`,
/// `syslog:`, `off` and `/dev/*` are not files.
fn log_file(path: &str, prefix: Option<&str>) -> Option<String> {
    if path == "stderr" || path == "off" || path.starts_with("syslog:") || path.starts_with("/dev/")
    {
        return None;
    }
    if path.contains('$') {
        return None;
    }
    if Path::new(path).is_absolute() {
        return Some(path.to_string());
    }
    let base = prefix.unwrap_or("/etc/nginx");
    Some(Path::new(base).join(path).display().to_string())
}

/// nginx's reload advice in the host's own words: `systemctl reload nginx` when nginx runs as a
/// unit (or nothing could tell), else `nginx -s reload` with the instance's `-p`/`-c`.
fn reload_in_hosts_words(findings: &mut [Finding], facts: &Facts, instances: &[InstanceReport]) {
    let Some(p) = &facts.probes else { return };
    if p.supervisors.nginx_unit.is_some() {
        return;
    }
    let Some(i) = instances.first() else { return };
    let mut cmd = i.binary.clone().unwrap_or_else(|| "nginx".to_string());
    if let Some(prefix) = &i.prefix {
        cmd.push_str(&format!(" -p {prefix}"));
    }
    cmd.push_str(&format!(" -c {}", i.config));
    let test = format!("{cmd} -t");
    let reload = format!("{cmd} -s reload");
    for f in findings {
        for c in f.fix.commands.iter_mut().chain(f.fix.steps.iter_mut()) {
            if c.contains("systemctl reload nginx") || c.contains("nginx -t") {
                *c = c
                    .replace("nginx -t", &test)
                    .replace("systemctl reload nginx", &reload);
            }
        }
    }
}

/// Older rotations of each log (`error.log.2.gz`, `error.log.3.gz`, ... as Debian's logrotate
/// leaves them), oldest first, as far back as the window needs: a rotation last written before
/// `since` holds nothing of the window. Without a start, every rotation is read.
fn with_older_rotations(logs: &[String], since: Option<LogTime>) -> Vec<String> {
    const MAX_ROTATIONS: u32 = 30;
    let mut out: Vec<String> = Vec::new();
    for path in logs {
        if out.contains(path) {
            continue;
        }
        let base = path
            .strip_suffix(".1.gz")
            .or_else(|| path.strip_suffix(".1"))
            .filter(|b| logs.iter().any(|l| l == b));
        if base.is_some() {
            // The newest rotation is added with its base log below.
            continue;
        }
        let mut older: Vec<String> = Vec::new();
        for n in 1..=MAX_ROTATIONS {
            let Some(file) = [format!("{path}.{n}"), format!("{path}.{n}.gz")]
                .into_iter()
                .find(|f| Path::new(f).is_file())
            else {
                break;
            };
            let newest = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .ok()
                .map(local_time);
            let needed = n == 1 || since.is_none() || newest.is_none_or(|t| Some(t) >= since);
            if !needed {
                break;
            }
            older.push(file);
        }
        older.reverse();
        out.extend(older);
        out.push(path.clone());
    }
    out
}

/// The log and its most recent rotation (`error.log.1`, or `.1.gz`), oldest first, once each.
fn push_with_rotated(list: &mut Vec<String>, path: String) {
    if list.contains(&path) {
        return;
    }
    for rotated in [format!("{path}.1"), format!("{path}.1.gz")] {
        if Path::new(&rotated).is_file() && !list.contains(&rotated) {
            list.push(rotated);
            break;
        }
    }
    list.push(path);
}

/// `--since`/`--until`; by default the last 24 hours that the logs cover (up to their newest
/// line, not up to now: a post-mortem of yesterday's logs still sees yesterday).
fn window(
    args: &DiagnoseArgs,
    error_logs: &[String],
    access_logs: &[String],
    clock: NginxClock,
) -> Result<Window> {
    let now = clock.now();
    let until = args
        .input
        .until
        .as_deref()
        .map(|s| parse_when_at(s, "--until", now))
        .transpose()?;
    let since = match args.input.since.as_deref() {
        Some(s) => Some(parse_when_at(s, "--since", now)?),
        None => newest_time(error_logs, access_logs).map(|t| LogTime(t.0 - 86_400)),
    };
    Ok(Window { since, until })
}

/// The newest time in the tails of the plain (not compressed) logs.
fn newest_time(error_logs: &[String], access_logs: &[String]) -> Option<LogTime> {
    let mut newest: Option<LogTime> = None;
    for (path, access) in error_logs
        .iter()
        .map(|p| (p, false))
        .chain(access_logs.iter().map(|p| (p, true)))
    {
        let Some(tail) = tail(Path::new(path), 64 << 10) else {
            continue;
        };
        for line in tail.split(|&b| b == b'\n').rev().take(200) {
            let t = if access {
                memchr::memchr(b'[', line).and_then(|i| LogTime::parse_time_local(&line[i + 1..]))
            } else {
                LogTime::parse_error_log(line)
            };
            if let Some(t) = t {
                newest = Some(newest.map_or(t, |n| n.max(t)));
                break;
            }
        }
    }
    newest
}

fn tail(path: &Path, n: u64) -> Option<Vec<u8>> {
    if path.extension().is_some_and(|e| e == "gz") {
        return None;
    }
    // A pipe is refused (the scan names it in `skipped`): opening it could wait forever.
    let mut f = medic_parse::input::open_regular(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(n))).ok()?;
    let mut buf = Vec::new();
    f.take(n).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// Scans the logs and turns the summaries into [`LogFacts`].
fn read_logs(
    error_logs: &[String],
    access_logs: &[String],
    format: Option<Arc<LogFormat>>,
    window: Window,
    skipped: &mut Vec<Skipped>,
) -> Result<LogFacts> {
    let mut facts = LogFacts::default();
    if error_logs.is_empty() && access_logs.is_empty() {
        skipped.push(Skipped::new(
            "logs",
            "no error or access log to read: pass --error-log / --access-log",
        ));
        return Ok(facts);
    }
    let spec = ScanSpec {
        files: Vec::new(),
        error_logs: error_logs.to_vec(),
        access_logs: access_logs.to_vec(),
        format,
        escape: Escape::Default,
        window,
        threads: None,
        progress: true,
        cell_details: true,
    };
    let (f, problems) = scan(&spec, |s| {
        let mut f = LogFacts::default();
        for i in &s.inputs {
            if i.error.is_none() || i.bytes > 0 {
                match i.kind {
                    "access" => f.access_logs.push(i.path.clone()),
                    _ => f.error_logs.push(i.path.clone()),
                }
            }
        }
        if let Some(e) = s.error {
            error_groups(e, s.source, s.access, &mut f.groups);
            f.last_reload = e.last_reload;
            f.reloads = e.reloads.clone();
            f.failures_per_minute = e.failures_per_minute();
        }
        f.rotations = s.rotations.clone();
        if let Some(a) = s.access {
            access_groups(a, s.source, &mut f);
        }
        let mut problems: Vec<Skipped> = s
            .problems
            .iter()
            .map(|p| Skipped::new(format!("log {}", p.path), p.error.clone()))
            .collect();
        // Read in part (a damaged gzip, a file truncated while read): the findings stand on
        // what was read, and the report says what was not.
        for i in s.inputs.iter().filter(|i| i.bytes > 0) {
            if let Some(e) = &i.error {
                problems.push(Skipped::new(format!("log {}", i.path), e.clone()));
            }
        }
        if let Some(n) = s.error.map(|e| e.overflow).filter(|n| *n > 0) {
            problems.push(Skipped::new(
                "error log upstreams",
                format!(
                    "{n} entries name more than {} distinct upstreams of one class: they are counted, without their upstream (no finding per upstream beyond that)",
                    medic_core::logs::error_summary::MAX_CELLS_PER_CLASS
                ),
            ));
        }
        for (summary, samples) in [
            ("error log", s.error.map(|e| &e.unparsed)),
            ("access log", s.access.map(|a| &a.unparsed)),
        ] {
            if let Some(u) = samples.filter(|u| u.count > 0) {
                let at: Vec<String> = u
                    .samples
                    .iter()
                    .take(3)
                    .map(|(loc, why, _)| format!("{} ({why})", (s.source)(*loc)))
                    .collect();
                problems.push(Skipped::new(
                    format!("{summary} lines"),
                    format!(
                        "{} lines could not be read as {summary} records and were counted, not diagnosed: {}",
                        u.count,
                        at.join("; ")
                    ),
                ));
            }
        }
        Ok((f, problems))
    })?;
    facts = f;
    skipped.extend(problems);
    Ok(facts)
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

pub(crate) fn error_groups(
    e: &ErrorSummary,
    source: &dyn Fn(LineLoc) -> String,
    access: Option<&AccessSummary<'_>>,
    out: &mut Vec<LogGroup>,
) {
    for class in FailureClass::ALL {
        if class == FailureClass::Other {
            continue;
        }
        let top_clients: Vec<(String, u64)> = e.tops[class as usize]
            .as_ref()
            .map(|t| {
                t.clients
                    .top(5)
                    .into_iter()
                    .map(|(v, n)| (text(v), n))
                    .collect()
            })
            .unwrap_or_default();
        for cell in e.cells[class as usize].values() {
            let up = text(&cell.upstream);
            out.push(LogGroup {
                class,
                upstream: (up != "-").then_some(up),
                detail: cell.detail.as_deref().map(text),
                count: cell.count,
                first: cell.first,
                last: cell.last,
                first_line: LogLine {
                    source: source(cell.example.0),
                    text: text(cell.example.1.bytes()),
                },
                last_line: cell.latest.as_ref().map(|(loc, t)| LogLine {
                    source: source(*loc),
                    text: text(t.bytes()),
                }),
                minutes: cell
                    .minutes
                    .iter()
                    .map(|(m, n)| (LogTime(i64::from(*m) * 60), *n))
                    .collect(),
                top_clients: top_clients.clone(),
                impact: access.and_then(|a| a.impact.get(&(class, cell.upstream.clone())).cloned()),
            });
        }
    }
}

pub(crate) fn access_groups(
    a: &AccessSummary<'_>,
    source: &dyn Fn(LineLoc) -> String,
    out: &mut LogFacts,
) {
    for ((up, status, origin), c) in &a.by_upstream {
        let up_s = text(up);
        let mut minutes: Vec<(LogTime, u32)> = a
            .per_minute
            .iter()
            .filter(|((_, u, s, o), _)| u == up && s == status && o == origin)
            .map(|((m, ..), n)| (LogTime(*m), *n as u32))
            .collect();
        minutes.sort_unstable();
        out.access_5xx.push(Access5xx {
            upstream: (up_s != "-").then_some(up_s),
            status: *status,
            origin: *origin,
            count: c.count,
            first: c.first,
            last: c.last,
            example: LogLine {
                source: source(c.example),
                text: text(&c.example_text),
            },
            minutes,
        });
    }
    for (up, c) in &a.client_closed {
        let up_s = text(up);
        out.client_closed.push(ClientClosedGroup {
            upstream: (up_s != "-").then_some(up_s),
            count: c.count,
            first: c.first,
            last: c.last,
            mean_wait: (c.urt_n > 0).then(|| c.urt_sum / c.urt_n as f64),
            max_wait: (c.urt_n > 0).then_some(c.urt_max),
            example: c.example.as_ref().map(|(loc, t)| LogLine {
                source: source(*loc),
                text: text(t),
            }),
        });
    }
    // Stable order for the engine and the report.
    out.access_5xx
        .sort_by(|x, y| (&x.upstream, x.status).cmp(&(&y.upstream, y.status)));
    out.client_closed
        .sort_by(|x, y| x.upstream.cmp(&y.upstream));
}

fn dedup_skipped(s: &mut Vec<Skipped>) {
    let mut seen = std::collections::HashSet::new();
    s.retain(|x| seen.insert((x.check.clone(), x.why.clone())));
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn the_access_log_gives_nginx_utc_offset() {
        let line =
            |z: &str| format!("127.0.0.1 - - [04/Dec/2026:19:03:09 {z}] \"GET / HTTP/1.1\" 502 0");
        assert_eq!(time_local_offset(line("-0500").as_bytes()), Some(-5 * 3600));
        assert_eq!(
            time_local_offset(line("+0530").as_bytes()),
            Some(5 * 3600 + 1800)
        );
        assert_eq!(time_local_offset(line("+0000").as_bytes()), Some(0));
        assert_eq!(time_local_offset(line("EST").as_bytes()), None);
        assert_eq!(
            time_local_offset(b"2026/12/04 19:03:09 [error] 1#1: x"),
            None
        );
        let clock = NginxClock {
            offset: Some(-5 * 3600),
        };
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
        assert_eq!(clock.at(t), LogTime(86_400 - 5 * 3600));
    }
}
