//! PHP-FPM: `php-fpm.conf` and its pool files, and the lines of the FPM error log that explain
//! 502/504s (`causes.md`: `pool-saturated`, `backend-crash`, `socket-permission`).
//!
//! The configuration is PHP's ini dialect as FPM reads it (`sapi/fpm/fpm/fpm_conf.c` through
//! `zend_parse_ini_file`, `INI_SCANNER_NORMAL`): `[section]` headers (`[global]`, then one per
//! pool), `key = value`, `;` comments, double-quoted values (`\"` escapes), single-quoted raw
//! values, `include=GLOB` (relative to the including file's directory here; FPM uses its prefix),
//! and `$pool` replaced by the pool's name in a pool's values. Values are kept as written
//! (`yes`/`on` are not normalised). Nothing here panics on input: a line that does not parse is
//! counted in [`Ini::bad_lines`].
//!
//! ```
//! use medic_parse::fpm::parse_ini;
//! let ini = parse_ini("[www]\nlisten = /run/php/$pool.sock ; the socket\npm.max_children = 5\n");
//! let pools = ini.pools();
//! assert_eq!(pools[0].listen(), Some("/run/php/www.sock".to_string()));
//! assert_eq!(pools[0].max_children(), Some(5));
//! ```

use std::path::{Path, PathBuf};

use crate::config::fs::FileSystem;

/// `key = value` on a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: u32,
}

/// A `[name]` section and its entries. Entries before the first header are in a section named
/// `""`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: u32,
    pub entries: Vec<Entry>,
}

/// One parsed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ini {
    pub sections: Vec<Section>,
    /// Lines that are neither a comment, a header nor `key = value`.
    pub bad_lines: Vec<u32>,
}

/// A pool: its section, with `$pool` substituted in its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    /// The file it was read from (`None` for text parsed directly).
    pub file: Option<PathBuf>,
    pub line: u32,
    pub entries: Vec<Entry>,
}

impl Pool {
    /// The last value of `key` (FPM keeps the last one).
    pub fn get(&self, key: &str) -> Option<String> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| e.value.clone())
    }

    fn num(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.trim().parse().ok())
    }

    /// `listen`: a socket path or `[addr:]port`.
    pub fn listen(&self) -> Option<String> {
        self.get("listen")
    }
    pub fn listen_owner(&self) -> Option<String> {
        self.get("listen.owner")
    }
    pub fn listen_group(&self) -> Option<String> {
        self.get("listen.group")
    }
    /// `listen.mode` (FPM's default is 0660).
    pub fn listen_mode(&self) -> Option<String> {
        self.get("listen.mode")
    }
    pub fn listen_acl_users(&self) -> Option<String> {
        self.get("listen.acl_users")
    }
    pub fn listen_acl_groups(&self) -> Option<String> {
        self.get("listen.acl_groups")
    }
    /// `listen.backlog` (-1: the system maximum; FPM's default is 511).
    pub fn listen_backlog(&self) -> Option<i64> {
        self.get("listen.backlog")
            .and_then(|v| v.trim().parse().ok())
    }
    pub fn user(&self) -> Option<String> {
        self.get("user")
    }
    pub fn group(&self) -> Option<String> {
        self.get("group")
    }
    /// `pm`: `static`, `dynamic` or `ondemand`.
    pub fn pm(&self) -> Option<String> {
        self.get("pm")
    }
    pub fn max_children(&self) -> Option<u64> {
        self.num("pm.max_children")
    }
    pub fn status_path(&self) -> Option<String> {
        self.get("pm.status_path")
    }
    pub fn ping_path(&self) -> Option<String> {
        self.get("ping.path")
    }
    /// `request_terminate_timeout` as written (`30`, `30s`, `1m`; 0 = off).
    pub fn request_terminate_timeout(&self) -> Option<String> {
        self.get("request_terminate_timeout")
    }
    pub fn slowlog(&self) -> Option<String> {
        self.get("slowlog")
    }
    /// The pool's PHP `error_log` (`php_admin_value[error_log]` or `php_value[error_log]`).
    pub fn php_error_log(&self) -> Option<String> {
        self.get("php_admin_value[error_log]")
            .or_else(|| self.get("php_value[error_log]"))
    }
}

