//! A real PHP-FPM (`php-fpm8.2 -n -y CONF -F`, its own config, pid and log in a temporary
//! directory) behind a real nginx: one child (`pm.max_children = 1`), a slow script hit twice,
//! `request_terminate_timeout` shorter than the script. FPM logs `server reached
//! pm.max_children setting (1)`, `execution timed out` and the child's signal; the supervisor
//! gatherer finds the master in /proc, parses its config and reads those real lines.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use medic_e2e::{free_port, http, is_root, nginx, wait_until, Nginx, Prefix};
use nginx_medic::probe::supervisor::{gather, GatherInput, GatherOptions};

const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";

/// Our FPM master, stopped by PID (SIGQUIT, then SIGKILL) on drop.
struct Fpm(Child);

impl Drop for Fpm {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-QUIT", &pid]).status();
        if !wait_until(Duration::from_secs(5), || {
            matches!(self.0.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start_fpm(dir: &Path, port: u16) -> (Fpm, PathBuf, PathBuf) {
    assert!(
        Path::new(PHP_FPM).is_file(),
        "{PHP_FPM} not found: apt-get install php8.2-fpm (scripts/test does)"
    );
    let conf = dir.join("php-fpm.conf");
    let log = dir.join("php-fpm.log");
    let mut text = format!(
        "; the test's own FPM\n[global]\npid = {d}/php-fpm.pid\nerror_log = {d}/php-fpm.log\n\
         daemonize = no\n\n[slow]\nlisten = 127.0.0.1:{port}\npm = dynamic\n\
         pm.max_children = 1\npm.start_servers = 1\npm.min_spare_servers = 1\n\
         pm.max_spare_servers = 1\nrequest_terminate_timeout = 2s\n\
         slowlog = {d}/$pool.slow.log\n",
        d = dir.display()
    );
    if is_root() {
        text.push_str("user = nobody\ngroup = nogroup\n");
    }
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new(PHP_FPM);
    cmd.arg("-n").arg("-y").arg(&conf).arg("-F");
    if is_root() {
        cmd.arg("-R");
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn php-fpm");
    let fpm = Fpm(child);
    assert!(
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "php-fpm did not listen:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    (fpm, conf, log)
}

#[test]
fn max_children_and_timeouts_from_a_real_fpm() {
    let dir = tempfile::tempdir().unwrap();
    // FPM's children run as nobody when we are root: they must read the script.
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("slow.php"), "<?php sleep(4); echo \"done\\n\";\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [dir.path(), www.as_path()] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let fpm_port = free_port();
    let (fpm, conf, log) = start_fpm(dir.path(), fpm_port);

    let prefix = Prefix::new();
    let port = free_port();
    let body = format!(
        "    server {{\n        listen 127.0.0.1:{port};\n        root {www};\n\
         \x20       location ~ \\.php$ {{\n            fastcgi_pass 127.0.0.1:{fpm_port};\n\
         \x20           fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
         \x20           fastcgi_param REQUEST_METHOD $request_method;\n\
         \x20           fastcgi_param SCRIPT_NAME $fastcgi_script_name;\n\
         \x20           fastcgi_read_timeout 10s;\n        }}\n    }}\n",
        www = www.display()
    );
    let _nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    let hits: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || http::get(port, "/slow.php", Duration::from_secs(15))))
        .collect();
    let statuses: Vec<u16> = hits.into_iter().map(|h| h.join().unwrap()).collect();
    let wanted = [
        "max_children setting",
        "execution timed out",
        "exited on signal",
    ];
    let logged = wait_until(Duration::from_secs(5), || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        wanted.iter().all(|w| t.contains(w))
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged,
        "FPM did not log {wanted:?} (nginx answered {statuses:?}):\n{text}\n{}",
        std::fs::read_to_string(prefix.error_log()).unwrap_or_default()
    );

    let f = gather(
        &nginx_medic::host::System::default(),
        &GatherInput {
            pids: vec![fpm.0.id()],
            targets: Vec::new(),
        },
        &GatherOptions::default(),
    );
    let m = f
        .fpm
        .iter()
        .find(|m| m.pid == fpm.0.id())
        .unwrap_or_else(|| panic!("our master not found: {f:#?}"));
    assert_eq!(m.config.as_deref(), Some(conf.as_path()));
    assert_eq!(m.error_log.as_deref(), Some(log.as_path()));
    assert!(m.problems.is_empty(), "{:?}", m.problems);
    let pool = &m.pools[0];
    assert_eq!(pool.name, "slow");
    assert_eq!(
        pool.listen.as_deref(),
        Some(format!("127.0.0.1:{fpm_port}").as_str())
    );
    assert_eq!(pool.max_children, Some(1));
    assert_eq!(pool.request_terminate_timeout.as_deref(), Some("2s"));
    let slow_log = format!("{}/slow.slow.log", dir.path().display());
    assert_eq!(pool.slowlog.as_deref(), Some(slow_log.as_str()));

    let max = m
        .events
        .iter()
        .find(|e| e.kind == "max-children")
        .unwrap_or_else(|| panic!("{:#?}\n{text}", m.events));
    assert_eq!(max.value, Some(1));
    assert_eq!(max.pool.as_deref(), Some("slow"));
    assert!(
        max.time.as_deref().is_some_and(|t| t.len() == 19),
        "{max:?}"
    );
    let timed = m.events.iter().find(|e| e.kind == "timed-out").unwrap();
    assert!(
        timed.detail.as_deref().unwrap().ends_with("slow.php"),
        "{timed:?}"
    );
    let sig = m.events.iter().find(|e| e.kind == "signal").unwrap();
    assert_eq!(sig.child, timed.child);
    assert_eq!(sig.value, Some(15), "{sig:?}");
    assert_eq!(sig.detail.as_deref(), Some("SIGTERM"));
}
