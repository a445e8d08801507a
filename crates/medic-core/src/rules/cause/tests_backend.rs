//! Scenario tests of the backend, socket, time, limit and application causes: each rule fires
//! on its evidence and yields to the next cause (or stays quiet) without it.

use medic_parse::error_log::FailureClass;

use super::support::fpm::listen_matches;
use super::support::timeouts::request_in;
use super::tests::{live, log_group, post_mortem, t, tcp_target, top};
use crate::config::{build, testing, BuildOptions, Model};
use crate::diagnose::diagnose;
use crate::facts::supervisor::{
    FpmEvent, FpmInstall, FpmMaster, FpmPool, KernelOom, Mention, OomKill, Pm2Process, SystemdUnit,
};
use crate::facts::{Access5xx, ClientClosedGroup, Facts, LogGroup, LogLine, Origin, ProbedTarget};
use crate::facts::{
    Connect, FastcgiFact, HttpFact, Listener, ProbeRequest, ProcessInfo, SocketKind, Speaks,
    UnixFact, WorkerAccess,
};
use crate::rules::{Finding, Severity};

const SOCK: &str = "/run/php/php8.2-fpm.sock";
const UP: &str = "unix:/run/php/php8.2-fpm.sock";

fn model(conf: &str) -> Model {
    build(&testing::one(conf), &BuildOptions::default())
}

/// nginx.conf with one PHP location passing to `pass`.
fn php_conf(pass: &str) -> String {
    format!(
        "user www-data;\nevents {{}}\nhttp {{\n    server {{\n        listen 80;\n        root /srv/www;\n        location ~ \\.php$ {{\n            fastcgi_pass {pass};\n            fastcgi_param SCRIPT_FILENAME /srv/wrong$fastcgi_script_name;\n            fastcgi_read_timeout 1s;\n        }}\n    }}\n}}\n"
    )
}

fn with_models(mut f: Facts, models: Vec<Model>) -> Facts {
    f.models = models;
    f
}

fn has(f: &Finding, needle: &str) -> bool {
    f.evidence
        .iter()
        .any(|e| e.text.contains(needle) || e.source.contains(needle))
}

fn worker(allowed: Option<bool>, why: &str) -> WorkerAccess {
    WorkerAccess {
        user: "www-data".into(),
        uid: Some(33),
        gids: vec![33],
        allowed,
        why: why.into(),
    }
}

/// A probed unix-socket target.
fn unix_target(path: &str, exists: bool, connect: Connect, allowed: Option<bool>) -> ProbedTarget {
    let mut p = tcp_target(&format!("unix:{path}"), Connect::Refused);
    p.facts.tcp.clear();
    p.facts.addresses = vec![format!("unix:{path}")];
    p.facts.unix = Some(UnixFact {
        path: path.into(),
        exists,
        is_socket: exists,
        owner: exists.then(|| "root".into()),
        group: exists.then(|| "root".into()),
        uid: exists.then_some(0),
        gid: exists.then_some(0),
        mode: exists.then(|| "0600".into()),
        ls: exists.then(|| format!("srw------- root:root {path}")),
        worker: worker(allowed, "no write permission: srw------- root:root"),
        connect,
    });
    p
}

fn pool(name: &str, listen: &str) -> FpmPool {
    FpmPool {
        name: name.into(),
        file: Some(format!("/etc/php/8.2/fpm/pool.d/{name}.conf").into()),
        listen: Some(listen.into()),
        listen_owner: None,
        listen_group: None,
        listen_mode: Some("0600".into()),
        listen_acl_users: None,
        listen_acl_groups: None,
        listen_backlog: None,
        user: Some("www-data".into()),
        group: Some("www-data".into()),
        pm: Some("dynamic".into()),
        max_children: Some(5),
        status_path: None,
        ping_path: None,
        request_terminate_timeout: None,
        slowlog: None,
        listen_at: None,
        listen_allowed_clients: None,
    }
}

fn event(kind: &'static str, time: &str, line: &str, value: Option<i64>) -> FpmEvent {
    FpmEvent {
        kind: kind.into(),
        time: Some(time.into()),
        level: "WARNING".into(),
        pool: Some("www".into()),
        child: Some(1234),
        value,
        detail: None,
        line: line.into(),
    }
}

fn master(pools: Vec<FpmPool>, events: Vec<FpmEvent>) -> FpmMaster {
    FpmMaster {
        pid: 700,
        config: Some("/etc/php/8.2/fpm/php-fpm.conf".into()),
        pools,
        error_log: Some("/var/log/php8.2-fpm.log".into()),
        events,
        problems: vec![],
    }
}

fn add_fpm(mut f: Facts, m: FpmMaster) -> Facts {
    f.probes.as_mut().unwrap().supervisors.fpm.push(m);
    f
}

fn fastcgi_fact(address: &str, answered: bool, hangs: bool) -> FastcgiFact {
    FastcgiFact {
        address: address.into(),
        request: ProbeRequest {
            method: "GET".into(),
            host: "localhost".into(),
            path: "/nonexistent/nginx-medic-probe.php".into(),
            host_from: "the upstream name".into(),
        },
        speaks: if answered {
            Speaks::Fastcgi
        } else {
            Speaks::Silent
        },
        answered,
        status: answered.then_some(404),
        stdout_head: None,
        stderr: answered.then(|| "Primary script unknown".into()),
        ttfb_ms: answered.then_some(2.0),
        read_timeout_ms: 1000,
        ttfb_exceeds_timeout: hangs,
        gave_up_ms: None,
        error: None,
    }
}

fn http_fact(address: &str, hangs: bool) -> HttpFact {
    HttpFact {
        address: address.into(),
        request: ProbeRequest {
            method: "GET".into(),
            host: "app.test".into(),
            path: "/".into(),
            host_from: "the upstream name".into(),
        },
        tls_expected: false,
        speaks: if hangs { Speaks::Silent } else { Speaks::Http },
        status: (!hangs).then_some(200),
        status_line: (!hangs).then(|| "HTTP/1.1 200 OK".into()),
        ttfb_ms: (!hangs).then_some(3.0),
        read_timeout_ms: 1000,
        ttfb_exceeds_timeout: hangs,
        gave_up_ms: None,
        header_bytes: None,
        header_complete: !hangs,
        buffer_size: 4096,
        header_exceeds_buffer: false,
        scheme_mismatch: false,
        error: None,
    }
}

