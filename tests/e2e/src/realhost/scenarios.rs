//! Real backend failures staged inside a freshly booted [`RealHost`].
//!
//! Each function makes the failure actually happen (systemd gives up on a crash loop, the kernel
//! OOM-kills a process, pm2 marks an app `errored`, logrotate rotates the incident into a `.gz`)
//! and checks that it did from systemd's, pm2's, nginx's or the kernel's own output, panicking
//! with that output if not. It returns what a test needs to assert on the diagnosis.
//!
//! nginx is the Debian package's, managed by systemd: `/etc/nginx/sites-enabled/default` is
//! replaced by a site ([`Site`]) and applied with `systemctl reload nginx`. Requests are made
//! with curl inside the container. The access log (`/var/log/nginx/access.log`) uses
//! [`crate::nginx::LOG_FORMAT`] (with `$upstream_addr $upstream_status`); the error log is the
//! package's `/var/log/nginx/error.log`.

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, SystemTime};

use super::RealHost;
use crate::nginx::LOG_FORMAT;
use crate::wait_until;

/// The systemd unit of the Python backend.
pub const UNIT: &str = "my-backend.service";
/// Where the Python backend listens (nginx proxies `/` here).
pub const BACKEND: &str = "127.0.0.1:8000";
/// The pm2 app's name, its user, its `PM2_HOME` and its port.
pub const PM2_APP: &str = "orders-api";
pub const PM2_USER: &str = "deploy";
pub const PM2_HOME: &str = "/home/deploy/.pm2";
pub const PM2_BACKEND: &str = "127.0.0.1:3000";
/// PHP-FPM's socket as the package configures it, and the one an old config still names.
pub const FPM_SOCKET: &str = "/run/php/php8.2-fpm.sock";
pub const FPM_OLD_SOCKET: &str = "/run/php/php8.1-fpm.sock";
pub const ERROR_LOG: &str = "/var/log/nginx/error.log";
pub const ACCESS_LOG: &str = "/var/log/nginx/access.log";

/// What a staging function leaves behind.
#[derive(Debug, Clone)]
pub struct Staged {
    pub scenario: &'static str,
    /// The nginx upstream target that fails: `127.0.0.1:8000`, `unix:/run/php/...`.
    pub upstream: String,
    /// The systemd unit behind it, if any.
    pub unit: Option<&'static str>,
    /// The pm2 app behind it, if any.
    pub pm2_app: Option<&'static str>,
    /// The HTTP status curl got through nginx at the failure.
    pub status: u16,
    /// When the failure happened (just before the failing request or the kill).
    pub failed_at: SystemTime,
    /// What systemd / pm2 / the kernel said, as recorded while staging (e.g. `ActiveState`).
    pub facts: BTreeMap<String, String>,
}

/// The site nginx serves (`/etc/nginx/sites-enabled/default`).
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// `location / { proxy_pass http://127.0.0.1:PORT; }`
    pub proxy_port: Option<u16>,
    /// `location /php/ { fastcgi_pass unix:SOCKET; }`
    pub fastcgi_socket: Option<&'static str>,
    /// `proxy_read_timeout` in the proxied location (nginx's default 60s otherwise).
    pub proxy_read_timeout: Option<&'static str>,
}

impl Site {
    pub fn proxy(port: u16) -> Site {
        Site {
            proxy_port: Some(port),
            ..Site::default()
        }
    }

    pub fn fastcgi(socket: &'static str) -> Site {
        Site {
            fastcgi_socket: Some(socket),
            ..Site::default()
        }
    }

