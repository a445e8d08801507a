//! Finds the nginx to lint on this host: running masters from `/proc`, the binary's `nginx -V`,
//! and its configuration as `nginx -T` prints it (or the files, when `nginx -T` fails).
//!
//! Programs run with argv and a deadline, never through a shell. Whatever cannot be checked
//! (no permission to read another user's `/proc/PID/exe`, no nginx installed, `nginx -T`
//! refused) is recorded as a [`Skipped`] fact with the reason, never silently left out.

use std::fs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

pub use medic_core::facts::Skipped;

use crate::exec::run;

/// The arguments of a running master, read from its process title.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MasterArgs {
    /// The binary as started (`/usr/sbin/nginx`).
    pub program: String,
    /// `-p PREFIX`.
    pub prefix: Option<String>,
    /// `-c FILE`.
    pub conf: Option<String>,
    /// `-g DIRECTIVES`.
    pub globals: Option<String>,
    /// `-e FILE`.
    pub error_log: Option<String>,
}

/// A running nginx master process.
#[derive(Clone, Debug, Serialize)]
pub struct Master {
    pub pid: u32,
    /// `/proc/PID/exe`, when readable (root, or the same user).
    pub exe: Option<PathBuf>,
    /// The process title: `nginx: master process /usr/sbin/nginx -g daemon on;`.
    pub title: String,
    pub args: MasterArgs,
}

/// What `nginx -V` says about the build.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BuildInfo {
    /// `1.22.1`.
    pub version: Option<String>,
    /// `--prefix` (nginx's compiled-in default is `/usr/local/nginx`).
    pub prefix: Option<String>,
    /// `--conf-path` (default `PREFIX/conf/nginx.conf`).
    pub conf_path: Option<String>,
    /// `--error-log-path` (default `PREFIX/logs/error.log`).
    pub error_log_path: Option<String>,
    pub http_log_path: Option<String>,
    pub pid_path: Option<String>,
    /// `http_ssl_module`, `stream=dynamic`, `/path/to/added-module`, ...
    pub modules: Vec<String>,
}

impl BuildInfo {
    /// The prefix nginx uses without `-p`.
    pub fn effective_prefix(&self) -> String {
        self.prefix
            .clone()
            .unwrap_or_else(|| "/usr/local/nginx".to_string())
    }

    /// The main config nginx reads without `-c`, resolved against the prefix like nginx does.
    pub fn effective_conf(&self, prefix: &str) -> String {
        let c = self
            .conf_path
            .clone()
            .unwrap_or_else(|| "conf/nginx.conf".to_string());
        absolute(&c, prefix)
    }
}

/// The configuration as nginx itself reads it, or why it could not be had.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dump {
    /// `nginx -T` succeeded: its stdout.
    NginxT { stdout: String },
    /// `nginx -T` failed (exit status, stderr): the config does not load as it is on disk.
    Failed { status: Option<i32>, stderr: String },
    /// `nginx -T` could not be run at all (not installed, not allowed, timed out).
    NotRun { why: String },
}

/// One nginx instance found on the host.
#[derive(Clone, Debug, Serialize)]
pub struct Instance {
    pub master: Option<Master>,
    pub binary: PathBuf,
    pub build: Option<BuildInfo>,
    pub prefix: String,
    pub conf: String,
    #[serde(skip)]
    pub dump: Dump,
}

/// Everything discovery found, and what it could not check.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Discovery {
    pub instances: Vec<Instance>,
    pub skipped: Vec<Skipped>,
}

/// How long `nginx -V` / `nginx -T` may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a packaged nginx usually is, when none is running.
pub(crate) const CANDIDATES: [&str; 4] = [
    "/usr/sbin/nginx",
    "/usr/local/sbin/nginx",
    "/usr/local/nginx/sbin/nginx",
    "/usr/bin/nginx",
];

/// Finds the running masters (or, with none, the installed binary) and reads each config.
pub fn discover() -> Discovery {
    discover_in(Path::new("/proc"))
}

/// [`discover`] without running `nginx -T` (it resolves the config's host names): the configs
/// are read from disk (`diagnose --no-probe`).
pub fn discover_without_nginx_t() -> Discovery {
    discover_with(Path::new("/proc"), false)
}

/// [`discover`] with another `/proc` (tests).
pub fn discover_in(proc_root: &Path) -> Discovery {
    discover_with(proc_root, true)
}