fn with_line(mut g: LogGroup, text: &str) -> LogGroup {
    g.first_line.text = text.into();
    g
}

// ---------------------------------------------------------------------------------------------
// socket-missing, socket-path-mismatch
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_socket_post_mortem_is_socket_missing() {
    let f = top(&post_mortem(vec![log_group(
        FailureClass::SocketMissing,
        Some(UP),
        None,
        5,
    )]));
    assert_eq!(f.id, "socket-missing");
    assert_eq!(f.upstream.as_deref(), Some(UP));
    assert_eq!(f.status, Some(502));
    assert!(f.fix.time == "5-10 min" && f.fix.risk == "medium");
}

#[test]
fn missing_socket_with_a_pool_elsewhere_is_a_path_mismatch() {
    let other = "/run/php/php8.1-fpm.sock";
    let facts = add_fpm(
        live(
            vec![log_group(FailureClass::SocketMissing, Some(UP), None, 5)],
            vec![unix_target(SOCK, false, Connect::Missing, None)],
        ),
        master(vec![pool("www", other)], vec![]),
    );
    let f = top(&facts);
    assert_eq!(f.id, "socket-path-mismatch");
    assert!(has(&f, other), "{f:#?}");
    assert!(f.title.contains(other));
    assert!(f.fix.commands.contains(&"nginx -t".to_string()));
}

#[test]
fn missing_socket_live_without_a_candidate_stays_socket_missing() {
    // An unrelated unix listener in another directory with an unrelated name is no candidate.
    let mut facts = live(
        vec![log_group(FailureClass::SocketMissing, Some(UP), None, 5)],
        vec![unix_target(SOCK, false, Connect::Missing, None)],
    );
    facts
        .probes
        .as_mut()
        .unwrap()
        .listeners
        .sockets
        .push(Listener {
            kind: SocketKind::Unix,
            ip: None,
            port: None,
            path: Some("/run/dbus/system_bus_socket".into()),
            inode: 9,
            uid: None,
            processes: vec![],
        });
    let f = top(&facts);
    assert_eq!(f.id, "socket-missing");
    assert!(has(&f, "No such file or directory"));
    assert!(has(&f, "no running PHP-FPM pool listens"));
}

#[test]
fn missing_socket_with_a_php_listener_nearby_is_a_path_mismatch() {
    let mut facts = live(
        vec![log_group(FailureClass::SocketMissing, Some(UP), None, 5)],
        vec![unix_target(SOCK, false, Connect::Missing, None)],
    );
    facts
        .probes
        .as_mut()
        .unwrap()
        .listeners
        .sockets
        .push(Listener {
            kind: SocketKind::Unix,
            ip: None,
            port: None,
            path: Some("/run/php/php-fpm.sock".into()),
            inode: 9,
            uid: None,
            processes: vec![],
        });
    let f = top(&facts);
    assert_eq!(f.id, "socket-path-mismatch");
    assert!(has(&f, "/run/php/php-fpm.sock"));
}

// ---------------------------------------------------------------------------------------------
// connect-permission: socket-permission, selinux-denied, the class
// ---------------------------------------------------------------------------------------------

#[test]
fn permission_on_a_unix_socket_post_mortem_is_socket_permission() {
    let facts = with_models(
        post_mortem(vec![log_group(
            FailureClass::ConnectPermission,
            Some(UP),
            None,
            4,
        )]),
        vec![model(&php_conf(UP))],
    );
    let f = top(&facts);
    assert_eq!(f.id, "socket-permission");
    assert!(f.title.contains("www-data"), "{}", f.title);
    assert!(has(&f, "user www-data;"), "{f:#?}");
}

#[test]
fn permission_on_a_unix_socket_live_shows_the_socket_and_the_pool() {
    let facts = add_fpm(
        live(
            vec![log_group(
                FailureClass::ConnectPermission,
                Some(UP),
                None,
                4,
            )],
            vec![unix_target(
                SOCK,
                true,
                Connect::Ok { latency_ms: 0.1 },
                Some(false),
            )],
        ),
        master(vec![pool("www", SOCK)], vec![]),
    );
    let f = top(&facts);
    assert_eq!(f.id, "socket-permission");
    assert!(has(&f, "srw------- root:root"));
    assert!(has(&f, "www-data"));
    assert!(has(&f, "listen.mode = 0600"));
    assert!(f.fix.commands.iter().any(|c| c.contains("php8.2-fpm")));
}

#[test]
fn permission_on_tcp_with_selinux_enforcing_is_selinux() {
    let mut facts = live(
        vec![log_group(
            FailureClass::ConnectPermission,
            Some("127.0.0.1:8080"),
            None,
            4,
        )],
        vec![tcp_target(
            "127.0.0.1:8080",
            Connect::Ok { latency_ms: 0.1 },
        )],
    );
    facts.probes.as_mut().unwrap().selinux = Some("enforcing".into());
    let f = top(&facts);
    assert_eq!(f.id, "selinux-denied");
    assert!(f
        .fix
        .commands
        .contains(&"setsebool -P httpd_can_network_connect 1".to_string()));
}

#[test]
fn permission_on_tcp_without_selinux_is_the_class() {
    let mut facts = live(
        vec![log_group(
            FailureClass::ConnectPermission,
            Some("127.0.0.1:8080"),
            None,
            4,
        )],
        vec![tcp_target(
            "127.0.0.1:8080",
            Connect::Ok { latency_ms: 0.1 },
        )],
    );
    facts.probes.as_mut().unwrap().selinux = Some("permissive".into());
    assert_eq!(top(&facts).id, "connect-permission");
    let f = top(&post_mortem(vec![log_group(
        FailureClass::ConnectPermission,
        Some("127.0.0.1:8080"),
        None,
        4,
    )]));
    assert_eq!(f.id, "connect-permission");
}

