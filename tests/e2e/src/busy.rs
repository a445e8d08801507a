//! A busy host: programs that have nothing to do with the scenario's nginx, running beside it.
//!
//! Real servers run other things. A diagnosis may blame only what the evidence ties to the
//! failing target; a listener or a PHP-FPM pool that merely exists on the same host is no such
//! evidence. [`BusyHost::start`] puts, for the life of a test:
//! - [`PYTHON_SERVERS`] `python3 -m http.server PORT --bind 127.0.0.1` (real listeners of a
//!   common program, on free ports nginx never names);
//! - a second PHP-FPM master (`php-fpm8.2 -F -y CONF` in its own prefix, see
//!   [`crate::php_fpm`]) with one pool on a unix socket in that prefix, a path nginx never names.
//!
//! Unrelated OOM kills are not staged: killing a process by the kernel's OOM killer needs a
//! memory cgroup the test owns and would put the whole host under pressure.
//!
//! Every process is our child and is stopped by its PID on drop.

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::php_fpm::{PhpFpm, Pool};
use crate::{free_port, require_program, wait_until};

/// How many unrelated `python3 -m http.server` listeners a [`BusyHost`] runs.
pub const PYTHON_SERVERS: usize = 3;

/// The system's Python (a packaged program, as on a real server), not a user's shim.
pub const PYTHON: &str = "/usr/bin/python3";

/// Unrelated programs running beside the scenario, stopped on drop.
pub struct BusyHost {
    dir: tempfile::TempDir,
    http: Vec<(u16, Child)>,
    fpm: Option<PhpFpm>,
}

impl BusyHost {
    /// Starts the unrelated listeners and waits until each accepts (or its socket exists).
    pub fn start() -> BusyHost {
        let python = require_program(PYTHON, "apt-get install python3");
        let dir = tempfile::Builder::new()
            .prefix("medic-busy-")
            .tempdir()
            .expect("create the busy host's directory");
        // PHP-FPM workers run as `nobody` when we are root: they must traverse the directory.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the busy host's directory");
        let www = dir.path().join("www");
        fs::create_dir(&www).expect("create the http.server directory");
        fs::write(www.join("index.html"), "an unrelated site\n").expect("write index.html");

        let mut host = BusyHost {
            dir,
            http: Vec::new(),
            fpm: None,
        };
        for _ in 0..PYTHON_SERVERS {
            let port = free_port();
            let child = Command::new(&python)
                .args([
                    "-m",
                    "http.server",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                ])
                .current_dir(&www)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {PYTHON} -m http.server {port}: {e}"));
            host.http.push((port, child));
        }
        for (port, child) in &mut host.http {
            let mut exited = None;
            let up = wait_until(Duration::from_secs(10), || {
                if let Ok(Some(st)) = child.try_wait() {
                    exited = Some(st);
                    return true;
                }
                TcpStream::connect(("127.0.0.1", *port)).is_ok()
            });
            assert!(
                up && exited.is_none(),
                "python3 -m http.server {port} did not listen within 10 s (exit: {exited:?})"
            );
        }

        let fpm_prefix = host.dir.path().join("fpm");
        fs::create_dir(&fpm_prefix).expect("create the PHP-FPM prefix");
        fs::set_permissions(&fpm_prefix, fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the PHP-FPM prefix");
        let sock = fpm_prefix.join("unrelated.sock");
        host.fpm = Some(PhpFpm::start(
            &fpm_prefix,
            &[Pool {
                name: "unrelated".into(),
                listen: sock.display().to_string(),
                mode: Some("0666".into()),
            }],
        ));
        eprintln!(
            "busy host: python3 http.server on {:?} (pids {:?}), php-fpm master {:?} on {}",
            host.http_ports(),
            host.http.iter().map(|(_, c)| c.id()).collect::<Vec<_>>(),
            host.fpm.as_ref().and_then(PhpFpm::pid),
            sock.display()
        );
        host
    }

    /// The ports of the `python3 -m http.server` listeners (all on 127.0.0.1).
    pub fn http_ports(&self) -> Vec<u16> {
        self.http.iter().map(|(p, _)| *p).collect()
    }

    /// The PIDs of every process the busy host runs: the python servers, the PHP-FPM master and
    /// its workers.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.http.iter().map(|(_, c)| c.id()).collect();
        if let Some(fpm) = &self.fpm {
            pids.extend(fpm.pid());
            pids.extend(fpm.children());
        }
        pids
    }

    /// The unix socket the unrelated PHP-FPM pool listens on.
    pub fn fpm_socket(&self) -> PathBuf {
        self.fpm_prefix().join("unrelated.sock")
    }

    /// The unrelated PHP-FPM master's prefix (its config, pid file and log).
    pub fn fpm_prefix(&self) -> PathBuf {
        self.dir.path().join("fpm")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for BusyHost {
    fn drop(&mut self) {
        // Our own children, by PID (Child::kill is SIGKILL to that PID), then reaped.
        for (_, child) in &mut self.http {
            let _ = child.kill();
            let _ = child.wait();
        }
        // PhpFpm stops its master (and, if it lingers, the master's children) by PID.
        self.fpm.take();
    }
}