/// Parses one file's text. Never panics.
pub fn parse_ini(text: &str) -> Ini {
    let mut ini = Ini::default();
    for (i, raw) in text.lines().enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let t = raw.trim();
        if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
            continue;
        }
        if let Some(rest) = t.strip_prefix('[') {
            match rest.find(']') {
                Some(end) => ini.sections.push(Section {
                    name: rest[..end].trim().to_string(),
                    line,
                    entries: Vec::new(),
                }),
                None => ini.bad_lines.push(line),
            }
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            ini.bad_lines.push(line);
            continue;
        };
        let key = k.trim();
        if key.is_empty() {
            ini.bad_lines.push(line);
            continue;
        }
        let entry = Entry {
            key: key.to_string(),
            value: value(v),
            line,
        };
        if ini.sections.is_empty() {
            ini.sections.push(Section {
                name: String::new(),
                line,
                entries: Vec::new(),
            });
        }
        if let Some(s) = ini.sections.last_mut() {
            s.entries.push(entry);
        }
    }
    ini
}

/// The value after `=`: quoted pieces unquoted, an unquoted `;` starts a comment.
fn value(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.trim().chars().peekable();
    let mut unquoted = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push_str(unquoted.trim());
                unquoted.clear();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' if matches!(chars.peek(), Some('"' | '\\')) => {
                            if let Some(n) = chars.next() {
                                out.push(n);
                            }
                        }
                        '"' => break,
                        c => out.push(c),
                    }
                }
            }
            '\'' => {
                out.push_str(unquoted.trim());
                unquoted.clear();
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            ';' => break,
            c => unquoted.push(c),
        }
    }
    out.push_str(unquoted.trim());
    out
}

impl Ini {
    /// Entries of the `[global]` section (and of any entries before the first header).
    pub fn global(&self) -> impl Iterator<Item = &Entry> {
        self.sections
            .iter()
            .filter(|s| s.name.is_empty() || s.name == "global")
            .flat_map(|s| s.entries.iter())
    }

    /// The pools of this file, in order; a pool named twice is merged (FPM does the same).
    pub fn pools(&self) -> Vec<Pool> {
        let mut pools: Vec<Pool> = Vec::new();
        for s in self
            .sections
            .iter()
            .filter(|s| !s.name.is_empty() && s.name != "global")
        {
            let entries = s.entries.iter().map(|e| Entry {
                key: e.key.clone(),
                value: e.value.replace("$pool", &s.name),
                line: e.line,
            });
            match pools.iter_mut().find(|p| p.name == s.name) {
                Some(p) => p.entries.extend(entries),
                None => pools.push(Pool {
                    name: s.name.clone(),
                    file: None,
                    line: s.line,
                    entries: entries.collect(),
                }),
            }
        }
        pools
    }
}

/// Errors reading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum FpmError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// php-fpm.conf with its includes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FpmConfig {
    pub file: PathBuf,
    /// `[global]` entries (of the main file and of includes).
    pub global: Vec<Entry>,
    pub pools: Vec<Pool>,
    /// Files read, main first.
    pub files: Vec<PathBuf>,
    /// Includes or files that could not be read: `(pattern or path, why)`.
    pub problems: Vec<(String, String)>,
}

impl FpmConfig {
    /// The last `[global]` value of `key`.
    pub fn global_value(&self, key: &str) -> Option<&str> {
        self.global
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }

    /// FPM's `error_log` (default `log/php-fpm.log` under the prefix; `syslog` possible).
    pub fn error_log(&self) -> Option<&str> {
        self.global_value("error_log")
    }
}

/// Includes are followed this deep (FPM itself has no limit; a loop must end).
const MAX_DEPTH: usize = 8;

/// Reads `path` and the files its `include=` globs name, from the disk.
pub fn load(path: &Path) -> Result<FpmConfig, FpmError> {
    load_with(&crate::config::fs::DiskFs::default(), path)
}

/// Reads `path` and its includes through `fs` (the real disk, or a recorded host's files).
pub fn load_with(fs: &dyn FileSystem, path: &Path) -> Result<FpmConfig, FpmError> {
    let text = fs
        .read(&path.to_string_lossy())
        .map_err(|source| FpmError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&text);
    let mut cfg = FpmConfig {
        file: path.to_path_buf(),
        ..FpmConfig::default()
    };
    add_file(fs, &mut cfg, path, &text, 0);
    Ok(cfg)
}