// ---------------------------------------------------------------------------------------------
// read-timeout family: pool-saturated, slow-backend, the classes
// ---------------------------------------------------------------------------------------------

const MAX_CHILDREN: &str = "[20-Nov-2026 14:32:05] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it";

#[test]
fn read_timeout_with_max_children_is_pool_saturated() {
    let mut target = unix_target(SOCK, true, Connect::Ok { latency_ms: 0.1 }, Some(true));
    target.facts.fastcgi = Some(fastcgi_fact(UP, true, false));
    let facts = add_fpm(
        live(
            vec![log_group(FailureClass::ReadTimeout, Some(UP), None, 9)],
            vec![target],
        ),
        master(
            vec![pool("www", SOCK)],
            vec![event(
                "max-children",
                "2026-11-20T14:32:05",
                MAX_CHILDREN,
                Some(5),
            )],
        ),
    );
    let f = top(&facts);
    assert_eq!(f.id, "pool-saturated");
    assert_eq!(f.status, Some(504));
    assert!(has(&f, "max_children"));
    assert!(has(&f, "pm.max_children = 5"));
}

#[test]
fn hanging_tcp_pool_is_pool_saturated() {
    let up = "127.0.0.1:9000";
    let mut target = tcp_target(up, Connect::Ok { latency_ms: 0.1 });
    target.facts.fastcgi = Some(fastcgi_fact(up, false, true));
    let facts = add_fpm(
        live(
            vec![log_group(FailureClass::ReadTimeout, Some(up), None, 2)],
            vec![target],
        ),
        master(vec![pool("www", "9000")], vec![]),
    );
    let f = top(&facts);
    assert_eq!(f.id, "pool-saturated");
    assert!(has(&f, "max_children"));
}

#[test]
fn old_max_children_and_an_answering_pool_is_slow_backend() {
    let mut target = unix_target(SOCK, true, Connect::Ok { latency_ms: 0.1 }, Some(true));
    target.facts.fastcgi = Some(fastcgi_fact(UP, true, false));
    let facts = with_models(
        add_fpm(
            live(
                vec![with_line(
                    log_group(FailureClass::ReadTimeout, Some(UP), None, 9),
                    "2026/11/20 14:32:10 [error] 1#1: *1 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: _, request: \"GET /slow.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"x\"",
                )],
                vec![target],
            ),
            master(
                vec![pool("www", SOCK)],
                // A day earlier: not this episode.
                vec![event("max-children", "2026-11-19T14:32:05", MAX_CHILDREN, Some(5))],
            ),
        ),
        vec![model(&php_conf(UP))],
    );
    let f = top(&facts);
    assert_eq!(f.id, "slow-backend");
    assert!(f.title.contains("GET /slow.php"), "{}", f.title);
    assert!(has(&f, "fastcgi_read_timeout 1s;"), "{f:#?}");
    assert_eq!(f.fix.risk, "medium: masks slowness");
}

#[test]
fn hanging_http_backend_is_slow_backend_with_the_default_timeout() {
    let up = "127.0.0.1:8080";
    let mut target = tcp_target(up, Connect::Ok { latency_ms: 0.1 });
    target.facts.http = Some(http_fact(up, true));
    let f = top(&live(
        vec![log_group(FailureClass::ReadTimeout, Some(up), None, 3)],
        vec![target],
    ));
    assert_eq!(f.id, "slow-backend");
    assert!(has(&f, "no first byte within 1000 ms"));
}

#[test]
fn read_timeout_post_mortem_or_unreachable_now_is_the_class() {
    let up = "127.0.0.1:8080";
    let f = top(&post_mortem(vec![log_group(
        FailureClass::ReadTimeout,
        Some(up),
        None,
        3,
    )]));
    assert_eq!(f.id, "read-timeout");
    assert_eq!(f.status, Some(504));
    // Live, but the target does not accept connections now: no claim about its speed.
    let f = top(&live(
        vec![log_group(FailureClass::ReadTimeout, Some(up), None, 3)],
        vec![tcp_target(up, Connect::Refused)],
    ));
    assert_eq!(f.id, "read-timeout");
    assert!(has(&f, "refused"));
}

#[test]
fn send_timeout_post_mortem_is_the_class_and_live_slow_backend() {
    let up = "127.0.0.1:8080";
    let f = top(&post_mortem(vec![log_group(
        FailureClass::SendTimeout,
        Some(up),
        None,
        2,
    )]));
    assert_eq!(f.id, "send-timeout");
    assert!(has(&f, "proxy_send_timeout 60s"));
    let mut target = tcp_target(up, Connect::Ok { latency_ms: 0.1 });
    target.facts.http = Some(http_fact(up, false));
    let f = top(&live(
        vec![log_group(FailureClass::SendTimeout, Some(up), None, 2)],
        vec![target],
    ));
    assert_eq!(f.id, "slow-backend");
}

#[test]
fn socket_backlog_is_the_class_without_saturation_evidence() {
    let f = top(&post_mortem(vec![log_group(
        FailureClass::SocketBacklog,
        Some(UP),
        None,
        7,
    )]));
    assert_eq!(f.id, "socket-backlog");
    assert_eq!(f.status, Some(502));
    let facts = add_fpm(
        live(
            vec![log_group(FailureClass::SocketBacklog, Some(UP), None, 7)],
            vec![unix_target(SOCK, true, Connect::BacklogFull, Some(true))],
        ),
        master(
            vec![pool("www", SOCK)],
            vec![event(
                "max-children",
                "2026-11-20T14:33:00",
                MAX_CHILDREN,
                Some(5),
            )],
        ),
    );
    assert_eq!(top(&facts).id, "pool-saturated");
}

#[test]
fn connect_timeout_shows_the_probe() {
    let up = "10.0.0.5:8080";
    let f = top(&post_mortem(vec![log_group(
        FailureClass::ConnectTimeout,
        Some(up),
        None,
        2,
    )]));
    assert_eq!(f.id, "connect-timeout");
    let f = top(&live(
        vec![log_group(FailureClass::ConnectTimeout, Some(up), None, 2)],
        vec![tcp_target(up, Connect::TimedOut { after_ms: 1000 })],
    ));
    assert_eq!(f.id, "connect-timeout");
    assert!(has(&f, "timed out after 1000 ms"));
}