    /// The config text. `/static/` serves `/var/www/static` (nothing is there: a request makes a
    /// 404 with an `open() ... failed (2: No such file or directory)` error line).
    pub fn render(&self) -> String {
        let mut c = format!(
            "# Written by medic-e2e (tests/e2e/src/realhost/scenarios.rs).\n\
             log_format medic '{LOG_FORMAT}';\n\n\
             server {{\n\
             \x20   listen 80 default_server;\n\
             \x20   server_name _;\n\
             \x20   access_log {ACCESS_LOG} medic;\n\n\
             \x20   location /static/ {{\n\
             \x20       root /var/www;\n\
             \x20   }}\n"
        );
        if let Some(port) = self.proxy_port {
            c.push_str(&format!(
                "\n    location / {{\n        proxy_pass http://127.0.0.1:{port};\n"
            ));
            if let Some(t) = self.proxy_read_timeout {
                c.push_str(&format!("        proxy_read_timeout {t};\n"));
            }
            c.push_str("    }\n");
        }
        if let Some(sock) = self.fastcgi_socket {
            c.push_str(&format!(
                "\n    location /php/ {{\n        include fastcgi_params;\n        \
                 fastcgi_param SCRIPT_FILENAME /var/www/html/index.php;\n        \
                 fastcgi_pass unix:{sock};\n    }}\n"
            ));
        }
        c.push_str("}\n");
        c
    }
}

/// The Python backend: `serve` answers on 127.0.0.1:8000 (`/crash` exits 1, `/eat` allocates
/// 200 MB, `/slow` sleeps 10 s); `broken` prints a fatal line and exits 1.
const BACKEND_PY: &str = r#"import os, sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

if sys.argv[1] == "broken":
    print("fatal: config broken, exiting", file=sys.stderr, flush=True)
    sys.exit(1)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/crash":
            print("fatal: unhandled error on /crash, exiting", file=sys.stderr, flush=True)
            os._exit(1)
        if self.path == "/eat":
            hog = []
            for _ in range(200):
                hog.append(b"x" * (1 << 20))
        if self.path == "/slow":
            time.sleep(10)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

print("my-backend listening on 127.0.0.1:8000", file=sys.stderr, flush=True)
ThreadingHTTPServer(("127.0.0.1", 8000), Handler).serve_forever()
"#;

/// The pm2 app: needs `./config/database.json`, listens on `$PORT`.
const ORDERS_JS: &str = r#"const db = require('./config/database.json');
const http = require('http');
const port = Number(process.env.PORT || 3000);
http.createServer((req, res) => res.end('orders ok\n')).listen(port, '127.0.0.1', () => {
  console.log(`orders-api listening on 127.0.0.1:${port} (db ${db.host})`);
});
"#;

/// The pm2 ecosystem file of `orders-api` (pm2_errored).
const ORDERS_ECOSYSTEM: &str = r#"module.exports = {
  apps: [{
    name: 'orders-api',
    script: '/srv/orders/app.js',
    max_restarts: 3,
    min_uptime: 5000,
    env: { PORT: 3000, ORDERS_API_TOKEN: 'rh-pm2-secret-9Kd' },
  }],
};
"#;

/// Polls `ready` (every 20 ms) for `timeout`; panics with `what` and `context()` if it never holds.
fn wait_for(
    timeout: Duration,
    what: &str,
    ready: impl FnMut() -> bool,
    context: impl FnOnce() -> String,
) {
    if !wait_until(timeout, ready) {
        panic!(
            "staging: {what} did not happen within {timeout:?}\n{}",
            context()
        );
    }
}

fn show(host: &RealHost, unit: &str) -> BTreeMap<String, String> {
    host.unit_show(
        unit,
        &[
            "ActiveState",
            "SubState",
            "Result",
            "NRestarts",
            "ExecMainCode",
            "ExecMainStatus",
            "MainPID",
        ],
    )
}

