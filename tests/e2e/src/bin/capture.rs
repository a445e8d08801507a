//! Stages the mixed incident (`medic_e2e::incident`) and keeps what nginx wrote as an example:
//! `error.log`, `access.log`, the `nginx.conf` that produced them and a README.
//!
//! ```text
//! cargo run -p medic-e2e --bin capture [OUT_DIR]            # examples/502-mixed-incident
//! cargo run -p medic-e2e --bin capture -- php-fpm [OUT_DIR] # examples/php-fpm-incident
//! cargo run -p medic-e2e --bin capture -- tls [OUT_DIR]     # examples/tls-incident
//! ```
//!
//! The files are copied byte for byte; the paths inside them are those of the temporary prefix
//! the run used (`/tmp/nginx-medic-XXXXXX`), so the config and both logs name the same sockets.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use medic_e2e::incident::{MixedIncident, ROUNDS};
use medic_e2e::nginx::{nginx_version, LOG_FORMAT};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("php-fpm") => return capture_other("php-fpm", args.get(1)),
        Some("tls") => return capture_other("tls", args.get(1)),
        _ => {}
    }
    let out = std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/502-mixed-incident"),
        PathBuf::from,
    );
    let incident = MixedIncident::stage();
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
    for (from, name) in [
        (incident.error_log(), "error.log"),
        (incident.access_log(), "access.log"),
        (incident.prefix.conf(), "nginx.conf"),
    ] {
        fs::copy(&from, out.join(name))
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), out.display()));
    }
    fs::write(out.join("README.md"), readme(&incident)).expect("write README.md");
    println!("wrote {}", out.display());
}

fn readme(incident: &MixedIncident) -> String {
    let version = nginx_version();
    let prefix = incident.prefix.display();
    let error_log = fs::read_to_string(incident.error_log()).expect("read error.log");
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# 502-mixed-incident: nine upstream failures, for real

`error.log` and `access.log` were written by a real **{version}** (Debian package, Linux)
serving on 127.0.0.1:{port}, while the upstream side failed in nine different ways, on
loopback only. Nothing in them was edited. `nginx.conf` is the configuration that ran.

Made by `cargo run -p medic-e2e --bin capture` (`tests/e2e/src/bin/capture.rs`; the staging is
`tests/e2e/src/incident.rs`). The run used the temporary prefix `{prefix}` (gone now), hence
the paths in the config and the logs. nginx ran as `nginx -p PREFIX/ -c PREFIX/conf/nginx.conf
-e PREFIX/logs/error.log` with `daemon off;`; run as root, its workers ran as `nobody`
(`user nobody nogroup;`). The error log level is `notice`, so startup and shutdown lines are
there too.

## What was staged

Two requests warmed up (`/ok`, `/limited`: 200), then {ROUNDS} rounds of one request to each
location below, each followed by a `GET /ok` (200, upstream {ok}).

| location | upstream side | class | status | requests |
|---|---|---|---|---|",
        port = incident.port,
        ok = incident.ok_upstream,
    );
    for c in &incident.cases {
        let _ = writeln!(
            r,
            "| `{}` | {} | `{}` | {} | {} |",
            c.location,
            staged(c.class, c.upstream.as_deref()),
            c.class,
            c.status,
            c.requests
        );
    }
    let _ = writeln!(
        r,
        "
## One line per class, as nginx wrote it
"
    );
    for c in &incident.cases {
        let request = format!("request: \"GET {} HTTP/1.1\"", c.location);
        if let Some(line) = error_log.lines().find(|l| l.contains(&request)) {
            let _ = writeln!(r, "`{}`:\n```\n{line}\n```", c.class);
        }
    }
    let _ = writeln!(
        r,
        "
Note the two shapes of a failed `connect()` (nginx 1.22.1): a unix-socket `connect(2)` fails at
once, and nginx logs it as `connect() to unix:PATH failed (...)`, at `[crit]` for any errno
but ECONNREFUSED, EAGAIN, ECONNRESET, ENETDOWN, ENETUNREACH, EHOSTDOWN and EHOSTUNREACH
(`ngx_event_connect_peer`, `src/event/ngx_event_connect.c`), so ENOENT and EACCES are `[crit]`.
A TCP refusal comes back later, on the non-blocking socket, and is logged without the address:
`connect() failed (111: Connection refused)` at `[error]` (`ngx_http_upstream_test_connect`,
`src/http/ngx_http_upstream.c`); the peer is in the `upstream:` field only.

## The access log's format

```
log_format medic '{LOG_FORMAT}';
```

## Reading it

```
nginx-medic logs --log-format '{LOG_FORMAT}' \\
    examples/502-mixed-incident/error.log examples/502-mixed-incident/access.log
```"
    );
    r
}