// ---------------------------------------------------------------------------------------------
// backend-crash, upstream-reset, premature-close
// ---------------------------------------------------------------------------------------------

const KILLED: &str = "[20-Nov-2026 14:32:11] WARNING: [pool www] child 1234 exited on signal 9 (SIGKILL) after 5.1 seconds from start";

fn crash_facts(class: FailureClass, at: &str) -> Facts {
    let mut e = event("signal", at, KILLED, Some(9));
    e.detail = Some("SIGKILL".into());
    add_fpm(
        live(
            vec![log_group(class, Some(UP), None, 1)],
            vec![unix_target(
                SOCK,
                true,
                Connect::Ok { latency_ms: 0.1 },
                Some(true),
            )],
        ),
        master(vec![pool("www", SOCK)], vec![e]),
    )
}

#[test]
fn killed_fpm_child_is_backend_crash() {
    for class in [FailureClass::PrematureClose, FailureClass::UpstreamReset] {
        let f = top(&crash_facts(class, "2026-11-20T14:32:11"));
        assert_eq!(f.id, "backend-crash");
        assert!(has(&f, "signal 9"));
        assert!(f.title.contains("signal 9"), "{}", f.title);
    }
}

#[test]
fn a_kill_long_after_is_no_crash() {
    let f = top(&crash_facts(
        FailureClass::PrematureClose,
        "2026-11-20T15:00:00",
    ));
    assert_eq!(f.id, "premature-close");
    let f = top(&crash_facts(
        FailureClass::UpstreamReset,
        "2026-11-20T15:00:00",
    ));
    assert_eq!(f.id, "upstream-reset");
}

#[test]
fn oom_kill_in_the_window_is_backend_crash() {
    let up = "127.0.0.1:3000";
    let mut facts = live(
        vec![log_group(FailureClass::UpstreamReset, Some(up), None, 3)],
        vec![tcp_target(up, Connect::Ok { latency_ms: 0.1 })],
    );
    let lines: Vec<String> = vec![
        "2026-11-20T14:35:30+0100 host kernel: oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/system.slice/node-app.service,task=node,pid=4321,uid=0".into(),
        "2026-11-20T14:35:30+0100 host kernel: Out of memory: Killed process 4321 (node)".into(),
        "2026-11-20T14:35:31+0100 host kernel: oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/system.slice/other.service,task=java,pid=99,uid=0".into(),
        "2026-11-20T14:35:31+0100 host kernel: Out of memory: Killed process 99 (java)".into(),
    ];
    let p = facts.probes.as_mut().unwrap();
    p.supervisors.oom = Some(KernelOom {
        source: "journalctl -k".into(),
        kills: vec![
            OomKill {
                time: Some("2026-11-20T14:35:30".into()),
                pid: Some(4321),
                task: Some("node".into()),
                memcg: Some("/system.slice/node-app.service".into()),
                line: "Out of memory: Killed process 4321 (node)".into(),
            },
            OomKill {
                time: Some("2026-11-20T14:35:31".into()),
                pid: Some(99),
                task: Some("java".into()),
                memcg: Some("/system.slice/other.service".into()),
                line: "Out of memory: Killed process 99 (java)".into(),
            },
        ],
        lines,
    });
    // The listener's unit names the backend; the other kill, at the same time, is another
    // process's and is never attributed by time alone.
    p.targets[0].facts.listener = Some(listener_of(up, "node", 4321, "node-app.service"));
    p.supervisors
        .systemd
        .push(unit("node-app.service", "active", 0));
    let f = top(&facts);
    assert_eq!(f.id, "backend-crash");
    assert!(has(&f, "Killed process 4321"));
    assert!(!has(&f, "Killed process 99 "));
}

#[test]
fn premature_close_post_mortem_is_the_class() {
    let f = top(&post_mortem(vec![log_group(
        FailureClass::PrematureClose,
        Some("127.0.0.1:3000"),
        None,
        3,
    )]));
    assert_eq!(f.id, "premature-close");
    assert!(f
        .fix
        .steps
        .iter()
        .any(|s| s.contains("proxy_http_version 1.1")));
}

// ---------------------------------------------------------------------------------------------
// limits
// ---------------------------------------------------------------------------------------------

const LIMITS: &str = "events {}\nhttp {\n    limit_req_zone $binary_remote_addr zone=perip:1m rate=1r/m;\n    limit_conn_zone $binary_remote_addr zone=addr:1m;\n    server {\n        listen 80;\n        location / {\n            limit_req zone=perip burst=2;\n            limit_conn addr 1;\n            limit_conn_status 429;\n            proxy_pass http://127.0.0.1:8080;\n        }\n    }\n}\n";

#[test]
fn limit_req_names_the_zone_rate_and_clients() {
    let mut g = log_group(FailureClass::RateLimited, None, Some("perip"), 4);
    g.top_clients = vec![("203.0.113.7".into(), 4)];
    let f = top(&with_models(post_mortem(vec![g]), vec![model(LIMITS)]));
    assert_eq!(f.id, "rate-limited");
    assert_eq!(f.status, Some(503));
    assert_eq!(f.upstream, None);
    assert!(
        f.title.contains("perip") && f.title.contains("rate=1r/m") && f.title.contains("burst=2")
    );
    assert!(has(&f, "limit_req zone=perip burst=2;"), "{f:#?}");
    assert!(has(&f, "limit_req_zone"));
    assert!(has(&f, "203.0.113.7 (4)"));
}

#[test]
fn limit_conn_names_the_zone_and_its_status() {
    let f = top(&with_models(
        post_mortem(vec![log_group(
            FailureClass::ConnLimited,
            None,
            Some("addr"),
            3,
        )]),
        vec![model(LIMITS)],
    ));
    assert_eq!(f.id, "conn-limited");
    assert_eq!(f.status, Some(429));
    assert!(has(&f, "limit_conn addr 1;"));
    // Without the config: still the zone, from the log.
    let f = top(&post_mortem(vec![log_group(
        FailureClass::ConnLimited,
        None,
        Some("addr"),
        3,
    )]));
    assert_eq!(f.id, "conn-limited");
    assert!(f.title.contains("\"addr\""));
}

