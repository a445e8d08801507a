//! Command-line interface (clap derive). Exit codes: 0 done, 1 findings at or above `--fail-on`
//! (later), 2 the tool could not do its job. A closed stdout (`| head`) is not an error.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logs::{run_logs, LogsOutcome};

#[derive(Debug, Parser)]
#[command(name = "nginx-medic", version, about = "Finds out why nginx answers 502, 503 or 504", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// When to color the text report.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find out why nginx answers 502/503/504: ranked root causes with their evidence, the fix,
    /// the commands, time and risk (the default command).
    Diagnose(DiagnoseArgs),
    /// Print a rule's documentation (`explain socket-permission`), or list the catalog.
    Explain(ExplainArgs),
    /// Summarize nginx error and access logs: failure classes per upstream over time.
    Logs(LogsArgs),
    /// Read nginx's configuration: parse it, or lint its upstreams.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Probe every upstream the config names: what listens, can nginx's user reach it, how it
    /// answers (TCP, unix sockets, HTTP, FastCGI, TLS), and the backends' supervisors.
    Probe(ProbeArgs),
    /// Gather what `diagnose` uses on this host (config, `nginx -V`, the logs of the window,
    /// the probe and supervisor facts) into one redacted tar.gz, to diagnose anywhere with
    /// `diagnose --bundle`.
    Collect(CollectArgs),
    /// Follow the logs as nginx writes them (through logrotate's renames and truncations) and
    /// diagnose as it happens: incidents open when a cause starts and close when the evidence
    /// says it stopped; JSON-lines events, a live terminal view, Prometheus metrics.
    Watch(WatchArgs),
    /// Fix what the diagnosis found, safely: print the plan (a diff per config file, the exact
    /// commands); with --apply, back up, `nginx -t` the new tree, write, reload, verify, and
    /// roll back when the fix does not cure. Without --apply nothing on the host changes.
    Fix(FixArgs),
    /// Print the man page (roff) or a shell completion script, to install by hand or package.
    Generate(GenerateArgs),
    /// Internal to `fix --apply`: `nginx -t` with staged files bind-mounted over the real ones
    /// in a private mount namespace.
    #[command(hide = true)]
    StageTest(StageTestArgs),
}

#[derive(Debug, Args)]
pub struct StageTestArgs {
    /// The nginx binary to exec.
    #[arg(long)]
    pub nginx: std::path::PathBuf,
    /// STAGED TARGET: bind STAGED over TARGET (repeatable).
    #[arg(long, num_args = 2, value_names = ["STAGED", "TARGET"])]
    pub bind: Vec<std::path::PathBuf>,
    /// What follows `--`: nginx's `-p P -c C [-e E]`.
    #[arg(last = true, allow_hyphen_values = true)]
    pub nginx_args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Only findings with this ID (repeatable). Without it, the ongoing findings; a latent or
    /// resolved finding is fixed only when named here.
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
    /// Only findings about this upstream, as nginx names it (`127.0.0.1:8080`, `unix:/run/x.sock`).
    #[arg(long, value_name = "U")]
    pub upstream: Option<String>,
    /// Make the changes (asks on a terminal unless --yes). Without it, only the plan is printed.
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Apply fixes up to this risk; riskier ones are printed as advice.
    #[arg(long, value_enum, default_value_t = RiskLevel::Low)]
    pub risk: RiskLevel,
    #[arg(long, value_enum, default_value_t = FixFormat::Text)]
    pub format: FixFormat,
    /// How long to wait for the fix to show (new workers, the target healthy), in seconds.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub verify_seconds: u64,
    /// Where to keep the backups (default: /var/lib/nginx-medic/backups/TIMESTAMP/); never a
    /// directory nginx includes.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<String>,
    /// The lock that keeps two `fix --apply` from running at once.
    #[arg(long, value_name = "FILE", default_value = "/run/nginx-medic/fix.lock")]
    pub lock_file: String,
    /// Wait at most this long (ms) for an upstream's first byte in the probes.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub probe_wait_ms: u64,
}