/// How a class was staged, for the README's table.
fn staged(class: &str, upstream: Option<&str>) -> String {
    let u = upstream.unwrap_or("-");
    match class {
        "connect-refused" => format!("`{u}`: a free port, nothing listening"),
        "socket-missing" => format!("`{u}`: no such file"),
        "connect-permission" => format!("`{u}`: a listening socket with mode 000"),
        "read-timeout" => format!(
            "`{u}`: reads the request, never answers (`proxy_read_timeout 1s`)"
        ),
        "upstream-reset" => format!("`{u}`: reads the request, closes with RST (SO_LINGER 0)"),
        "premature-close" => format!("`{u}`: reads the request, closes without answering"),
        "header-too-big" => {
            format!("`{u}`: a 16 KB response header line (`proxy_buffer_size 4k`)")
        }
        "tls-verify" => format!(
            "`{u}`: `openssl s_server`, self-signed `CN=upstream.test`; nginx trusts another self-signed certificate"
        ),
        "rate-limited" => {
            "none: `limit_req zone=one` (`rate=1r/m`, no burst) rejects before proxying".to_string()
        }
        _ => u.to_string(),
    }
}

/// The PHP-FPM and TLS incidents of `medic_e2e::examples`.
fn capture_other(kind: &str, out: Option<&String>) {
    let (incident, default_dir, title, what) = match kind {
        "php-fpm" => (
            medic_e2e::examples::php_fpm(),
            "php-fpm-incident",
            "php-fpm-incident: a PHP site failing five ways",
            "a real PHP-FPM 8.2 master (two pools) and a socket left by a dead one",
        ),
        _ => (
            medic_e2e::examples::tls(),
            "tls-incident",
            "tls-incident: four https:// upstreams failing, one healthy",
            "`openssl s_server` upstreams with certificates of a test CA, and a plain-HTTP one",
        ),
    };
    let out = out.map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples")
                .join(default_dir)
        },
        PathBuf::from,
    );
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
    let mut files = vec![
        (incident.prefix.error_log(), "error.log"),
        (incident.prefix.access_log(), "access.log"),
        (incident.prefix.conf(), "nginx.conf"),
    ];
    files.extend(incident.extra.iter().cloned());
    for (from, name) in &files {
        fs::copy(from, out.join(name))
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), out.display()));
    }
    let version = nginx_version();
    let prefix = incident.prefix.display();
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# {title}

`error.log` and `access.log` were written by a real **{version}** (Debian package, Linux) on
127.0.0.1:{port}, in front of {what}, on loopback only. Nothing in them was edited; `nginx.conf`
is the configuration that ran{extra}. The run used the temporary prefix `{prefix}` (gone now),
hence the paths inside.

Made by `cargo run -p medic-e2e --bin capture -- {kind}` (`tests/e2e/src/examples.rs`).

Diagnose it (a post-mortem: the files only):

```sh
cargo run --release -- diagnose --no-probe --config examples/{default_dir}/nginx.conf \\
    --error-log examples/{default_dir}/error.log --access-log examples/{default_dir}/access.log
```

| location | upstream side | status | requests |
|---|---|---|---|",
        port = incident.port,
        extra = if incident.extra.is_empty() {
            ""
        } else {
            "; `php-fpm.log` is the PHP-FPM master's log"
        },
    );
    for s in &incident.staged {
        let _ = writeln!(
            r,
            "| `{}` | {} | {} | {} |",
            s.location, s.upstream_side, s.status, s.requests
        );
    }
    fs::write(out.join("README.md"), r).expect("write README.md");
    println!("wrote {}", out.display());
}