// ---------------------------------------------------------------------------------------------
// the application
// ---------------------------------------------------------------------------------------------

#[test]
fn primary_script_unknown_is_script_not_found() {
    let g = with_line(
        log_group(FailureClass::FastcgiStderr, Some(UP), Some("Primary script unknown"), 6),
        "2026/11/20 14:32:10 [error] 1#1: *1 FastCGI sent in stderr: \"Primary script unknown\" while reading response header from upstream, client: 127.0.0.1, server: _, request: \"GET /hello.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\"",
    );
    let f = top(&with_models(
        post_mortem(vec![g]),
        vec![model(&php_conf(UP))],
    ));
    assert_eq!(f.id, "script-not-found");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.status, Some(404));
    assert!(
        has(&f, "SCRIPT_FILENAME /srv/wrong$fastcgi_script_name"),
        "{f:#?}"
    );
    assert!(has(&f, "Primary script unknown"));
}

#[test]
fn php_fatal_error_is_app_error() {
    let g = with_line(
        log_group(FailureClass::FastcgiStderr, Some("127.0.0.1:9000"), None, 2),
        "2026/11/20 14:32:10 [error] 1#1: *1 FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Uncaught Error: Call to undefined function medic_undefined_function() in /srv/www/fatal.php:2\" while reading response header from upstream, client: 127.0.0.1",
    );
    let f = top(&post_mortem(vec![g]));
    assert_eq!(f.id, "app-error");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.status, None);
    assert!(
        f.title.contains("PHP Fatal error: Uncaught Error"),
        "{}",
        f.title
    );
    assert!(has(&f, "PHP Fatal error"));
}

#[test]
fn php_warnings_are_a_warning() {
    let g = with_line(
        log_group(FailureClass::FastcgiStderr, Some("127.0.0.1:9000"), None, 2),
        "2026/11/20 14:32:10 [error] 1#1: *1 FastCGI sent in stderr: \"PHP message: PHP Warning:  Undefined variable $x in /srv/www/a.php on line 3\" while reading upstream",
    );
    let f = top(&post_mortem(vec![g]));
    assert_eq!(f.id, "app-error");
    assert_eq!(f.severity, Severity::Warning);
}

// ---------------------------------------------------------------------------------------------
// nginx's and the host's limits
// ---------------------------------------------------------------------------------------------

#[test]
fn host_limits_are_their_classes() {
    let fds = with_line(
        log_group(FailureClass::WorkerLimits, Some("127.0.0.1:8080"), None, 2),
        "2026/11/20 14:32:10 [alert] 1#1: *1 socket() failed (24: Too many open files) while connecting to upstream",
    );
    let f = top(&post_mortem(vec![fds]));
    assert_eq!(f.id, "worker-limits");
    assert!(f.title.contains("file descriptors"));
    let f = top(&live(
        vec![log_group(
            FailureClass::ConnectUnreachable,
            Some("10.0.0.9:80"),
            None,
            2,
        )],
        vec![tcp_target(
            "10.0.0.9:80",
            Connect::Error {
                error: "No route to host".into(),
            },
        )],
    ));
    assert_eq!(f.id, "connect-unreachable");
    assert!(has(&f, "No route to host"));
    let f = top(&with_models(
        post_mortem(vec![log_group(
            FailureClass::PortsExhausted,
            Some("127.0.0.1:8080"),
            None,
            2,
        )]),
        vec![model(LIMITS)],
    ));
    assert_eq!(f.id, "ports-exhausted");
    assert!(has(&f, "no upstream keepalive"));
    assert_eq!(
        f.fix.commands.last().map(String::as_str),
        Some("systemctl reload nginx")
    );
}

// ---------------------------------------------------------------------------------------------
// from the access log
// ---------------------------------------------------------------------------------------------

fn access(status: u16, origin: Origin) -> Access5xx {
    Access5xx {
        upstream: Some("127.0.0.1:8080".into()),
        status,
        origin,
        count: 3,
        first: t("2026-11-20T14:32:10"),
        last: t("2026-11-20T14:32:12"),
        example: LogLine {
            source: "/var/log/nginx/access.log:7".into(),
            text: "127.0.0.1 - - [20/Nov/2026:14:32:10 +0000] \"GET / HTTP/1.1\" 503 0 127.0.0.1:8080 503".into(),
        },
        minutes: vec![(t("2026-11-20T14:32:00"), 3)],
    }
}

#[test]
fn the_backends_own_503_is_backend_5xx() {
    let mut facts = Facts::default();
    facts.logs.access_5xx = vec![access(503, Origin::Upstream)];
    let f = top(&facts);
    assert_eq!(f.id, "backend-5xx");
    assert_eq!(f.status, Some(503));
    assert_eq!(f.count, Some(3));
    assert_eq!(f.title, "127.0.0.1:8080 itself answered 503 (3 requests)");
    assert_eq!(f.evidence[0].kind, "log");
    assert!(f.evidence[0].text.contains(" 503 "));
}

#[test]
fn nginx_made_5xx_are_not_backend_5xx() {
    let mut facts = Facts::default();
    facts.logs.access_5xx = vec![access(502, Origin::Nginx)];
    assert!(diagnose(&facts).iter().all(|f| f.id != "backend-5xx"));
    // Unknown origin while the error log has a failure for the upstream: nginx's own 502.
    let mut facts = post_mortem(vec![log_group(
        FailureClass::ConnectRefused,
        Some("127.0.0.1:8080"),
        None,
        3,
    )]);
    facts.logs.access_5xx = vec![access(502, Origin::Unknown)];
    assert!(diagnose(&facts).iter().all(|f| f.id != "backend-5xx"));
    // Unknown origin and a clean error log: the upstream's.
    let mut facts = Facts::default();
    facts.logs.access_5xx = vec![access(502, Origin::Unknown)];
    assert_eq!(top(&facts).id, "backend-5xx");
}