fn discover_with(proc_root: &Path, run_nginx_t: bool) -> Discovery {
    let mut d = Discovery::default();
    let masters = masters(proc_root, &mut d.skipped);
    if masters.is_empty() {
        // nginx is down: its unit says how systemd starts it (`-c`, `-p`, the binary).
        if let Some((bin, args)) = unit_start_args(proc_root, &mut d.skipped) {
            let m = Master {
                pid: 0,
                exe: Some(bin.clone()),
                title: format!("nginx.service ExecStart: {}", args.program),
                args,
            };
            d.instances
                .push(instance(Some(m), bin, run_nginx_t, &mut d.skipped));
            return d;
        }
        match CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()) {
            Some(bin) => d
                .instances
                .push(instance(None, bin, run_nginx_t, &mut d.skipped)),
            None => d.skipped.push(Skipped::new(
                "nginx",
                format!(
                    "no running nginx master and no nginx binary in {}",
                    CANDIDATES.join(", ")
                ),
            )),
        }
    }
    for m in masters {
        let bin = m
            .exe
            .clone()
            .unwrap_or_else(|| PathBuf::from(&m.args.program));
        d.instances
            .push(instance(Some(m), bin, run_nginx_t, &mut d.skipped));
    }
    d
}

fn instance(
    master: Option<Master>,
    binary: PathBuf,
    run_nginx_t: bool,
    skipped: &mut Vec<Skipped>,
) -> Instance {
    let build = match nginx_v(&binary) {
        Ok(b) => Some(b),
        Err(why) => {
            skipped.push(Skipped::new(format!("{} -V", binary.display()), why));
            None
        }
    };
    let args = master.as_ref().map(|m| m.args.clone()).unwrap_or_default();
    // nginx's own order: -p, else the compiled prefix; -c relative to the prefix.
    let prefix = args
        .prefix
        .clone()
        .or_else(|| build.as_ref().map(BuildInfo::effective_prefix))
        .unwrap_or_else(|| "/usr/local/nginx".to_string());
    let conf = match &args.conf {
        Some(c) => absolute(c, &prefix),
        None => build
            .as_ref()
            .map(|b| b.effective_conf(&prefix))
            .unwrap_or_else(|| absolute("conf/nginx.conf", &prefix)),
    };
    let dump = if run_nginx_t {
        nginx_t(&binary, &args, &prefix, &conf)
    } else {
        Dump::NotRun {
            why: "not run (--no-probe): the config is read from disk".to_string(),
        }
    };
    if let Dump::NotRun { why } = &dump {
        skipped.push(Skipped::new(
            format!("{} -T", binary.display()),
            why.clone(),
        ));
    }
    Instance {
        master,
        binary,
        build,
        prefix,
        conf,
        dump,
    }
}

/// With no master running, how systemd would start nginx: `systemctl show nginx.service -p
/// ExecStart` (`{ path=/usr/sbin/nginx ; argv[]=/usr/sbin/nginx -c /etc/nginx/x.conf ... }`),
/// read as a master's title would be. `None` without systemd or an nginx unit.
fn unit_start_args(proc_root: &Path, skipped: &mut Vec<Skipped>) -> Option<(PathBuf, MasterArgs)> {
    let pid1 = std::fs::read_to_string(proc_root.join("1/comm")).ok()?;
    if pid1.trim() != "systemd" {
        return None;
    }
    let mut cmd = std::process::Command::new("systemctl");
    cmd.args([
        "show",
        "nginx.service",
        "--property=ExecStart,LoadState",
        "--no-pager",
    ])
    .env("LC_ALL", "C");
    let out = match crate::exec::run(&mut cmd, COMMAND_TIMEOUT) {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => {
            skipped.push(Skipped::new("systemctl show nginx.service", e.to_string()));
            return None;
        }
    };
    if !out.contains("LoadState=loaded") {
        return None;
    }
    let argv = out
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))?
        .split(" ; ")
        .find_map(|p| p.strip_prefix("argv[]="))?;
    let args = parse_master_title(&format!("nginx: master process {argv}"))?;
    Some((PathBuf::from(&args.program), args))
}