fn add_file(fs: &dyn FileSystem, cfg: &mut FpmConfig, path: &Path, text: &str, depth: usize) {
    cfg.files.push(path.to_path_buf());
    let ini = parse_ini(text);
    // php-fpm -t rejects such a file: FPM will not start (or restart) with it.
    for line in &ini.bad_lines {
        cfg.problems.push((
            format!("{}:{line}", path.display()),
            "not `key = value` nor `[section]`: a syntax error, PHP-FPM will not start with it"
                .to_string(),
        ));
    }
    let includes: Vec<String> = ini
        .sections
        .iter()
        .flat_map(|s| s.entries.iter())
        .filter(|e| e.key == "include")
        .map(|e| e.value.clone())
        .collect();
    cfg.global
        .extend(ini.global().filter(|e| e.key != "include").cloned());
    for mut p in ini.pools() {
        p.file = Some(path.to_path_buf());
        match cfg.pools.iter_mut().find(|q| q.name == p.name) {
            Some(q) => q.entries.extend(p.entries),
            None => cfg.pools.push(p),
        }
    }
    for pattern in includes {
        if depth >= MAX_DEPTH {
            cfg.problems
                .push((pattern, "includes nested too deep".to_string()));
            continue;
        }
        let full = if Path::new(&pattern).is_absolute() {
            PathBuf::from(&pattern)
        } else {
            path.parent().unwrap_or(Path::new(".")).join(&pattern)
        };
        let full = full.to_string_lossy();
        let mut paths: Vec<String> = if crate::config::fs::has_magic(&full) {
            crate::config::fs::glob(fs, &full)
        } else {
            vec![full.into_owned()]
        };
        paths.sort();
        for p in paths {
            match fs.read(&p) {
                Ok(t) => add_file(
                    fs,
                    cfg,
                    Path::new(&p),
                    &String::from_utf8_lossy(&t),
                    depth + 1,
                ),
                Err(e) => cfg.problems.push((p, e.to_string())),
            }
        }
    }
}

/// What an FPM error-log line says, for the lines that explain 502/504s
/// (`sapi/fpm/fpm/fpm_children.c`, `fpm_process_ctl.c`, `fpm_request.c`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FpmEventKind {
    /// `server reached pm.max_children setting (N), consider raising it` (`max_children` for
    /// `pm = ondemand`).
    MaxChildren { limit: Option<u64> },
    /// `child N, script 'S' (request: "R") execution timed out (T sec), terminating`
    /// (`request_terminate_timeout`).
    TimedOut {
        child: Option<u32>,
        script: Option<String>,
        seconds: Option<String>,
    },
    /// `child N exited on signal S (SIGNAME[ - core dumped]) after T seconds from start`.
    Signal {
        child: Option<u32>,
        signal: Option<u32>,
        name: Option<String>,
    },
    /// `child N exited with code C after T seconds from start`.
    ExitCode {
        child: Option<u32>,
        code: Option<i32>,
    },
}

/// One interesting line of the FPM error log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FpmEvent<'a> {
    /// As written: `21-Nov-2026 21:50:12` (microseconds when FPM logs them).
    pub time: &'a str,
    /// `WARNING`, `NOTICE`, `ERROR`, ...
    pub level: &'a str,
    pub pool: Option<&'a str>,
    pub kind: FpmEventKind,
}