#[test]
fn client_closed_499s_are_a_warning() {
    let mut facts = Facts::default();
    facts.logs.client_closed = vec![
        ClientClosedGroup {
            upstream: Some("127.0.0.1:8080".into()),
            count: 3,
            first: Some(t("2026-11-20T14:32:10")),
            last: Some(t("2026-11-20T14:32:12")),
            mean_wait: Some(1.0),
            max_wait: Some(1.2),
            example: None,
        },
        ClientClosedGroup {
            upstream: Some("127.0.0.1:9090".into()),
            count: 0,
            first: None,
            last: None,
            mean_wait: None,
            max_wait: None,
            example: None,
        },
    ];
    let out = diagnose(&facts);
    assert_eq!(out.len(), 1, "{out:#?}");
    let f = &out[0];
    assert_eq!(f.id, "client-closed");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.status, Some(499));
    assert!(f.title.contains("max 1.2 s"));
    assert!(!f.evidence.is_empty());
}

// ---------------------------------------------------------------------------------------------
// helpers and docs
// ---------------------------------------------------------------------------------------------

#[test]
fn pool_listen_matching() {
    assert!(listen_matches("/run/php/x.sock", "unix:/run/php/x.sock"));
    assert!(!listen_matches("/run/php/y.sock", "unix:/run/php/x.sock"));
    assert!(listen_matches("127.0.0.1:9000", "127.0.0.1:9000"));
    assert!(listen_matches("9000", "127.0.0.1:9000"));
    assert!(listen_matches("0.0.0.0:9000", "127.0.0.1:9000"));
    assert!(listen_matches("[::]:9000", "127.0.0.1:9000"));
    assert!(!listen_matches("127.0.0.2:9000", "127.0.0.1:9000"));
    assert!(!listen_matches("9001", "127.0.0.1:9000"));
    assert!(!listen_matches("/run/php/x.sock", "127.0.0.1:9000"));
}

#[test]
fn requests_from_log_lines() {
    assert_eq!(
        request_in("x, client: 1.2.3.4, server: _, request: \"POST /api/upload HTTP/1.1\", upstream: \"http://a/\"").as_deref(),
        Some("POST /api/upload")
    );
    assert_eq!(request_in("no request here"), None);
}

#[test]
fn every_rule_is_documented_with_time_and_risk() {
    const MINE: &[&str] = &[
        "socket-path-mismatch",
        "socket-missing",
        "socket-permission",
        "selinux-denied",
        "connect-permission",
        "pool-saturated",
        "socket-backlog",
        "slow-backend",
        "read-timeout",
        "send-timeout",
        "connect-timeout",
        "backend-crash",
        "upstream-reset",
        "premature-close",
        "rate-limited",
        "conn-limited",
        "script-not-found",
        "app-error",
        "worker-limits",
        "connect-unreachable",
        "ports-exhausted",
        "backend-5xx",
        "client-closed",
    ];
    for id in MINE {
        let c = super::registry()
            .iter()
            .find(|c| c.id() == *id)
            .unwrap_or_else(|| panic!("{id} is not registered"));
        let doc = c.raw_doc();
        assert!(
            !doc.contains("PLACEHOLDER") && !c.title().contains("PLACEHOLDER"),
            "{id}"
        );
        for section in [
            "## What it detects",
            "## Evidence",
            "## Fix",
            "Time: ",
            "Risk: ",
        ] {
            assert!(doc.contains(section), "{id} has no {section}");
        }
        assert!(doc.contains("## Why "), "{id} has no Why section");
    }
}

// ---------------------------------------------------------------------------------------------
// the backend behind a target, dead or alive (`backend`)
// ---------------------------------------------------------------------------------------------

fn listener_of(up: &str, program: &str, pid: u32, unit: &str) -> Listener {
    let (ip, port) = crate::rules::group::parse_ip_port(up).unwrap();
    Listener {
        kind: SocketKind::Tcp,
        ip: Some(ip),
        port: Some(port),
        path: None,
        inode: 1,
        uid: Some(0),
        processes: vec![ProcessInfo {
            pid,
            program: program.into(),
            cmdline: program.into(),
            uid: Some(0),
            unit: Some(unit.into()),
            container: None,
            start_time: Some("2026-11-20T10:00:00".into()),
        }],
    }
}

fn unit(name: &str, state: &str, restarts: u64) -> SystemdUnit {
    let mut properties = std::collections::BTreeMap::new();
    properties.insert("Id".to_string(), name.to_string());
    properties.insert("LoadState".to_string(), "loaded".to_string());
    properties.insert("ActiveState".to_string(), state.to_string());
    properties.insert("SubState".to_string(), state.to_string());
    properties.insert("NRestarts".to_string(), restarts.to_string());
    properties.insert("Result".to_string(), "exit-code".to_string());
    properties.insert(
        "InactiveEnterTimestamp".to_string(),
        "Fri 2026-11-20 14:32:05 UTC".to_string(),
    );
    SystemdUnit {
        unit: name.into(),
        properties,
        journal: Vec::new(),
        mentions: Vec::new(),
    }
}