/// Host PIDs of the nginx master's children (its workers).
fn nginx_workers(host: &RealHost) -> Vec<u32> {
    let main: u32 = host
        .unit_prop("nginx.service", "MainPID")
        .parse()
        .unwrap_or(0);
    assert!(main != 0, "nginx.service has no main process");
    let master = host.host_pid_of(main);
    fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Replaces the default site, checks it with `nginx -t`, `systemctl reload nginx`, and waits
/// until the workers that ran the old config are gone.
pub fn install_site(host: &RealHost, site: &Site) {
    host.write_file("/etc/nginx/sites-enabled/default", site.render(), 0o644);
    host.exec_ok(&["nginx", "-t", "-q"]);
    let old = nginx_workers(host);
    host.exec_ok(&["systemctl", "reload", "nginx"]);
    wait_for(
        Duration::from_secs(10),
        "nginx reload (new workers, old ones gone)",
        || {
            let now = nginx_workers(host);
            !now.is_empty() && now.iter().all(|w| !old.contains(w))
        },
        || {
            host.exec(&["systemctl", "status", "nginx", "--no-pager"])
                .stdout
                .iter()
                .map(|&b| b as char)
                .collect()
        },
    );
}

/// Credentials the staged backends carry (the unit's `Environment=`, the pm2 app's `env`), as
/// real ones do: `nginx-medic collect` must leave them out of its bundle.
pub const UNIT_SECRET: &str = "rh-unit-secret-7Qx";
pub const PM2_SECRET: &str = "rh-pm2-secret-9Kd";

/// Writes the backend and `my-backend.service` with the given `[Service]` extras and
/// `[Unit]` extras, and runs `systemctl daemon-reload`.
fn install_backend(host: &RealHost, mode: &str, unit_extra: &str, service_extra: &str) {
    host.write_file("/srv/my-backend/app.py", BACKEND_PY, 0o644);
    host.write_file(
        &format!("/etc/systemd/system/{UNIT}"),
        format!(
            "[Unit]\nDescription=my-backend (medic real-host scenario)\nAfter=network.target\n{unit_extra}\n\
             [Service]\nExecStart=/usr/bin/python3 /srv/my-backend/app.py {mode}\n\
             Environment=MY_BACKEND_API_TOKEN={UNIT_SECRET}\n{service_extra}\n\
             [Install]\nWantedBy=multi-user.target\n"
        ),
        0o644,
    );
    host.exec_ok(&["systemctl", "daemon-reload"]);
}

/// Starts the serving backend and waits until it answers 200 directly.
fn start_serving_backend(host: &RealHost) {
    host.exec_ok(&["systemctl", "start", UNIT]);
    wait_for(
        Duration::from_secs(15),
        "my-backend answering on 127.0.0.1:8000",
        || host.curl("http://127.0.0.1:8000/") == 200,
        || host.journal(UNIT),
    );
}

fn staged(
    scenario: &'static str,
    upstream: &str,
    status: u16,
    failed_at: SystemTime,
    facts: BTreeMap<String, String>,
) -> Staged {
    Staged {
        scenario,
        upstream: upstream.to_string(),
        unit: Some(UNIT),
        pm2_app: None,
        status,
        failed_at,
        facts,
    }
}

fn expect_status(host: &RealHost, url: &str, want: u16, why: &str) -> u16 {
    let got = host.curl(url);
    assert_eq!(
        got,
        want,
        "staging: {why}: curl {url} got {got}, not {want}\n--- error.log ---\n{}",
        host.read_text(ERROR_LOG)
    );
    got
}

/// `my-backend.service` exits 1 at start (`fatal: config broken, exiting`) and is restarted every
/// 200 ms until systemd's start limit (3 in 10 s) stops it: `ActiveState=failed`, journal
/// `Start request repeated too quickly`. nginx answers 502.
pub fn crash_loop(host: &RealHost) -> Staged {
    install_site(host, &Site::proxy(8000));
    install_backend(
        host,
        "broken",
        "StartLimitIntervalSec=10\nStartLimitBurst=3",
        "Restart=on-failure\nRestartSec=200ms",
    );
    let failed_at = SystemTime::now();
    // Type=simple: start returns once the process is forked; the loop runs on.
    host.exec_ok(&["systemctl", "start", UNIT]);
    wait_for(
        Duration::from_secs(15),
        "my-backend start limit hit (ActiveState=failed)",
        || host.unit_prop(UNIT, "ActiveState") == "failed",
        || format!("{:?}\n{}", show(host, UNIT), host.journal(UNIT)),
    );
    let facts = show(host, UNIT);
    // systemd 252 keeps the last exit's result, not `start-limit-hit` (as real-host.md measured).
    assert_eq!(facts["Result"], "exit-code", "{facts:?}");
    let journal = host.journal(UNIT);
    for want in [
        "fatal: config broken, exiting",
        "Start request repeated too quickly",
        "status=1/FAILURE",
    ] {
        assert!(
            journal.contains(want),
            "journal of {UNIT} lacks {want:?}:\n{journal}"
        );
    }
    let status = expect_status(host, "http://127.0.0.1/", 502, "crash loop");
    staged("crash_loop", BACKEND, status, failed_at, facts)
}

/// The backend serves, a request to `/crash` makes it exit 1 (after a last word on stderr);
/// systemd restarts it after 3 s. A request in the gap gets 502; then it is back:
/// `NRestarts=1`, active, 200.
pub fn crash_restarted(host: &RealHost) -> Staged {
    install_site(host, &Site::proxy(8000));
    install_backend(host, "serve", "", "Restart=on-failure\nRestartSec=3");
    start_serving_backend(host);
    expect_status(
        host,
        "http://127.0.0.1/",
        200,
        "backend up before the crash",
    );
    let failed_at = SystemTime::now();
    let crash = host.curl("http://127.0.0.1/crash");
    assert_eq!(crash, 502, "the request that crashes the backend");
    let gap = host.show_while_restarting();
    let status = expect_status(
        host,
        "http://127.0.0.1/",
        502,
        "request while systemd waits to restart",
    );
    // A second refusal in the gap: the refusals then hurt more clients than the one crashed
    // request and lead the incident. With one of each, which leads depended on the polls below
    // (none landed in the gap when CI was loaded: `backend-crash` led).
    expect_status(
        host,
        "http://127.0.0.1/",
        502,
        "a second request while systemd waits to restart",
    );
    wait_for(
        Duration::from_secs(15),
        "my-backend restarted (NRestarts=1, active)",
        || {
            let s = show(host, UNIT);
            s["NRestarts"] == "1" && s["ActiveState"] == "active"
        },
        || format!("{:?}\n{}", show(host, UNIT), host.journal(UNIT)),
    );
    wait_for(
        Duration::from_secs(15),
        "nginx answering 200 again",
        || host.curl("http://127.0.0.1/") == 200,
        || host.journal(UNIT),
    );
    let journal = host.journal(UNIT);
    for want in [
        "fatal: unhandled error on /crash, exiting",
        "status=1/FAILURE",
    ] {
        assert!(
            journal.contains(want),
            "journal of {UNIT} lacks {want:?}:\n{journal}"
        );
    }
    let mut facts = show(host, UNIT);
    for (k, v) in gap {
        facts.insert(format!("gap.{k}"), v);
    }
    staged("crash_restarted", BACKEND, status, failed_at, facts)
}

impl RealHost {
    /// `systemctl show` of my-backend while it waits to be restarted (`SubState=auto-restart`).
    fn show_while_restarting(&self) -> BTreeMap<String, String> {
        wait_for(
            Duration::from_secs(3),
            "my-backend in auto-restart",
            || self.unit_prop(UNIT, "SubState") == "auto-restart",
            || format!("{:?}", show(self, UNIT)),
        );
        let s = show(self, UNIT);
        assert_eq!(s["ActiveState"], "activating", "{s:?}");
        assert_eq!(s["Result"], "exit-code", "{s:?}");
        assert_eq!(s["ExecMainStatus"], "1", "{s:?}");
        s
    }
}

/// The backend serves, then `systemctl stop my-backend.service`: inactive, 502.
pub fn stopped_by_hand(host: &RealHost) -> Staged {
    install_site(host, &Site::proxy(8000));
    install_backend(host, "serve", "", "Restart=on-failure");
    start_serving_backend(host);
    expect_status(host, "http://127.0.0.1/", 200, "backend up before the stop");
    let failed_at = SystemTime::now();
    host.exec_ok(&["systemctl", "stop", UNIT]);
    let facts = show(host, UNIT);
    assert_eq!(facts["ActiveState"], "inactive", "{facts:?}");
    assert_eq!(facts["SubState"], "dead", "{facts:?}");
    let status = expect_status(host, "http://127.0.0.1/", 502, "backend stopped");
    staged("stopped_by_hand", BACKEND, status, failed_at, facts)
}

/// The backend (`Restart=no`) is moved into a 50 MB host v1 memory cgroup; a request to `/eat`
/// makes it allocate 200 MB and the kernel's OOM killer kills it: `Result=signal`,
/// `ExecMainStatus=9`, `dmesg` has `Killed process <host pid> (python3)`. nginx answers 502.
/// Facts: `host_pid`, `container_pid`, the dmesg lines.
pub fn oom_killed(host: &mut RealHost) -> Staged {
    install_site(host, &Site::proxy(8000));
    install_backend(host, "serve", "", "Restart=no");
    start_serving_backend(host);
    expect_status(
        host,
        "http://127.0.0.1/",
        200,
        "backend up before the OOM kill",
    );
    let (container_pid, host_pid) = host.limit_memory_of_unit(UNIT, 50 * 1024 * 1024);
    let failed_at = SystemTime::now();
    let status = host.curl("http://127.0.0.1/eat");
    assert_eq!(
        status, 502,
        "the request that makes the backend allocate 200 MB"
    );
    wait_for(
        Duration::from_secs(10),
        "my-backend killed (ActiveState=failed)",
        || host.unit_prop(UNIT, "ActiveState") == "failed",
        || format!("{:?}\n{}", show(host, UNIT), host.journal(UNIT)),
    );
    let mut facts = show(host, UNIT);
    assert_eq!(facts["Result"], "signal", "{facts:?}");
    assert_eq!(facts["ExecMainStatus"], "9", "{facts:?}");
    let dmesg = host.exec_ok(&["dmesg", "--time-format", "iso"]);
    let killed = format!("Killed process {host_pid} (python3)");
    let lines: Vec<&str> = dmesg
        .lines()
        .filter(|l| {
            l.contains(&killed)
                || (l.contains("oom-kill:") && l.contains(&format!("pid={host_pid},")))
        })
        .collect();
    assert!(
        lines.iter().any(|l| l.contains(&killed)),
        "dmesg inside lacks {killed:?}:\n{}",
        dmesg.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    facts.insert("host_pid".into(), host_pid.to_string());
    facts.insert("container_pid".into(), container_pid.to_string());
    facts.insert("dmesg".into(), lines.join("\n"));
    let status = expect_status(host, "http://127.0.0.1/", 502, "backend OOM-killed");
    staged("oom_killed", BACKEND, status, failed_at, facts)
}

/// The backend answers `/slow` after 10 s; nginx has `proxy_read_timeout 2s`: 504.
pub fn slow_unit(host: &RealHost) -> Staged {
    let site = Site {
        proxy_read_timeout: Some("2s"),
        ..Site::proxy(8000)
    };
    install_site(host, &site);
    install_backend(host, "serve", "", "Restart=on-failure");
    start_serving_backend(host);
    expect_status(host, "http://127.0.0.1/", 200, "backend up");
    let failed_at = SystemTime::now();
    let status = expect_status(host, "http://127.0.0.1/slow", 504, "slow backend");
    let err = host.read_text(ERROR_LOG);
    assert!(
        err.contains("upstream timed out (110: Connection timed out)"),
        "{err}"
    );
    let facts = show(host, UNIT);
    assert_eq!(facts["ActiveState"], "active", "{facts:?}");
    staged("slow_unit", BACKEND, status, failed_at, facts)
}

/// php8.2-fpm is installed but stopped; nginx still names PHP 8.1's socket: 502
/// (`connect() to unix:/run/php/php8.1-fpm.sock failed (2: No such file or directory)`).
pub fn fpm_old_socket(host: &RealHost) -> Staged {
    host.write_file(
        "/var/www/html/index.php",
        "<?php echo \"php ok\\n\";\n",
        0o644,
    );
    host.exec_ok(&["systemctl", "stop", "php8.2-fpm"]);
    install_site(host, &Site::fastcgi(FPM_OLD_SOCKET));
    let facts = show(host, "php8.2-fpm.service");
    assert_eq!(facts["ActiveState"], "inactive", "{facts:?}");
    let failed_at = SystemTime::now();
    let status = expect_status(host, "http://127.0.0.1/php/", 502, "old FPM socket");
    let err = host.read_text(ERROR_LOG);
    assert!(
        err.contains("php8.1-fpm.sock failed (2: No such file or directory)"),
        "{err}"
    );
    Staged {
        scenario: "fpm_old_socket",
        upstream: format!("unix:{FPM_OLD_SOCKET}"),
        unit: Some("php8.2-fpm.service"),
        pm2_app: None,
        status,
        failed_at,
        facts,
    }
}

/// php8.2-fpm runs under systemd, but the www pool's socket is `root:root 0600`: nginx's
/// workers (www-data) get `(13: Permission denied)`: 502.
pub fn fpm_socket_wrong_owner(host: &RealHost) -> Staged {
    host.write_file(
        "/var/www/html/index.php",
        "<?php echo \"php ok\\n\";\n",
        0o644,
    );
    let pool = "/etc/php/8.2/fpm/pool.d/www.conf";
    let text = host.read_text(pool);
    let mut seen = 0;
    let edited: String = text
        .lines()
        .map(|l| {
            let key = l
                .trim_start_matches(';')
                .split('=')
                .next()
                .unwrap_or("")
                .trim();
            let new = match key {
                "listen.owner" => Some("listen.owner = root"),
                "listen.group" => Some("listen.group = root"),
                "listen.mode" => Some("listen.mode = 0600"),
                _ => None,
            };
            match new {
                Some(n) => {
                    seen += 1;
                    format!("{n}\n")
                }
                None => format!("{l}\n"),
            }
        })
        .collect();
    assert_eq!(
        seen, 3,
        "{pool} lacks listen.owner/group/mode lines:\n{text}"
    );
    host.write_file(pool, edited, 0o644);
    host.exec_ok(&["systemctl", "restart", "php8.2-fpm"]);
    let stat = host.exec_ok(&["stat", "-c", "%U:%G %a", FPM_SOCKET]);
    assert_eq!(stat.trim(), "root:root 600", "{FPM_SOCKET}");
    install_site(host, &Site::fastcgi(FPM_SOCKET));
    let facts = show(host, "php8.2-fpm.service");
    assert_eq!(facts["ActiveState"], "active", "{facts:?}");
    let failed_at = SystemTime::now();
    let status = expect_status(
        host,
        "http://127.0.0.1/php/",
        502,
        "FPM socket root:root 0600",
    );
    let err = host.read_text(ERROR_LOG);
    assert!(
        err.contains("php8.2-fpm.sock failed (13: Permission denied)"),
        "{err}"
    );
    Staged {
        scenario: "fpm_socket_wrong_owner",
        upstream: format!("unix:{FPM_SOCKET}"),
        unit: Some("php8.2-fpm.service"),
        pm2_app: None,
        status,
        failed_at,
        facts,
    }
}

/// `pm2 ARGS...` as `deploy`, under `env -i`, in a transient scope of the container's systemd
/// (so the daemon it spawns lives in a unit, as from a login session, not in the test's cgroup).
pub fn pm2(host: &RealHost, args: &[&str]) -> String {
    let home = "HOME=/home/deploy";
    let pm2_home = format!("PM2_HOME={PM2_HOME}");
    let mut argv = vec![
        "systemd-run",
        "--quiet",
        "--scope",
        "--collect",
        "--",
        "runuser",
        "-u",
        PM2_USER,
        "--",
        "env",
        "-i",
        home,
        &pm2_home,
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "PORT=3000",
        "pm2",
    ];
    argv.extend_from_slice(args);
    host.exec_ok(&argv)
}

/// `pm2 jlist` entry of the app as JSON.
pub fn pm2_app(host: &RealHost) -> serde_json::Value {
    let text = pm2(host, &["jlist"]);
    // pm2 may print a banner before the JSON on its first call; the list is the last line.
    let json = text
        .lines()
        .rev()
        .find(|l| l.starts_with('['))
        .unwrap_or("[]");
    let list: serde_json::Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("pm2 jlist is not JSON ({e}):\n{text}"));
    list.as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == PM2_APP).cloned())
        .unwrap_or(serde_json::Value::Null)
}