/// Every process whose title is `nginx: master process ...`.
pub fn masters(proc_root: &Path, skipped: &mut Vec<Skipped>) -> Vec<Master> {
    let dir = match fs::read_dir(proc_root) {
        Ok(d) => d,
        Err(e) => {
            skipped.push(Skipped::new(
                "running nginx",
                format!("read {}: {e}", proc_root.display()),
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut exe_denied = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A process that exits while we look is simply gone: not a finding, not a skip.
        let Ok(raw) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let title = cmdline_title(&raw);
        let Some(args) = parse_master_title(&title) else {
            continue;
        };
        let exe = match fs::read_link(e.path().join("exe")) {
            Ok(p) => Some(p),
            Err(err) => {
                exe_denied.push(format!("{pid} ({err})"));
                None
            }
        };
        out.push(Master {
            pid,
            exe,
            title,
            args,
        });
    }
    if !exe_denied.is_empty() {
        skipped.push(Skipped::new(
            "nginx master binary (/proc/PID/exe)",
            format!(
                "not readable for PID {}; using the path in the process title (run as root to check the binary itself)",
                exe_denied.join(", ")
            ),
        ));
    }
    out.sort_by_key(|m| m.pid);
    out
}

/// `/proc/PID/cmdline` as one string: NUL-separated argv joined by spaces. nginx overwrites its
/// argv with the title (`ngx_setproctitle`), so a master shows one string with spaces.
pub fn cmdline_title(raw: &[u8]) -> String {
    let parts: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    parts.join(" ")
}

/// Parses `nginx: master process /usr/sbin/nginx -p X -c Y -g Z`.
///
/// The title is nginx's argv joined by spaces (`ngx_setproctitle` in
/// `src/os/unix/ngx_setproctitle.c`), so arguments with spaces are ambiguous; `-g` takes the
/// rest up to the next ` -X ` flag, which is right for the `-g "daemon on; ..."` of packages.
pub fn parse_master_title(title: &str) -> Option<MasterArgs> {
    let rest = title.trim().strip_prefix("nginx: master process")?.trim();
    let tokens: Vec<&str> = rest.split(' ').filter(|t| !t.is_empty()).collect();
    let mut a = MasterArgs {
        program: tokens.first()?.to_string(),
        ..MasterArgs::default()
    };
    let is_flag = |t: &str| t.len() == 2 && t.starts_with('-');
    let mut i = 1;
    while i < tokens.len() {
        let flag = tokens[i];
        i += 1;
        let mut value = Vec::new();
        while i < tokens.len() && !is_flag(tokens[i]) {
            value.push(tokens[i]);
            i += 1;
            // Only -g values run on; the others are one word.
            if flag != "-g" {
                break;
            }
        }
        let v = (!value.is_empty()).then(|| value.join(" "));
        match flag {
            "-p" => a.prefix = v,
            "-c" => a.conf = v,
            "-g" => a.globals = v,
            "-e" => a.error_log = v,
            _ => {}
        }
    }
    Some(a)
}

/// Parses `nginx -V` output (nginx prints it on stderr).
pub fn parse_nginx_v(text: &str) -> BuildInfo {
    let mut b = BuildInfo::default();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("nginx version: ") {
            let v = v.trim();
            b.version = Some(v.split_once('/').map_or(v, |(_, v)| v).to_string());
        }
        let Some(args) = line.strip_prefix("configure arguments:") else {
            continue;
        };
        for arg in split_configure_args(args) {
            let (k, v) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
            match k {
                "--prefix" => b.prefix = Some(v.to_string()),
                "--conf-path" => b.conf_path = Some(v.to_string()),
                "--error-log-path" => b.error_log_path = Some(v.to_string()),
                "--http-log-path" => b.http_log_path = Some(v.to_string()),
                "--pid-path" => b.pid_path = Some(v.to_string()),
                "--add-module" | "--add-dynamic-module" => b.modules.push(v.to_string()),
                _ => {
                    // --with-cc-opt and friends are compiler flags, and --with-debug etc.
                    // build options: neither is a module.
                    let Some(m) = k.strip_prefix("--with-") else {
                        continue;
                    };
                    let module = (m.ends_with("module") || v == "dynamic" || !arg.contains('='))
                        && !matches!(m, "debug" | "compat" | "threads" | "pcre-jit" | "file-aio");
                    if module {
                        b.modules.push(if v.is_empty() {
                            m.to_string()
                        } else {
                            format!("{m}={v}")
                        });
                    }
                }
            }
        }
    }
    b
}

/// Splits configure arguments on spaces outside single quotes (`--with-cc-opt='-g -O2'`).
fn split_configure_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn nginx_v(bin: &Path) -> Result<BuildInfo, String> {
    let out = run(Command::new(bin).arg("-V"), COMMAND_TIMEOUT)
        .map_err(|e| format!("run {} -V: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let b = parse_nginx_v(&text);
    if b.version.is_none() {
        return Err(format!(
            "{} -V printed no version ({}): {}",
            bin.display(),
            out.status,
            text.trim()
        ));
    }
    Ok(b)
}

/// `nginx -T` with the master's own -p/-c/-g, so the dump is of the config it runs.
fn nginx_t(bin: &Path, args: &MasterArgs, prefix: &str, conf: &str) -> Dump {
    let mut cmd = Command::new(bin);
    cmd.arg("-T")
        .arg("-p")
        .arg(prefix_arg(prefix))
        .arg("-c")
        .arg(conf);
    if let Some(g) = &args.globals {
        cmd.arg("-g").arg(g);
    }
    // Without the master's -e, nginx -T would open the compiled-in error log, which may not be
    // writable for us even though the running nginx never uses it.
    if let Some(e) = &args.error_log {
        cmd.arg("-e").arg(e);
    }
    match run(&mut cmd, COMMAND_TIMEOUT) {
        Ok(out) if out.status.success() => Dump::NginxT {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        },
        Ok(out) => Dump::Failed {
            status: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        },
        Err(e) => Dump::NotRun {
            why: format!("run {} -T: {e}", bin.display()),
        },
    }
}

/// nginx appends the conf file to the prefix as given; a prefix without `/` would glue.
fn prefix_arg(prefix: &str) -> String {
    if prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}

fn absolute(p: &str, prefix: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        Path::new(prefix).join(p).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_titles() {
        let a = parse_master_title(
            "nginx: master process /usr/sbin/nginx -p /srv/x/ -c /srv/x/conf/nginx.conf -g daemon on; master_process on;",
        )
        .expect("a master");
        assert_eq!(a.program, "/usr/sbin/nginx");
        assert_eq!(a.prefix.as_deref(), Some("/srv/x/"));
        assert_eq!(a.conf.as_deref(), Some("/srv/x/conf/nginx.conf"));
        assert_eq!(a.globals.as_deref(), Some("daemon on; master_process on;"));
        let b = parse_master_title("nginx: master process nginx").expect("bare");
        assert_eq!((b.program.as_str(), b.conf), ("nginx", None));
        assert!(parse_master_title("nginx: worker process").is_none());
        assert_eq!(
            cmdline_title(b"nginx: master process /usr/sbin/nginx -c /e/n.conf\0\0"),
            "nginx: master process /usr/sbin/nginx -c /e/n.conf"
        );
        assert_eq!(
            cmdline_title(b"/usr/sbin/nginx\0-c\0/e/n.conf\0"),
            "/usr/sbin/nginx -c /e/n.conf"
        );
    }

    #[test]
    fn nginx_v_output() {
        let b = parse_nginx_v(
            "nginx version: nginx/1.22.1\nbuilt with OpenSSL 3.0.11\nTLS SNI support enabled\nconfigure arguments: --with-cc-opt='-g -O2 -fPIC' --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --error-log-path=stderr --pid-path=/run/nginx.pid --with-debug --with-http_ssl_module --with-stream=dynamic --add-dynamic-module=/build/njs",
        );
        assert_eq!(b.version.as_deref(), Some("1.22.1"));
        assert_eq!(b.prefix.as_deref(), Some("/usr/share/nginx"));
        assert_eq!(b.conf_path.as_deref(), Some("/etc/nginx/nginx.conf"));
        assert_eq!(b.error_log_path.as_deref(), Some("stderr"));
        assert_eq!(b.pid_path.as_deref(), Some("/run/nginx.pid"));
        assert_eq!(
            b.modules,
            ["http_ssl_module", "stream=dynamic", "/build/njs"]
        );
        assert_eq!(b.effective_conf("/x"), "/etc/nginx/nginx.conf");
        let bare = parse_nginx_v("nginx version: nginx/1.25.0\n");
        assert_eq!(bare.effective_prefix(), "/usr/local/nginx");
        assert_eq!(
            bare.effective_conf("/usr/local/nginx"),
            "/usr/local/nginx/conf/nginx.conf"
        );
    }
}
