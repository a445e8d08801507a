//! A real PHP-FPM master with pools of the test's choosing, in its own prefix, stopped by PID.
//!
//! Started as `php-fpm8.2 -n -y CONF -F -p PREFIX`: no php.ini, its own config, in the
//! foreground (so it is our child), with pid file and error log in the prefix.
//!
//! [`PhpFpm::start`] gives every pool `pm = static` with one child; [`PhpFpm::start_with`] takes
//! the process manager, `pm.max_children` and extra pool lines per pool ([`PoolOptions`]).
//! [`docroot`] writes the PHP scripts a scenario serves.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{require_program, wait_until};

pub const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";

/// One `[pool]` section.
pub struct Pool {
    pub name: String,
    /// `listen =`: a path or `127.0.0.1:PORT`.
    pub listen: String,
    /// `listen.mode` (unix sockets only), e.g. `0600`.
    pub mode: Option<String>,
}

/// The process manager of a pool (`pm =` and its spare-server settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pm {
    /// `pm = static`: `pm.max_children` children from the start.
    Static,
    /// `pm = dynamic` with `pm.start_servers`, `pm.min_spare_servers`, `pm.max_spare_servers`.
    /// FPM's maintenance (once a second) logs `server reached pm.max_children setting (N)` when
    /// it wants a spare child and may not fork one; `static` never logs it.
    Dynamic {
        start: u32,
        min_spare: u32,
        max_spare: u32,
    },
    /// `pm = ondemand`: children forked per connection, up to `pm.max_children`.
    Ondemand,
}

/// How a pool runs, beyond where it listens.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub pm: Pm,
    /// `pm.max_children`.
    pub max_children: u32,
    /// Pool lines written verbatim, e.g. `php_admin_value[display_errors] = Off`,
    /// `request_terminate_timeout = 2s`.
    pub extra: Vec<String>,
}

impl Default for PoolOptions {
    /// `pm = static`, one child, nothing else: what [`PhpFpm::start`] gives every pool.
    fn default() -> Self {
        PoolOptions {
            pm: Pm::Static,
            max_children: 1,
            extra: Vec::new(),
        }
    }
}

/// A running PHP-FPM master and its pools.
pub struct PhpFpm {
    child: Option<Child>,
    pub prefix: PathBuf,
}

impl PhpFpm {
    /// Writes the config, starts the master and waits until every pool listens.
    /// Every pool is `pm = static` with one child.
    pub fn start(prefix: &Path, pools: &[Pool]) -> PhpFpm {
        let with: Vec<(&Pool, PoolOptions)> =
            pools.iter().map(|p| (p, PoolOptions::default())).collect();
        Self::start_pools(prefix, &with, &[])
    }

    /// As [`PhpFpm::start`], with each pool's process manager and extra lines.
    pub fn start_with(prefix: &Path, pools: &[(Pool, PoolOptions)]) -> PhpFpm {
        let with: Vec<(&Pool, PoolOptions)> = pools.iter().map(|(p, o)| (p, o.clone())).collect();
        Self::start_pools(prefix, &with, &[])
    }

    /// As [`PhpFpm::start`], with the master run by `wrapper` (e.g. `setpriv --pdeathsig TERM
    /// --`), which must exec it (same PID).
    pub fn start_wrapped(prefix: &Path, pools: &[Pool], wrapper: &[&OsStr]) -> PhpFpm {
        let with: Vec<(&Pool, PoolOptions)> =
            pools.iter().map(|p| (p, PoolOptions::default())).collect();
        Self::start_pools(prefix, &with, wrapper)
    }