/// `fix --risk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RiskLevel {
    Low,
    Medium,
}

/// `fix --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FixFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The main config file or `nginx -T` output; without it (and without --error-log), the
    /// running nginx is discovered and the logs its config names are followed.
    #[arg(long)]
    pub config: Option<String>,
    /// nginx's prefix (`-p`), for relative paths.
    #[arg(long)]
    pub prefix: Option<String>,
    /// An error log to follow (default: the ones the config names).
    #[arg(long = "error-log", value_name = "FILE")]
    pub error_logs: Vec<String>,
    /// An access log to follow (default: the one the config names, with its `log_format`).
    #[arg(long = "access-log", value_name = "FILE")]
    pub access_logs: Vec<String>,
    /// The access log's `log_format` (default: the config's, else recognised from the log).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Read the files only: no probes (incidents then close after --close-after without
    /// failures, saying they were not probed).
    #[arg(long)]
    pub no_probe: bool,
    /// Read the logs from their first line (default: from their end, like `tail -f`, unless
    /// --state-dir holds where the last run stopped).
    #[arg(long)]
    pub from_start: bool,
    /// Keep the read offsets here (written atomically), so a restart resumes exactly where the
    /// last run stopped, through rotations that happened meanwhile.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<String>,
    /// Serve Prometheus/OpenMetrics metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
    /// Write events (incident-open, -update, -close, rotation, truncation, probe) as JSON lines
    /// to FILE (appended), or to stdout with `-`.
    #[arg(long, value_name = "FILE|-")]
    pub events: Option<String>,
    /// Diagnose the failures of this many last seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub window: i64,
    /// An open incident is updated at most this often (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub update_every: i64,
    /// After this many seconds without a failure, an incident's target is probed: closed when
    /// it answers.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub quiet: i64,
    /// Without probes, an incident closes after this many seconds without a failure.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub close_after: i64,
    /// One target is probed at most once in this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub probe_interval: u64,
    /// Wait at most this long (ms) for an upstream's first byte in a probe.
    #[arg(long, value_name = "MS", default_value_t = 3_000)]
    pub probe_wait_ms: u64,
    /// Upstream label values in the metrics beyond the config's own: past this many, they are
    /// counted as `other`.
    #[arg(long, value_name = "N", default_value_t = 2_000)]
    pub max_series: usize,
    /// Stop after this many seconds (0: run until SIGTERM/SIGINT).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub exit_after: u64,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to print on stdout.
    #[arg(value_enum)]
    pub kind: GenerateKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerateKind {
    /// The man page (roff), every command in one page: save as nginx-medic.1.
    Man,
    /// bash: save as /usr/share/bash-completion/completions/nginx-medic.
    CompleteBash,
    /// zsh: save as _nginx-medic in a directory of $fpath.
    CompleteZsh,
    /// fish: save as ~/.config/fish/completions/nginx-medic.fish.
    CompleteFish,
    /// PowerShell: append it to $PROFILE.
    CompletePowershell,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The main config file or `nginx -T` output; without it, the running nginx is discovered.
    #[arg(long)]
    pub config: Option<String>,
    /// nginx's prefix (`-p`), for relative paths.
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// At most this many probes at once (each waits on its own socket).
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
    /// Extra time allowed beyond each probe's own timeout (the effective `*_timeout`), in ms.
    #[arg(long, default_value_t = 500)]
    pub margin_ms: u64,
}

