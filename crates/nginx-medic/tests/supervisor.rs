//! The supervisor gatherer through the [`Host`] seam: on this host (program runs are bounded, a
//! host without systemd says so), and on staged hosts that answer as a real systemd, pm2 and
//! PHP-FPM do (their outputs as recorded on a booted Debian 12), without root.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use medic_parse::config::fs::FileSystem;
use nginx_medic::host::{Cmd, Host, Recording, Replay, RunError, System};
use nginx_medic::probe::supervisor::{gather, GatherInput, GatherOptions};

#[test]
fn run_is_bounded_and_kills_by_pid() {
    let start = Instant::now();
    let e = System::default()
        .run(&Cmd::new(&["sleep", "5"], Duration::from_millis(200)))
        .unwrap_err();
    assert!(matches!(e, RunError::TimedOut { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn run_reports_missing_and_failing_programs() {
    let h = System::default();
    let t = Duration::from_secs(5);
    assert!(matches!(
        h.run(&Cmd::new(&["nginx-medic-no-such-program"], t)),
        Err(RunError::NotFound { .. })
    ));
    assert!(matches!(
        h.run(&Cmd::new(&["false"], t)),
        Err(RunError::Failed { .. })
    ));
    assert_eq!(h.run(&Cmd::new(&["echo", "a b"], t)).unwrap(), "a b\n");
}

#[test]
fn this_host_without_systemd_is_skipped_with_the_reason() {
    let pid1 = std::fs::read_to_string("/proc/1/comm").unwrap();
    let f = gather(
        &System::default(),
        &GatherInput {
            pids: vec![std::process::id()],
            targets: vec!["127.0.0.1:1".into()],
        },
        &GatherOptions::default(),
    );
    if pid1.trim() != "systemd" {
        let s = f
            .skipped
            .iter()
            .find(|s| s.check == "systemd")
            .expect("systemd skipped");
        assert!(
            s.why.contains(&format!("PID 1 is {}", pid1.trim())),
            "{s:?}"
        );
        assert!(f.systemd.is_empty());
    }
    // Either pm2 daemons were asked, or the skip says why not; pm2 is never started.
    assert!(f.pm2.is_some() || f.skipped.iter().any(|s| s.check == "pm2"));
    assert!(f.oom.is_some() || f.skipped.iter().any(|s| s.check.contains("OOM")));
}

/// A host that answers from files and a table of program outputs.
fn staged(
    files: &[(&str, &str)],
    dirs: &[(&str, &[&str])],
    runs: &[(&str, Result<&str, RunError>)],
) -> Replay {
    let mut r = Recording {
        now: 1_790_000_000,
        root: true,
        ..Recording::default()
    };
    for (p, t) in files {
        r.files.insert(p.to_string(), Ok(t.to_string()));
    }
    for (d, names) in dirs {
        r.dirs.insert(
            d.to_string(),
            Ok(names.iter().map(|n| n.to_string()).collect()),
        );
    }
    let mut runs_map = BTreeMap::new();
    for (k, v) in runs {
        runs_map.insert(k.to_string(), v.clone().map(str::to_string));
    }
    r.runs = runs_map;
    Replay(r)
}

#[test]
fn staged_fpm_master_and_installed_pools() {
    let conf = "/etc/php/8.2/fpm/php-fpm.conf";
    let host = staged(
        &[
            ("/proc/1/comm", "init\n"),
            ("/proc/4242/cmdline", "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)\0\0"),
            (conf, "[global]\nerror_log = /var/log/php8.2-fpm.log\ninclude=/etc/php/8.2/fpm/pool.d/*.conf\n"),
            ("/etc/php/8.2/fpm/pool.d/www.conf", "[www]\nuser = www-data\nlisten = /run/php/php8.2-fpm.sock\npm = static\npm.max_children = 2\n"),
            ("/etc/php/8.1/fpm/php-fpm.conf", "[global]\n[old]\nlisten = /run/php/php8.1-fpm.sock\n"),
            ("/var/log/php8.2-fpm.log", "[21-Nov-2026 21:50:12] WARNING: [pool www] server reached pm.max_children setting (2), consider raising it\n"),
        ],
        &[
            ("/proc", &["1", "4242", "self"]),
            ("/etc/php", &["8.1", "8.2"]),
            ("/etc/php/8.1", &["fpm"]),
            ("/etc/php/8.2", &["fpm"]),
            ("/etc/php/8.1/fpm", &["php-fpm.conf"]),
            ("/etc/php/8.2/fpm", &["php-fpm.conf", "pool.d"]),
            ("/etc/php/8.2/fpm/pool.d", &["www.conf"]),
            ("/etc", &["php"]),
        ],
        &[],
    );
    assert!(host.is_dir("/etc/php/8.2/fpm/pool.d"));
    let f = gather(&host, &GatherInput::default(), &GatherOptions::default());
    assert!(f.skipped.iter().any(|s| s.why.contains("PID 1 is init")));
    assert_eq!(f.fpm.len(), 1, "{f:#?}");
    assert_eq!(
        f.fpm[0].pools[0].listen.as_deref(),
        Some("/run/php/php8.2-fpm.sock")
    );
    assert_eq!(f.fpm[0].events[0].kind, "max-children");
    assert_eq!(f.fpm_installed.len(), 2, "{:#?}", f.fpm_installed);
    let old = &f.fpm_installed[0];
    assert_eq!(old.version.as_deref(), Some("8.1"));
    assert_eq!(old.unit.as_deref(), Some("php8.1-fpm.service"));
    assert!(!old.running);
    let new = &f.fpm_installed[1];
    assert!(new.running);
    assert_eq!(
        new.pools[0].listen_at.as_deref(),
        Some("/etc/php/8.2/fpm/pool.d/www.conf:3")
    );
}

/// pm2: the daemon is found in the process list and asked with its own home, as its own user;
/// without its RPC socket it is not asked at all (pm2 would start a new daemon).
#[test]
fn staged_pm2_daemon_is_asked_with_its_home_and_user() {
    let jlist = r#"[{"name":"orders-api","pid":0,"pm2_env":{"status":"errored","restart_time":3,"unstable_restarts":0,"env":{"PORT":"3000"},"pm_exec_path":"/srv/orders/app.js","pm_err_log_path":"/home/deploy/.pm2/logs/orders-api-error.log"}}]"#;
    let key = "/usr/bin/pm2 jlist [PM2_HOME=/home/deploy/.pm2] [HOME=/home/deploy] [as 1000:1000]";
    let host = staged(
        &[
            ("/proc/1/comm", "init\n"),
            ("/proc/77/cmdline", "PM2 v5.4.3: God Daemon (/home/deploy/.pm2)"),
            ("/proc/77/status", "Name:\tPM2\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n"),
            ("/home/deploy/.pm2/rpc.sock", ""),
            ("/usr/bin/pm2", ""),
            ("/home/deploy/.pm2/logs/orders-api-error.log", "Error: Cannot find module './config/database.json'\nRequire stack:\n- /srv/orders/app.js\n"),
        ],
        &[("/proc", &["1", "77"])],
        &[(key, Ok(jlist))],
    );
    let f = gather(
        &host,
        &GatherInput {
            pids: vec![],
            targets: vec!["127.0.0.1:3000".into()],
        },
        &GatherOptions::default(),
    );
    let apps = f.pm2.as_ref().unwrap_or_else(|| panic!("{:#?}", f.skipped));
    assert_eq!(apps.len(), 1);
    let a = &apps[0];
    assert_eq!(a.home.as_deref(), Some("/home/deploy/.pm2"));
    assert_eq!(a.status.as_deref(), Some("errored"));
    assert_eq!(a.mentions[0].target, "127.0.0.1:3000");
    assert_eq!(
        a.error_tail[0],
        (
            "/home/deploy/.pm2/logs/orders-api-error.log:1".to_string(),
            "Error: Cannot find module './config/database.json'".to_string()
        )
    );

    // Without the daemon's socket: skipped, never asked.
    let host = staged(
        &[
            ("/proc/1/comm", "init\n"),
            (
                "/proc/77/cmdline",
                "PM2 v5.4.3: God Daemon (/home/deploy/.pm2)",
            ),
            ("/usr/bin/pm2", ""),
        ],
        &[("/proc", &["1", "77"])],
        &[],
    );
    let f = gather(&host, &GatherInput::default(), &GatherOptions::default());
    assert!(f.pm2.unwrap().is_empty());
    assert!(
        f.skipped
            .iter()
            .any(|s| s.why.contains("rpc.sock is missing")),
        "{:#?}",
        f.skipped
    );
}

/// systemd: a dead unit is found by what its unit file's `ExecStart` names (file:line); only
/// the candidates are shown and their journals read; a `systemctl` that times out is a
/// `skipped` entry, never a hang.
#[test]
fn staged_systemd_finds_the_dead_unit_by_its_exec_start() {
    let opts = GatherOptions {
        since: "2026-12-04 21:00:00".into(),
        ..GatherOptions::default()
    };
    let show = "Id=nginx.service\nLoadState=loaded\nActiveState=active\n\nId=api.service\nLoadState=not-found\n\nId=my-backend.service\nLoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\nNRestarts=4\nExecStart={ path=/usr/bin/python3 ; argv[]=/usr/bin/python3 /srv/app.py --port 8000 ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n";
    let props = "--property=Id,LoadState,ActiveState,SubState,Result,NRestarts,MainPID,ExecMainPID,ExecMainCode,ExecMainStatus,ExecMainStartTimestamp,ExecMainExitTimestamp,ActiveEnterTimestamp,InactiveEnterTimestamp,Restart,RestartUSec,FragmentPath,ExecStart,Environment,EnvironmentFiles,WorkingDirectory,Listen,Triggers,User";
    let k_show =
        format!("systemctl show {props} --no-pager nginx.service api.service my-backend.service");
    let journal = "2026-12-04T21:40:01+0000 host python3[45]: fatal: config broken, exiting\n2026-12-04T21:40:01+0000 host systemd[1]: my-backend.service: Start request repeated too quickly.\n";
    let runs: Vec<(&str, Result<&str, RunError>)> = vec![
        ("systemctl list-units --all --type=service --plain --no-legend --no-pager", Err(RunError::TimedOut { program: "systemctl".into(), secs: 5.0 })),
        (&k_show, Ok(show)),
        ("journalctl -u my-backend.service --since=2026-12-04 21:00:00 -n 300 --no-pager -o short-iso", Ok(journal)),
    ];
    let host = staged(
        &[
            ("/proc/1/comm", "systemd\n"),
            ("/usr/bin/systemctl", ""),
            ("/usr/bin/journalctl", ""),
            ("/etc/systemd/system/my-backend.service", "[Unit]\nDescription=app\n[Service]\nExecStart=/usr/bin/python3 /srv/app.py --port 8000\nRestart=on-failure\n"),
            ("/etc/systemd/system/cron.service", "[Service]\nExecStart=/usr/sbin/cron -f\n"),
            ("/lib/systemd/system/api.socket", "[Socket]\nListenStream=127.0.0.1:9000\n"),
        ],
        &[
            ("/proc", &["1"]),
            ("/etc/systemd/system", &["my-backend.service", "cron.service", "multi-user.target.wants"]),
            ("/lib/systemd/system", &["api.socket"]),
        ],
        &runs,
    );
    let f = gather(
        &host,
        &GatherInput {
            pids: vec![],
            targets: vec!["127.0.0.1:8000".into(), "127.0.0.1:9000".into()],
        },
        &opts,
    );
    assert_eq!(f.systemd.len(), 1, "{:#?}", f);
    let u = &f.systemd[0];
    assert_eq!(u.unit, "my-backend.service");
    assert_eq!(
        u.mentions[0].source,
        "ExecStart (/etc/systemd/system/my-backend.service:4)"
    );
    assert_eq!(u.journal.len(), 2);
    assert!(f.nginx_unit.is_some());
    assert!(
        f.looked_at[0].starts_with("3 systemd unit files"),
        "{:?}",
        f.looked_at
    );
    assert!(f
        .skipped
        .iter()
        .any(|s| s.check == "systemctl list-units" && s.why.contains("did not finish")));
    // The socket unit's ListenStream names 9000 for api.service, which has no unit file:
    // shown, found `not-found`, left out.
}

/// Bad input: a pool file with a syntax error and binary noise is read as far as it goes and
/// named with file:line; a journal that cannot be read and a hanging `systemctl` are `skipped`
/// entries, within the budget.
#[test]
fn staged_bad_input_is_named_never_a_panic() {
    let host = staged(
        &[
            ("/proc/1/comm", "systemd\n"),
            ("/usr/bin/systemctl", ""),
            ("/usr/bin/journalctl", ""),
            ("/etc/php/8.2/fpm/php-fpm.conf", "[global]\ninclude=/etc/php/8.2/fpm/pool.d/*.conf\n"),
            ("/etc/php/8.2/fpm/pool.d/www.conf", "[www]\nlisten = /run/php/php8.2-fpm.sock\nthis is not ini\n\u{0}\u{1}\u{fffd}garbage\n"),
            ("/usr/bin/dmesg", ""),
        ],
        &[
            ("/proc", &["1"]),
            ("/etc", &["php"]),
            ("/etc/php", &["8.2"]),
            ("/etc/php/8.2", &["fpm"]),
            ("/etc/php/8.2/fpm", &["php-fpm.conf", "pool.d"]),
            ("/etc/php/8.2/fpm/pool.d", &["www.conf"]),
            ("/etc/systemd/system", &["secret.service"]),
        ],
        &[(
            "dmesg --time-format iso",
            Err(RunError::Failed {
                program: "dmesg".into(),
                status: "exit status: 1".into(),
                stdout: String::new(),
                stderr: "dmesg: read kernel buffer failed: Operation not permitted".into(),
            }),
        )],
    );
    // A unit file that cannot be read (another user's, as non-root).
    let mut host = host;
    host.0.files.insert(
        "/etc/systemd/system/secret.service".into(),
        Err("Permission denied (os error 13)".into()),
    );
    let start = Instant::now();
    let f = gather(
        &host,
        &GatherInput {
            pids: vec![],
            targets: vec!["unix:/run/php/php8.2-fpm.sock".into()],
        },
        &GatherOptions::default(),
    );
    assert!(
        f.skipped.iter().any(
            |s| s.check == "unit file /etc/systemd/system/secret.service"
                && s.why.contains("Permission denied")
        ),
        "{:#?}",
        f.skipped
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    let inst = &f.fpm_installed[0];
    assert_eq!(
        inst.pools[0].listen.as_deref(),
        Some("/run/php/php8.2-fpm.sock")
    );
    assert!(
        inst.problems
            .iter()
            .any(|p| p.starts_with("/etc/php/8.2/fpm/pool.d/www.conf:3")),
        "{:?}",
        inst.problems
    );
    assert!(f
        .skipped
        .iter()
        .any(|s| s.check == "php-fpm config /etc/php/8.2/fpm/pool.d/www.conf:3"));
    // The kernel log denied (a non-root user with kernel.dmesg_restrict=1): said, with how to
    // allow it.
    assert!(
        f.skipped
            .iter()
            .any(|s| s.check.contains("OOM") && s.why.contains("dmesg_restrict=0")),
        "{:#?}",
        f.skipped
    );
    // Every systemctl/journalctl answer was missing: each is named.
    assert!(
        f.skipped.iter().any(|s| s.check == "systemctl list-units"),
        "{:#?}",
        f.skipped
    );

    // A systemctl that hangs: each call waits out its timeout, and the budget cuts the whole
    // gathering short.
    let hanging = Hanging(host);
    let t = Instant::now();
    let f = gather(
        &hanging,
        &GatherInput {
            pids: vec![],
            targets: vec!["127.0.0.1:8000".into()],
        },
        &GatherOptions {
            budget: Duration::from_millis(800),
            ..GatherOptions::default()
        },
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        f.skipped.iter().any(|s| s.why.contains("did not finish")),
        "{:#?}",
        f.skipped
    );
}

/// A host whose every program hangs until it is killed at its timeout.
struct Hanging(Replay);

impl FileSystem for Hanging {
    fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        self.0.read(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.0.exists(path)
    }
    fn is_dir(&self, path: &str) -> bool {
        self.0.is_dir(path)
    }
    fn list_dir(&self, path: &str) -> std::io::Result<Vec<String>> {
        self.0.list_dir(path)
    }
}

impl Host for Hanging {
    fn run(&self, cmd: &Cmd) -> Result<String, RunError> {
        std::thread::sleep(cmd.timeout);
        Err(RunError::TimedOut {
            program: cmd.argv[0].clone(),
            secs: cmd.timeout.as_secs_f64(),
        })
    }
    fn now(&self) -> i64 {
        self.0.now()
    }
    fn is_root(&self) -> bool {
        true
    }
    fn user_name(&self, _uid: u32) -> Option<String> {
        None
    }
}