    fn start_pools(prefix: &Path, pools: &[(&Pool, PoolOptions)], wrapper: &[&OsStr]) -> PhpFpm {
        let bin = require_program(PHP_FPM, "apt-get install php8.2-fpm");
        let root = crate::is_root();
        let mut conf = format!(
            "[global]\npid = {p}/php-fpm.pid\nerror_log = {p}/php-fpm.log\ndaemonize = no\n",
            p = prefix.display()
        );
        for (pool, opts) in pools {
            conf.push_str(&format!(
                "[{}]\nlisten = {}\npm.max_children = {}\n",
                pool.name, pool.listen, opts.max_children
            ));
            match &opts.pm {
                Pm::Static => conf.push_str("pm = static\n"),
                Pm::Dynamic {
                    start,
                    min_spare,
                    max_spare,
                } => conf.push_str(&format!(
                    "pm = dynamic\npm.start_servers = {start}\npm.min_spare_servers = {min_spare}\n\
                     pm.max_spare_servers = {max_spare}\n"
                )),
                Pm::Ondemand => conf.push_str("pm = ondemand\n"),
            }
            if root {
                // A root master must drop its children's privileges; the socket stays root's.
                conf.push_str("user = nobody\nlisten.owner = root\nlisten.group = root\n");
            }
            if let Some(m) = &pool.mode {
                conf.push_str(&format!("listen.mode = {m}\n"));
            }
            for line in &opts.extra {
                conf.push_str(line);
                conf.push('\n');
            }
        }
        let conf_path = prefix.join("php-fpm.conf");
        fs::write(&conf_path, conf).expect("write php-fpm.conf");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let child = cmd
            .arg("-n")
            .arg("-y")
            .arg(&conf_path)
            .arg("-F")
            .arg("-p")
            .arg(prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn php-fpm");
        let mut fpm = PhpFpm {
            child: Some(child),
            prefix: prefix.to_path_buf(),
        };
        let up = wait_until(Duration::from_secs(10), || {
            pools.iter().all(|(p, _)| {
                if p.listen.starts_with('/') {
                    Path::new(&p.listen).exists()
                } else {
                    std::net::TcpStream::connect(&p.listen).is_ok()
                }
            })
        });
        if !up {
            let log = fs::read_to_string(prefix.join("php-fpm.log")).unwrap_or_default();
            fpm.stop();
            panic!("php-fpm did not start its pools within 10 s:\n{log}");
        }
        fpm
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The master's error log (`error_log =` of the config).
    pub fn log_path(&self) -> PathBuf {
        self.prefix.join("php-fpm.log")
    }

    /// What the master logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Waits (up to `timeout`) until the master's log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    /// The PIDs of our master's children (the pool workers), from `/proc/*/stat`.
    pub fn children(&self) -> Vec<u32> {
        match self.pid() {
            Some(pid) => children_of(pid),
            None => Vec::new(),
        }
    }

    /// Stops the master: SIGQUIT (graceful), then SIGTERM, then SIGKILL to its children and to
    /// itself, each by PID, if it lingers.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        for (sig, wait) in [("-QUIT", 5), ("-TERM", 3)] {
            let _ = Command::new("kill")
                .args([sig, &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if wait_until(Duration::from_secs(wait), || {
                matches!(child.try_wait(), Ok(Some(_)))
            }) {
                return;
            }
        }
        // Children outlive a killed master: kill them first, by the PIDs whose parent it is.
        for worker in children_of(pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &worker.to_string()])
                .status();
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Fast shutdown: SIGTERM to our master (it terminates its children at once, busy or not),
    /// then as [`PhpFpm::stop`] if it lingers.
    pub fn stop_fast(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if wait_until(Duration::from_secs(3), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            self.child = None;
            return;
        }
        self.stop();
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PIDs whose parent is `parent`, from `/proc/*/stat` (field 4, after the `(comm)` field, which
/// may itself hold spaces and parentheses).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(e.path().join("stat")).ok()?;
        let after_comm = &stat[stat.rfind(')')? + 1..];
        let ppid: u32 = after_comm.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
    .collect()
}

/// Creates the directory `dir` (0755) with `files` (name, PHP source; 0644), readable by pool
/// workers that run as `nobody`, and returns it.
pub fn docroot(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod 0755 the docroot");
    for (name, text) in files {
        let p = dir.join(name);
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod 0644 a script");
    }
    dir.to_path_buf()
}