/// A crash loop that hit the start limit: the unit is named from its `ExecStart`, its state and
/// last words are the evidence, and the fix speaks systemd with its name.
#[test]
fn dead_backend_is_named_from_its_unit_file_with_its_last_words() {
    let up = "127.0.0.1:8000";
    let mut facts = live(
        vec![log_group(FailureClass::ConnectRefused, Some(up), None, 4)],
        vec![tcp_target(up, Connect::Refused)],
    );
    let mut u = unit("my-backend.service", "failed", 4);
    u.mentions.push(Mention {
        target: up.into(),
        source: "ExecStart".into(),
        text: "/usr/bin/python3 /srv/app.py --port 8000".into(),
    });
    u.journal = vec![
        // An older crash loop, hours before: not the failure's.
        "2026-11-20T09:00:00+0000 host python3[10]: fatal: old trouble".into(),
        "2026-11-20T09:00:00+0000 host systemd[1]: my-backend.service: Main process exited, code=exited, status=2/INVALIDARGUMENT".into(),
        "2026-11-20T14:32:04+0000 host python3[77]: fatal: config broken, exiting".into(),
        "2026-11-20T14:32:04+0000 host systemd[1]: my-backend.service: Main process exited, code=exited, status=1/FAILURE".into(),
        "2026-11-20T14:32:05+0000 host python3[78]: fatal: config broken, exiting".into(),
        "2026-11-20T14:32:05+0000 host systemd[1]: my-backend.service: Main process exited, code=exited, status=1/FAILURE".into(),
        "2026-11-20T14:32:05+0000 host systemd[1]: my-backend.service: Start request repeated too quickly.".into(),
        "2026-11-20T14:32:05+0000 host systemd[1]: my-backend.service: Failed with result 'exit-code'.".into(),
        // After the failures: not what explains them.
        "2026-11-20T15:00:00+0000 host python3[99]: later words".into(),
    ];
    facts.probes.as_mut().unwrap().supervisors.systemd.push(u);
    let f = top(&facts);
    assert_eq!(f.id, "backend-down");
    let b = f.backend.as_ref().expect("backend");
    assert_eq!(b.supervisor, "systemd");
    assert_eq!(b.name, "my-backend.service");
    assert_eq!(b.state.as_deref(), Some("failed"));
    assert_eq!(b.restarts, Some(4));
    assert_eq!(b.confidence, "high");
    assert!(b.why.contains("ExecStart"), "{}", b.why);
    assert!(has(&f, "fatal: config broken, exiting"));
    assert!(has(&f, "Start request repeated too quickly"));
    assert!(!has(&f, "old trouble"), "{f:#?}");
    assert!(!has(&f, "later words"));
    // The application's own words come before systemd's.
    let pos = |needle: &str| {
        f.evidence
            .iter()
            .position(|e| e.text.contains(needle))
            .unwrap()
    };
    assert!(pos("config broken") < pos("Start request repeated"));
    assert!(f
        .fix
        .commands
        .contains(&"systemctl reset-failed my-backend.service".to_string()));
    assert!(f
        .fix
        .commands
        .contains(&"journalctl -u my-backend.service -n 50 --no-pager".to_string()));
    assert!(!f.fix.commands.iter().any(|c| c.contains("APP")));
}

#[test]
fn dead_backend_without_a_supervisor_record_says_what_was_looked_at() {
    let up = "127.0.0.1:8000";
    let mut facts = live(
        vec![log_group(FailureClass::ConnectRefused, Some(up), None, 4)],
        vec![tcp_target(up, Connect::Refused)],
    );
    let sup = &mut facts.probes.as_mut().unwrap().supervisors;
    sup.looked_at = vec!["57 systemd units".into(), "0 pm2 daemon(s)".into()];
    // A unit that failed a day earlier is no guess.
    let mut other = unit("cron-job.service", "failed", 0);
    other.properties.insert(
        "InactiveEnterTimestamp".into(),
        "Thu 2026-11-19 09:00:00 UTC".into(),
    );
    sup.systemd.push(other);
    let f = top(&facts);
    assert_eq!(f.id, "backend-down");
    assert!(f.backend.is_none());
    assert!(f.fix.commands.iter().any(|c| c.contains("APP")));
    assert!(f.fix.steps.iter().any(|s| s.contains("57 systemd units")));
}

#[test]
fn a_unit_that_failed_just_before_is_a_low_confidence_guess() {
    let up = "127.0.0.1:8000";
    let mut facts = live(
        vec![log_group(FailureClass::ConnectRefused, Some(up), None, 4)],
        vec![tcp_target(up, Connect::Refused)],
    );
    facts
        .probes
        .as_mut()
        .unwrap()
        .supervisors
        .systemd
        .push(unit("api.service", "failed", 2));
    let b = top(&facts).backend.expect("a guess");
    assert_eq!(b.name, "api.service");
    assert_eq!(b.confidence, "low");
    assert!(b.why.contains("guess"), "{}", b.why);
}

#[test]
fn pm2_app_errored_is_named_with_its_home_and_log() {
    let up = "127.0.0.1:3000";
    let mut facts = live(
        vec![log_group(FailureClass::ConnectRefused, Some(up), None, 2)],
        vec![tcp_target(up, Connect::Refused)],
    );
    facts.probes.as_mut().unwrap().supervisors.pm2 = Some(vec![Pm2Process {
        name: "orders-api".into(),
        pid: Some(0),
        status: Some("errored".into()),
        restarts: Some(3),
        unstable_restarts: Some(0),
        uptime_since_ms: None,
        started: None,
        home: Some("/home/deploy/.pm2".into()),
        user: Some("deploy".into()),
        port: Some("3000".into()),
        script: Some("/srv/orders/app.js".into()),
        args: vec![],
        mentions: vec![Mention {
            target: up.into(),
            source: "PORT".into(),
            text: "PORT=3000".into(),
        }],
        error_log: Some("/home/deploy/.pm2/logs/orders-api-error.log".into()),
        error_tail: vec![(
            "/home/deploy/.pm2/logs/orders-api-error.log:7".into(),
            "Error: Cannot find module './config/database.json'".into(),
        )],
    }]);
    let f = top(&facts);
    assert_eq!(f.id, "backend-down");
    let b = f.backend.as_ref().unwrap();
    assert_eq!(
        (b.supervisor.as_str(), b.name.as_str()),
        ("pm2", "orders-api")
    );
    assert_eq!(b.state.as_deref(), Some("errored"));
    assert!(has(&f, "Cannot find module './config/database.json'"));
    assert!(f
        .fix
        .commands
        .contains(&"sudo -u deploy PM2_HOME=/home/deploy/.pm2 pm2 restart orders-api".to_string()));
    assert!(!f.fix.commands.iter().any(|c| c.contains("systemctl")));
}