/// What to read, for `diagnose` and `collect`: the config, the logs, the window, and whether
/// to probe the host.
#[derive(Debug, Clone, Default, Args)]
pub struct InputArgs {
    /// The main config file or `nginx -T` output; without it, the running nginx is discovered
    /// (then `nginx -V`'s config path).
    #[arg(long)]
    pub config: Option<String>,
    /// nginx's prefix (`-p`), for relative paths.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Error logs to read (globs and rotated series too); default: the ones the config names.
    #[arg(long = "error-log", value_name = "FILE")]
    pub error_logs: Vec<String>,
    /// Access logs to read; default: the ones the config names, with their `log_format`.
    #[arg(long = "access-log", value_name = "FILE")]
    pub access_logs: Vec<String>,
    /// The access log's `log_format` (default: the config's, else recognised from the log).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Only log entries at or after this time (`2026-11-20 14:00`) or this long ago (`90m`,
    /// `2h`, `1d`); default: the last 24 hours the logs cover.
    #[arg(long, value_name = "TIME|DURATION")]
    pub since: Option<String>,
    /// Only log entries at or before this time (same forms as --since).
    #[arg(long, value_name = "TIME|DURATION")]
    pub until: Option<String>,
    /// Post-mortem: read the files only; no probes, no supervisors, no `nginx -t`.
    #[arg(long)]
    pub no_probe: bool,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[arg(long, value_enum, default_value_t = DiagnoseFormat::Text)]
    pub format: DiagnoseFormat,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// The text and HTML reports show this many findings, most likely first (0: all). JSON
    /// and SARIF always hold all of them.
    #[arg(long, value_name = "N", default_value_t = 25)]
    pub max: usize,
    /// At most this many probes at once.
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
    /// Extra time allowed beyond each probe's own timeout (the effective `*_timeout`), in ms.
    #[arg(long, default_value_t = 500)]
    pub margin_ms: u64,
    /// Wait at most this long (ms) for an upstream's first byte, even when its read timeout is
    /// longer (a hung backend is reported as silent for that long); 0: wait the timeout out.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub probe_wait_ms: u64,
    /// Also write the facts of this run (config dump, the logs read, probe and supervisor
    /// results, every systemctl/journalctl/pm2 answer) into DIR, to replay with --replay.
    #[arg(long, value_name = "DIR")]
    pub record: Option<String>,
    /// Diagnose a recorded run (a --record directory) instead of this host.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "no_probe", "record"])]
    pub replay: Option<String>,
    /// Diagnose a bundle of `nginx-medic collect` (checked against its MANIFEST, unpacked into
    /// a temporary directory) instead of this host.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "no_probe", "record", "replay"])]
    pub bundle: Option<String>,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Write the bundle here (a tar.gz; mode 0600).
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "nginx-medic-incident.tar.gz"
    )]
    pub output: String,
    #[command(flatten)]
    pub input: InputArgs,
    /// Wait at most this long (ms) for an upstream's first byte.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub probe_wait_ms: u64,
    /// Copy the values as they are: no pseudonyms for credentials, keys or tokens (the MANIFEST
    /// says so). Only for a bundle that never leaves your organisation.
    #[arg(long)]
    pub no_redact: bool,
}

