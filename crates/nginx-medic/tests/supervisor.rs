//! The supervisor gatherer on this host and on staged inputs: program runs are bounded, a host
//! without systemd or pm2 says so in `skipped`, and the FPM log reader finds its events.

use std::time::{Duration, Instant};

use nginx_medic::probe::supervisor::{fpm_events, gather, run, GatherOptions, RunError};

#[test]
fn run_is_bounded_and_kills_by_pid() {
    let start = Instant::now();
    let e = run(&["sleep", "5"], Duration::from_millis(200)).unwrap_err();
    assert!(matches!(e, RunError::TimedOut { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn run_reports_missing_and_failing_programs() {
    assert!(matches!(
        run(&["nginx-medic-no-such-program"], Duration::from_secs(1)),
        Err(RunError::NotFound { .. })
    ));
    assert!(matches!(
        run(&["false"], Duration::from_secs(5)),
        Err(RunError::Failed { .. })
    ));
    assert_eq!(
        run(&["echo", "a b"], Duration::from_secs(5)).unwrap(),
        "a b\n"
    );
}

#[test]
fn host_without_systemd_is_skipped_with_the_reason() {
    let pid1 = std::fs::read_to_string("/proc/1/comm").unwrap();
    let f = gather(
        &[std::process::id()],
        &["nginx.service".into()],
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
    } else {
        assert!(f.systemd.iter().any(|u| u.unit == "nginx.service"));
    }
    // Either pm2 was asked, or the skip says why not.
    assert!(f.pm2.is_some() || f.skipped.iter().any(|s| s.check == "pm2"));
    // The kernel log was read, or the skip says how to allow it.
    assert!(f.oom.is_some() || f.skipped.iter().any(|s| s.check.contains("OOM")));
    let j = serde_json::to_value(&f).unwrap();
    assert!(j["skipped"].is_array());
}

#[test]
fn staged_proc_with_an_fpm_master() {
    let dir = tempfile::tempdir().unwrap();
    let proc_root = dir.path().join("proc");
    let conf = dir.path().join("php-fpm.conf");
    let log = dir.path().join("fpm.log");
    std::fs::create_dir_all(proc_root.join("1")).unwrap();
    std::fs::write(proc_root.join("1/comm"), "init\n").unwrap();
    std::fs::create_dir_all(proc_root.join("4242")).unwrap();
    std::fs::write(
        proc_root.join("4242/cmdline"),
        format!("php-fpm: master process ({})\0\0", conf.display()),
    )
    .unwrap();
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = {}\n[app]\nlisten = /run/$pool.sock\npm = static\npm.max_children = 2\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::write(
        &log,
        "[21-Nov-2026 21:50:10] NOTICE: ready to handle connections\n\
         [21-Nov-2026 21:50:12] WARNING: [pool app] server reached pm.max_children setting (2), consider raising it\n\
         [21-Nov-2026 21:50:40] WARNING: [pool app] child 77 exited on signal 9 (SIGKILL) after 30.1 seconds from start\n",
    )
    .unwrap();
    let opts = GatherOptions {
        proc_root,
        ..GatherOptions::default()
    };
    let f = gather(&[], &[], &opts);
    assert!(f.skipped.iter().any(|s| s.why.contains("PID 1 is init")));
    assert_eq!(f.fpm.len(), 1, "{f:#?}");
    let m = &f.fpm[0];
    assert_eq!(m.pid, 4242);
    assert_eq!(m.pools[0].listen.as_deref(), Some("/run/app.sock"));
    assert_eq!(m.pools[0].max_children, Some(2));
    let kinds: Vec<&str> = m.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["max-children", "signal"]);
    assert_eq!(m.events[0].time.as_deref(), Some("2026-11-21T21:50:12"));
    assert_eq!(m.events[1].child, Some(77));
    assert_eq!(m.events[1].value, Some(9));
    // A tail read skips the partial first line.
    let tail = fpm_events(&log, 130).unwrap();
    assert_eq!(tail.len(), 1);
}