/// The classic upgrade: nginx names PHP 8.1's socket, 8.2 is installed and stopped.
#[test]
fn stopped_php_fpm_on_disk_shows_the_socket_mismatch() {
    let want = "unix:/run/php/php8.1-fpm.sock";
    let mut facts = live(
        vec![log_group(FailureClass::SocketMissing, Some(want), None, 3)],
        vec![unix_target(
            "/run/php/php8.1-fpm.sock",
            false,
            Connect::Missing,
            None,
        )],
    );
    let mut www = pool("www", "/run/php/php8.2-fpm.sock");
    www.listen_at = Some("/etc/php/8.2/fpm/pool.d/www.conf:41".into());
    let sup = &mut facts.probes.as_mut().unwrap().supervisors;
    sup.fpm_installed.push(FpmInstall {
        config: "/etc/php/8.2/fpm/php-fpm.conf".into(),
        version: Some("8.2".into()),
        unit: Some("php8.2-fpm.service".into()),
        running: false,
        pools: vec![www],
        problems: vec![],
    });
    sup.systemd.push(unit("php8.2-fpm.service", "inactive", 0));
    let f = top(&facts);
    assert_eq!(f.id, "socket-path-mismatch", "{f:#?}");
    assert!(f
        .evidence
        .iter()
        .any(|e| e.kind == "config" && e.source == "/etc/php/8.2/fpm/pool.d/www.conf:41"));
    assert!(f
        .fix
        .commands
        .contains(&"systemctl enable --now php8.2-fpm".to_string()));
    let b = f.backend.as_ref().unwrap();
    assert_eq!(b.supervisor, "php-fpm");
    assert_eq!(b.state.as_deref(), Some("inactive"));
}

#[test]
fn a_name_that_moved_is_stale_dns() {
    let old = "10.0.0.5:8080";
    let mut moved = tcp_target("backend.internal:8080", Connect::Ok { latency_ms: 0.2 });
    moved.facts.addresses = vec!["10.0.0.9:8080".into()];
    moved.facts.tcp[0].address = "10.0.0.9:8080".into();
    let facts = live(
        vec![log_group(FailureClass::ConnectRefused, Some(old), None, 5)],
        vec![moved],
    );
    let f = top(&facts);
    assert_eq!(f.id, "stale-dns", "{f:#?}");
    assert!(has(
        &f,
        "backend.internal:8080 resolves to 10.0.0.9:8080 now"
    ));
    assert!(f
        .fix
        .commands
        .contains(&"systemctl reload nginx".to_string()));
    // The same failure when the name still resolves to the address: not stale DNS.
    let mut same = tcp_target("backend.internal:8080", Connect::Refused);
    same.facts.addresses = vec![old.into()];
    let facts = live(
        vec![log_group(FailureClass::ConnectRefused, Some(old), None, 5)],
        vec![same],
    );
    assert_ne!(top(&facts).id, "stale-dns");
}

#[test]
fn fpm_allowed_clients_and_client_cert_alerts() {
    let up = "127.0.0.1:9000";
    let mut p = pool("www", "127.0.0.1:9000");
    p.listen_allowed_clients = Some("10.0.0.2".into());
    let facts = add_fpm(
        live(
            vec![log_group(FailureClass::UpstreamReset, Some(up), None, 2)],
            vec![tcp_target(up, Connect::Ok { latency_ms: 0.1 })],
        ),
        master(vec![p], vec![]),
    );
    assert_eq!(top(&facts).id, "fpm-client-disallowed");
    let g = with_line(
        log_group(FailureClass::TlsHandshake, Some("10.0.0.7:443"), None, 1),
        "SSL_do_handshake() failed (SSL: error:0A00045C:SSL routines::tlsv13 alert certificate required:SSL alert number 116) while SSL handshaking to upstream",
    );
    assert_eq!(top(&post_mortem(vec![g])).id, "tls-client-cert-required");
}

/// `localhost` resolves to both loopbacks; the app listens on 127.0.0.1 only and started in the
/// same second as nginx's refusal on `[::1]`: neither a start nor an outage, a bind mismatch
/// that costs a retry (warning).
#[test]
fn localhost_refused_on_one_address_is_a_bind_mismatch_warning() {
    let refused = "[::1]:3000";
    let mut t = tcp_target("localhost:3000", Connect::Refused);
    t.facts.addresses = vec![refused.into(), "127.0.0.1:3000".into()];
    t.facts.tcp = vec![
        crate::facts::TcpFact {
            address: refused.into(),
            connect: Connect::Refused,
        },
        crate::facts::TcpFact {
            address: "127.0.0.1:3000".into(),
            connect: Connect::Ok { latency_ms: 0.1 },
        },
    ];
    let mut l = listener_of("127.0.0.1:3000", "node", 42, "app.service");
    // Started in the very second of the refusal.
    l.processes[0].start_time = Some("2026-11-20T14:32:10".into());
    t.facts.listener = Some(l);
    let facts = live(
        vec![log_group(
            FailureClass::ConnectRefused,
            Some(refused),
            None,
            1,
        )],
        vec![t],
    );
    let f = top(&facts);
    assert_eq!(f.id, "bind-mismatch", "{f:#?}");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.title.contains("retries 127.0.0.1:3000"), "{}", f.title);
}

/// Log times have whole seconds: a backend that listens now and started in the very second of
/// the first refusal may have started before it. That proves no restart gap; one second later
/// does.
#[test]
fn backend_starting_needs_a_start_beyond_the_tie() {
    let up = "127.0.0.1:3000";
    let facts_with = |start: &str| {
        let mut t = tcp_target(up, Connect::Ok { latency_ms: 0.1 });
        let mut l = listener_of(up, "node", 42, "app.service");
        l.processes[0].start_time = Some(start.into());
        t.facts.listener = Some(l);
        live(
            vec![log_group(FailureClass::ConnectRefused, Some(up), None, 3)],
            vec![t],
        )
    };
    // The first refusal of `log_group` is at 14:32:10.
    assert_ne!(
        top(&facts_with("2026-11-20T14:32:10")).id,
        "backend-starting"
    );
    assert_eq!(
        top(&facts_with("2026-11-20T14:32:11")).id,
        "backend-starting"
    );
}
