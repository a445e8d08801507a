//! A real PHP-FPM master with pools of the test's choosing, in its own prefix, stopped by PID.
//!
//! Started as `php-fpm8.2 -n -y CONF -F -p PREFIX`: no php.ini, its own config, in the
//! foreground (so it is our child), with pid file and error log in the prefix.

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

/// A running PHP-FPM master and its pools.
pub struct PhpFpm {
    child: Option<Child>,
    pub prefix: PathBuf,
}

impl PhpFpm {
    /// Writes the config, starts the master and waits until every pool listens.
    pub fn start(prefix: &Path, pools: &[Pool]) -> PhpFpm {
        let bin = require_program(PHP_FPM, "apt-get install php8.2-fpm");
        let root = crate::is_root();
        let mut conf = format!(
            "[global]\npid = {p}/php-fpm.pid\nerror_log = {p}/php-fpm.log\ndaemonize = no\n",
            p = prefix.display()
        );
        for pool in pools {
            conf.push_str(&format!(
                "[{}]\nlisten = {}\npm = static\npm.max_children = 1\n",
                pool.name, pool.listen
            ));
            if root {
                // A root master must drop its children's privileges; the socket stays root's.
                conf.push_str("user = nobody\nlisten.owner = root\nlisten.group = root\n");
            }
            if let Some(m) = &pool.mode {
                conf.push_str(&format!("listen.mode = {m}\n"));
            }
        }
        let conf_path = prefix.join("php-fpm.conf");
        std::fs::write(&conf_path, conf).expect("write php-fpm.conf");
        let child = Command::new(bin)
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
            pools.iter().all(|p| {
                if p.listen.starts_with('/') {
                    Path::new(&p.listen).exists()
                } else {
                    std::net::TcpStream::connect(&p.listen).is_ok()
                }
            })
        });
        if !up {
            let log = std::fs::read_to_string(prefix.join("php-fpm.log")).unwrap_or_default();
            fpm.stop();
            panic!("php-fpm did not start its pools within 10 s:\n{log}");
        }
        fpm
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGQUIT (graceful) to our master by PID, then SIGKILL if it lingers.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-QUIT", &pid]).status();
        let gone = wait_until(Duration::from_secs(5), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !gone {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        self.stop();
    }
}
