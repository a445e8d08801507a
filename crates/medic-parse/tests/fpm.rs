//! The PHP-FPM ini parser on Debian's real files (`fixtures/fpm`, PHP licence: see its
//! ATTRIBUTION.md), includes through a temporary directory, and properties on arbitrary text.

use std::path::Path;

use medic_parse::fpm::{load, parse_ini, parse_log_line};
use proptest::prelude::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fpm");

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(rel)).unwrap()
}

#[test]
fn debian_www_pool() {
    let ini = parse_ini(&fixture("pool.d/www.conf"));
    assert!(ini.bad_lines.is_empty(), "{:?}", ini.bad_lines);
    let pools = ini.pools();
    assert_eq!(pools.len(), 1);
    let www = &pools[0];
    assert_eq!(www.name, "www");
    assert_eq!(www.user().as_deref(), Some("www-data"));
    assert_eq!(www.group().as_deref(), Some("www-data"));
    assert_eq!(www.listen().as_deref(), Some("/run/php/php8.2-fpm.sock"));
    assert_eq!(www.listen_owner().as_deref(), Some("www-data"));
    assert_eq!(www.listen_group().as_deref(), Some("www-data"));
    // Commented out in Debian's file: FPM's defaults apply.
    assert_eq!(www.listen_mode(), None);
    assert_eq!(www.status_path(), None);
    assert_eq!(www.pm().as_deref(), Some("dynamic"));
    assert_eq!(www.max_children(), Some(5));
    assert_eq!(www.get("pm.start_servers").as_deref(), Some("2"));
}

#[test]
fn debian_main_file() {
    let ini = parse_ini(&fixture("php-fpm.conf"));
    assert!(ini.bad_lines.is_empty(), "{:?}", ini.bad_lines);
    assert!(ini.pools().is_empty());
    let g: Vec<(&str, &str)> = ini
        .global()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        g,
        vec![
            ("pid", "/run/php/php8.2-fpm.pid"),
            ("error_log", "/var/log/php8.2-fpm.log"),
            ("include", "/etc/php/8.2/fpm/pool.d/*.conf"),
        ]
    );
}

#[test]
fn load_follows_includes() {
    let dir = tempfile::tempdir().unwrap();
    let main = fixture("php-fpm.conf").replace("/etc/php/8.2/fpm/pool.d/*.conf", "pool.d/*.conf");
    std::fs::create_dir(dir.path().join("pool.d")).unwrap();
    std::fs::write(dir.path().join("php-fpm.conf"), main).unwrap();
    std::fs::write(
        dir.path().join("pool.d/www.conf"),
        fixture("pool.d/www.conf"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pool.d/api.conf"),
        "[api]\nlisten = /run/php/$pool.sock\nlisten.mode = 0600\nlisten.backlog = -1\n\
         pm = static\npm.max_children = \"12\" ; quoted\nrequest_terminate_timeout = 30s\n\
         slowlog = /var/log/php/$pool.slow.log\npm.status_path = /status\nping.path = /ping\n\
         listen.acl_users = nginx,www-data\nphp_admin_value[error_log] = /var/log/php/$pool.log\n",
    )
    .unwrap();
    let cfg = load(&dir.path().join("php-fpm.conf")).unwrap();
    assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
    assert_eq!(cfg.error_log(), Some("/var/log/php8.2-fpm.log"));
    assert_eq!(cfg.files.len(), 3);
    let names: Vec<&str> = cfg.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["api", "www"]);
    let api = &cfg.pools[0];
    assert_eq!(
        api.file.as_deref(),
        Some(dir.path().join("pool.d/api.conf").as_path())
    );
    assert_eq!(api.listen().as_deref(), Some("/run/php/api.sock"));
    assert_eq!(api.listen_mode().as_deref(), Some("0600"));
    assert_eq!(api.listen_backlog(), Some(-1));
    assert_eq!(api.max_children(), Some(12));
    assert_eq!(api.request_terminate_timeout().as_deref(), Some("30s"));
    assert_eq!(api.slowlog().as_deref(), Some("/var/log/php/api.slow.log"));
    assert_eq!(api.status_path().as_deref(), Some("/status"));
    assert_eq!(api.ping_path().as_deref(), Some("/ping"));
    assert_eq!(api.listen_acl_users().as_deref(), Some("nginx,www-data"));
    assert_eq!(api.php_error_log().as_deref(), Some("/var/log/php/api.log"));
}

#[test]
fn missing_include_is_a_problem_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("php-fpm.conf");
    std::fs::write(&p, "[global]\ninclude = /nonexistent/dir/*.conf\n").unwrap();
    let cfg = load(&p).unwrap();
    // A glob that matches nothing is not an error for FPM either.
    assert!(cfg.pools.is_empty());
    assert!(load(&dir.path().join("absent.conf")).is_err());
}

proptest! {
    #[test]
    fn ini_never_panics(s in "\\PC*") {
        let ini = parse_ini(&s);
        let _ = ini.pools();
        let _ = ini.global().count();
    }

    #[test]
    fn ini_lines_never_panic(lines in proptest::collection::vec("[\\[\\]=;'\" a-z$.\\\\]{0,30}", 0..20)) {
        let ini = parse_ini(&lines.join("\n"));
        for p in ini.pools() {
            let _ = (p.listen(), p.max_children(), p.listen_backlog());
            prop_assert!(!p.name.is_empty());
        }
    }

    #[test]
    fn log_lines_never_panic(s in "\\[[0-9a-zA-Z :.-]{0,25}\\] [A-Z]{0,8}: (\\[pool [a-z]{0,5}\\] )?[ -~]{0,80}") {
        let _ = parse_log_line(&s);
    }

    #[test]
    fn values_round_trip_when_plain(v in "[a-zA-Z0-9/._-]{1,40}") {
        let ini = parse_ini(&format!("[p]\nk = {v}\n"));
        prop_assert_eq!(ini.pools()[0].get("k"), Some(v));
    }
}