fn pm2_status(host: &RealHost) -> String {
    pm2_app(host)["pm2_env"]["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn install_orders(host: &RealHost, with_config: bool) {
    host.write_file("/srv/orders/app.js", ORDERS_JS, 0o644);
    if with_config {
        host.write_file(
            "/srv/orders/config/database.json",
            "{\"host\": \"127.0.0.1\", \"port\": 5432}\n",
            0o644,
        );
    }
    host.exec_ok(&["chown", "-R", "deploy:deploy", "/srv/orders"]);
}

fn pm2_facts(host: &RealHost) -> BTreeMap<String, String> {
    let app = pm2_app(host);
    let env = &app["pm2_env"];
    let mut f = BTreeMap::new();
    for k in [
        "status",
        "restart_time",
        "unstable_restarts",
        "exit_code",
        "pm_err_log_path",
        "pm_out_log_path",
    ] {
        f.insert(
            k.to_string(),
            env[k].to_string().trim_matches('"').to_string(),
        );
    }
    f.insert("pid".into(), app["pid"].to_string());
    f
}

fn pm2_staged(
    scenario: &'static str,
    status: u16,
    failed_at: SystemTime,
    facts: BTreeMap<String, String>,
) -> Staged {
    Staged {
        scenario,
        upstream: PM2_BACKEND.to_string(),
        unit: None,
        pm2_app: Some(PM2_APP),
        status,
        failed_at,
        facts,
    }
}

/// pm2 (as `deploy`, `PM2_HOME=/home/deploy/.pm2`) runs `/srv/orders/app.js` from
/// `/srv/orders/ecosystem.config.js` (`max_restarts: 3`, `min_uptime: 5000`, `PORT=3000`); the
/// app requires `./config/database.json`, which is missing, so it dies at once every time and
/// pm2 gives up: status `errored`. nginx proxies to 127.0.0.1:3000: 502.
pub fn pm2_errored(host: &RealHost) -> Staged {
    install_site(host, &Site::proxy(3000));
    install_orders(host, false);
    let failed_at = SystemTime::now();
    // pm2 5's CLI has `--max-restarts` but no `--min-uptime`: the app dies at `require`, yet
    // node under pm2 on a busy 2-core machine can take about 1 s (pm2's default min uptime) to
    // get there. The ecosystem file (as real deployments have) makes every exit unstable.
    host.write_file("/srv/orders/ecosystem.config.js", ORDERS_ECOSYSTEM, 0o644);
    pm2(host, &["start", "/srv/orders/ecosystem.config.js"]);
    wait_for(
        Duration::from_secs(20),
        "pm2 app errored",
        || pm2_status(host) == "errored",
        || format!("{:#}", pm2_app(host)),
    );
    let facts = pm2_facts(host);
    let err_log = host.read_text(&format!("/home/deploy/.pm2/logs/{PM2_APP}-error.log"));
    assert!(
        err_log.contains("Cannot find module './config/database.json'"),
        "{err_log}"
    );
    let pm2_log = host.read_text(&format!("{PM2_HOME}/pm2.log"));
    assert!(pm2_log.contains("too many unstable restarts"), "{pm2_log}");
    let status = expect_status(host, "http://127.0.0.1/", 502, "pm2 app errored");
    pm2_staged("pm2_errored", status, failed_at, facts)
}

/// A working pm2 app (200 through nginx), then `pm2 stop orders-api`: status `stopped`, 502.
pub fn pm2_stopped(host: &RealHost) -> Staged {
    install_site(host, &Site::proxy(3000));
    install_orders(host, true);
    pm2(host, &["start", "/srv/orders/app.js", "--name", PM2_APP]);
    wait_for(
        Duration::from_secs(20),
        "pm2 app answering through nginx",
        || host.curl("http://127.0.0.1/") == 200,
        || format!("{:#}", pm2_app(host)),
    );
    let failed_at = SystemTime::now();
    pm2(host, &["stop", PM2_APP]);
    assert_eq!(pm2_status(host), "stopped");
    let facts = pm2_facts(host);
    let status = expect_status(host, "http://127.0.0.1/", 502, "pm2 app stopped");
    pm2_staged("pm2_stopped", status, failed_at, facts)
}

/// A 502 incident (my-backend stopped), then two rotations with the package's own
/// `/etc/logrotate.d/nginx` (`logrotate -f`, which renames, delaycompresses and sends USR1 through
/// `invoke-rc.d nginx rotate`). Between them one 404 (`/static/...`) gives the fresh error.log a
/// line, else `notifempty` would skip it. The incident's lines end up only in
/// `/var/log/nginx/error.log.2.gz` (checked with zcat) and `access.log.2.gz`.
pub fn rotated_gz(host: &RealHost) -> Staged {
    let mut s = stopped_by_hand(host);
    let incident = "connect() failed (111: Connection refused)";
    assert!(host.read_text(ERROR_LOG).contains(incident));
    logrotate(host);
    // The new error.log is written once nginx has reopened it (USR1 is handled asynchronously).
    wait_for(
        Duration::from_secs(10),
        "a line in the reopened error.log",
        || {
            host.curl("http://127.0.0.1/static/missing.txt");
            !host.read_text(ERROR_LOG).is_empty()
        },
        || host.exec_ok(&["ls", "-l", "/var/log/nginx"]),
    );
    logrotate(host);
    let gz = host.exec_ok(&["zcat", "/var/log/nginx/error.log.2.gz"]);
    assert!(
        gz.contains(incident),
        "error.log.2.gz lacks the incident:\n{gz}"
    );
    for plain in ["/var/log/nginx/error.log.1", ERROR_LOG] {
        let text = host.read_text(plain);
        assert!(
            !text.contains(incident),
            "{plain} still has the incident:\n{text}"
        );
    }
    let agz = host.exec_ok(&["zcat", "/var/log/nginx/access.log.2.gz"]);
    assert!(
        agz.contains(" 502 "),
        "access.log.2.gz lacks the 502s:\n{agz}"
    );
    s.scenario = "rotated_gz";
    s.facts
        .insert("ls".into(), host.exec_ok(&["ls", "-l", "/var/log/nginx"]));
    s
}

fn logrotate(host: &RealHost) {
    let before = host.exec_ok(&["ls", "/var/log/nginx"]);
    host.exec_ok(&["logrotate", "-f", "/etc/logrotate.d/nginx"]);
    let after = host.exec_ok(&["ls", "/var/log/nginx"]);
    assert_ne!(before, after, "logrotate -f rotated nothing");
}

/// The backend up: 200 through nginx.
pub fn healthy(host: &RealHost) -> Staged {
    install_site(host, &Site::proxy(8000));
    install_backend(host, "serve", "", "Restart=on-failure");
    start_serving_backend(host);
    let at = SystemTime::now();
    let status = expect_status(host, "http://127.0.0.1/", 200, "healthy backend");
    let facts = show(host, UNIT);
    assert_eq!(facts["ActiveState"], "active", "{facts:?}");
    staged("healthy", BACKEND, status, at, facts)
}