impl Default for DiagnoseArgs {
    /// `nginx-medic` with no arguments: discover, read the logs the config names, probe.
    fn default() -> Self {
        DiagnoseArgs {
            input: InputArgs::default(),
            format: DiagnoseFormat::Text,
            fail_on: None,
            max: 25,
            concurrency: 512,
            margin_ms: 500,
            probe_wait_ms: 10_000,
            record: None,
            replay: None,
            bundle: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DiagnoseFormat {
    #[default]
    Text,
    /// `causes.md` §3.
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// One self-contained HTML page (no scripts, no network): the incident report.
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The rule's ID (`socket-permission`, `ssl-no-sni`, ...).
    pub id: Option<String>,
    /// List every rule: ID, title, time and risk of the fix.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse a config (a file, or `nginx -T` output) and print its tree.
    Parse(ConfigParseArgs),
    /// Warn about upstream settings that cause 502/504 (latent causes, `causes.md` §2b).
    Lint(ConfigLintArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ParseFormat {
    /// The JSON of `crossplane parse` 0.5.8, byte for byte.
    Crossplane,
}

#[derive(Debug, Args)]
pub struct ConfigParseArgs {
    /// The main config file, or a file holding `nginx -T` output (`-` for stdin).
    pub file: String,
    #[arg(long, value_enum, default_value_t = ParseFormat::Crossplane)]
    pub format: ParseFormat,
    /// Do not follow includes.
    #[arg(long)]
    pub single_file: bool,
    /// Keep `#` comments as directives.
    #[arg(long)]
    pub include_comments: bool,
    /// No context or argument-count checks (crossplane's `check_ctx=False, check_args=False`).
    #[arg(long)]
    pub syntax_only: bool,
    /// Pretty-print (crossplane's `--indent 4`); the default is crossplane's compact output.
    #[arg(long)]
    pub pretty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Args)]
pub struct ConfigLintArgs {
    /// The main config file or `nginx -T` output; without it, the running nginx is discovered.
    #[arg(long)]
    pub config: Option<String>,
    /// nginx's prefix (`-p`), for relative paths; default from discovery or the config's dir.
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = Severity::Warning)]
    pub fail_on: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `logs --format`: the probe's formats and the HTML page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogsFormat {
    Text,
    Json,
    /// One self-contained HTML page (no scripts, no network).
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogEscape {
    Default,
    Json,
    None,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Log files (error or access, told apart by their content), globs, rotated series
    /// (error.log error.log.1 error.log.2.gz ...), gzip, or `-` for stdin.
    pub files: Vec<String>,
    /// Files to read as error logs, whatever they look like.
    #[arg(long = "error-log", value_name = "FILE")]
    pub error_logs: Vec<String>,
    /// Files to read as access logs, whatever they look like.
    #[arg(long = "access-log", value_name = "FILE")]
    pub access_logs: Vec<String>,
    /// The access log's `log_format`: a format string, or `combined` / `main`. Without it, the
    /// format is recognised from the first lines among common ones (combined, main, combined
    /// with upstream fields, nginx's upstream_time, ingress-nginx).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// How the access log's values were escaped (`log_format ... escape=`).
    #[arg(long, value_enum, default_value_t = LogEscape::Default)]
    pub log_escape: LogEscape,
    /// Only entries at or after this time: `2026-11-20 14:00[:00]`, or a duration back from now
    /// (`90m`, `2h`, `1d`). Times are nginx's local wall clock.
    #[arg(long, value_name = "TIME|DURATION")]
    pub since: Option<String>,
    /// Only entries at or before this time (same forms as --since).
    #[arg(long, value_name = "TIME|DURATION")]
    pub until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LogsFormat::Text)]
    pub format: LogsFormat,
    /// Reader threads for large plain files (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let command = match cli.command {
        Some(c) => c,
        None => Command::Diagnose(DiagnoseArgs::default()),
    };
    if matches!(
        command,
        Command::Logs(_)
            | Command::Probe(_)
            | Command::Diagnose(_)
            | Command::Collect(_)
            | Command::Watch(_)
            | Command::Fix(_)
    ) {
        crate::alloc::keep_resident_memory_low();
    }
    match command {
        Command::Diagnose(args) => exit(crate::diagnose::run(&args, color)),
        Command::Collect(args) => exit(crate::bundle::collect::run(&args)),
        Command::Explain(args) => exit(crate::explain::run(&args)),
        Command::Probe(args) => exit(crate::probe::run(&args, color)),
        Command::Config(ConfigCommand::Parse(args)) => exit(crate::config_parse::run(&args)),
        Command::Config(ConfigCommand::Lint(args)) => exit(crate::config_lint::run(&args, color)),
        Command::Generate(args) => exit(crate::generate::run(&args)),
        Command::Watch(args) => exit(crate::watch::run(&args, color)),
        Command::Fix(args) => exit(crate::fix::run(&args)),
        Command::StageTest(args) => exit(crate::fix::apply::stage::run(&args)),
        Command::Logs(args) => match run_logs(&args, color) {
            Ok(LogsOutcome::Done) => ExitCode::SUCCESS,
            Ok(LogsOutcome::NothingRead) => ExitCode::from(2),
            Err(e) => {
                if is_broken_pipe(&e) {
                    return ExitCode::SUCCESS;
                }
                let _ = writeln!(io::stderr(), "nginx-medic: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

/// Maps a command's result to the exit status: its own code, or 2 with the error on stderr.
fn exit(r: anyhow::Result<u8>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "nginx-medic: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}