/// Parses an FPM log line: `[21-Nov-2026 21:50:12] WARNING: [pool www] server reached ...`.
/// `None` for other lines.
pub fn parse_log_line(line: &str) -> Option<FpmEvent<'_>> {
    let rest = line.strip_prefix('[')?;
    let (time, rest) = rest.split_once("] ")?;
    let (level, msg) = rest.split_once(": ")?;
    let (pool, msg) = match msg.strip_prefix("[pool ") {
        Some(r) => {
            let (p, m) = r.split_once("] ")?;
            (Some(p), m)
        }
        None => (None, msg),
    };
    let kind = if let Some(i) = msg.find("max_children setting (") {
        let tail = &msg[i + "max_children setting (".len()..];
        FpmEventKind::MaxChildren {
            limit: tail.split(')').next().and_then(|n| n.parse().ok()),
        }
    } else if msg.contains("execution timed out (") {
        let script = msg
            .split_once("script '")
            .and_then(|(_, r)| r.split_once('\''))
            .map(|(s, _)| s.to_string());
        let seconds = msg
            .rsplit_once("execution timed out (")
            .and_then(|(_, r)| r.split_once(" sec)"))
            .map(|(s, _)| s.to_string());
        FpmEventKind::TimedOut {
            child: child_pid(msg),
            script,
            seconds,
        }
    } else if let Some((_, r)) = msg.split_once(" exited on signal ") {
        let (num, r) = r.split_once(' ').unwrap_or((r, ""));
        let name = r
            .strip_prefix('(')
            .and_then(|r| r.split([')', ' ']).next())
            .map(str::to_string);
        FpmEventKind::Signal {
            child: child_pid(msg),
            signal: num.parse().ok(),
            name,
        }
    } else if let Some((_, r)) = msg.split_once(" exited with code ") {
        FpmEventKind::ExitCode {
            child: child_pid(msg),
            code: r.split(' ').next().and_then(|c| c.parse().ok()),
        }
    } else {
        return None;
    };
    Some(FpmEvent {
        time,
        level,
        pool,
        kind,
    })
}

fn child_pid(msg: &str) -> Option<u32> {
    let r = msg.split_once("child ")?.1;
    let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
    r[..end].parse().ok()
}

/// `21-Nov-2026 21:50:12[.uuuuuu]` as ISO 8601 local time, `2026-11-21T21:50:12`.
pub fn iso_time(time: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (date, clock) = time.split_once(' ')?;
    let mut d = date.split('-');
    let (day, mon, year) = (d.next()?, d.next()?, d.next()?);
    let m = MONTHS.iter().position(|x| *x == mon)? + 1;
    let day: u8 = day.parse().ok()?;
    let year: u16 = year.parse().ok()?;
    let clock = clock.split('.').next()?;
    let ok = clock.len() == 8
        && clock.bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    ok.then(|| format!("{year:04}-{m:02}-{day:02}T{clock}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_comments_and_pool() {
        let ini = parse_ini(
            "x = 1\n[global]\nerror_log = \"/var/log/a;b.log\" ; comment\n[app]\nslowlog = '/log/$pool.slow'\nbroken\n",
        );
        assert_eq!(ini.bad_lines, vec![6]);
        assert_eq!(ini.global().count(), 2);
        assert_eq!(
            ini.global().nth(1).map(|e| e.value.as_str()),
            Some("/var/log/a;b.log")
        );
        assert_eq!(ini.pools()[0].slowlog().as_deref(), Some("/log/app.slow"));
    }

    #[test]
    fn log_lines() {
        let e = parse_log_line("[21-Nov-2026 21:50:12] WARNING: [pool www] server reached pm.max_children setting (1), consider raising it").unwrap();
        assert_eq!(e.pool, Some("www"));
        assert_eq!(e.kind, FpmEventKind::MaxChildren { limit: Some(1) });
        assert_eq!(iso_time(e.time).as_deref(), Some("2026-11-21T21:50:12"));
        let e = parse_log_line("[21-Nov-2026 21:50:12] WARNING: [pool www] child 42, script '/srv/slow.php' (request: \"GET /slow.php\") execution timed out (2.012 sec), terminating").unwrap();
        assert_eq!(
            e.kind,
            FpmEventKind::TimedOut {
                child: Some(42),
                script: Some("/srv/slow.php".into()),
                seconds: Some("2.012".into())
            }
        );
        let e = parse_log_line("[21-Nov-2026 21:50:12] WARNING: [pool www] child 42 exited on signal 9 (SIGKILL) after 2.1 seconds from start").unwrap();
        assert_eq!(
            e.kind,
            FpmEventKind::Signal {
                child: Some(42),
                signal: Some(9),
                name: Some("SIGKILL".into())
            }
        );
        let e = parse_log_line("[21-Nov-2026 21:50:12] NOTICE: [pool www] child 7 exited with code 255 after 0.5 seconds from start").unwrap();
        assert_eq!(
            e.kind,
            FpmEventKind::ExitCode {
                child: Some(7),
                code: Some(255)
            }
        );
        assert!(
            parse_log_line("[21-Nov-2026 21:50:12] NOTICE: ready to handle connections").is_none()
        );
    }
}
