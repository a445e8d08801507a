//! The mixed incident: one nginx, one location per failure class, every class of the log-only
//! diagnosis produced for real.
//!
//! | location | upstream side | class | status |
//! |---|---|---|---|
//! | `/refused` | a free port, nothing listening | `connect-refused` | 502 |
//! | `/missing` | `unix:` path that does not exist | `socket-missing` | 502 |
//! | `/denied` | `unix:` socket with mode 000 | `connect-permission` | 502 |
//! | `/timeout` | reads the request, never answers; `proxy_read_timeout 1s` | `read-timeout` | 504 |
//! | `/reset` | reads the request, closes with RST | `upstream-reset` | 502 |
//! | `/closed` | reads the request, closes with FIN | `premature-close` | 502 |
//! | `/big-header` | 16 KB header line; `proxy_buffer_size 4k` | `header-too-big` | 502 |
//! | `/tls` | `openssl s_server`, certificate nginx does not trust | `tls-verify` | 502 |
//! | `/limited` | `limit_req` at 1r/m, no burst | `rate-limited` | 503 |
//!
//! plus `/ok`, a healthy upstream, so the access log also holds successes.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::nginx::{self, Nginx, Prefix};
use crate::stubs::{Behavior, DeniedSocket, TcpStub};
use crate::tls::{SelfSigned, TlsServer};
use crate::{free_port, http};

/// How many times each failing location is requested.
pub const ROUNDS: usize = 2;

/// One staged failure.
#[derive(Clone, Debug)]
pub struct Case {
    /// The location path (exact match) that fails.
    pub location: &'static str,
    /// Its class ID (`causes.md` §1).
    pub class: &'static str,
    /// The peer as nginx names it (`127.0.0.1:PORT`, `unix:/path`); `None` when nginx answers
    /// before choosing an upstream (limit_req).
    pub upstream: Option<String>,
    /// The status nginx answers with.
    pub status: u16,
    /// Substrings that the error-log line of this failure contains, all of them.
    pub nginx_says: Vec<String>,
    /// Requests answered with `status`.
    pub requests: usize,
}

/// The incident after nginx has stopped: its prefix (logs, config) and what was staged.
pub struct MixedIncident {
    pub prefix: Prefix,
    pub conf: String,
    pub port: u16,
    pub ok_upstream: String,
    pub cases: Vec<Case>,
}

impl MixedIncident {
    /// Starts the upstream side and nginx, sends the requests (checking each status), stops
    /// nginx and the upstreams, and returns the prefix with the logs.
    pub fn stage() -> MixedIncident {
        let prefix = Prefix::new();

        let ok = TcpStub::start(Behavior::Ok);
        let hang = TcpStub::start(Behavior::Hang);
        let reset = TcpStub::start(Behavior::Reset);
        let close = TcpStub::start(Behavior::Close);
        let big = TcpStub::start(Behavior::BigHeader(16 * 1024));
        let refused = format!("127.0.0.1:{}", free_port());
        let missing = prefix.join("missing.sock");
        let missing_addr = format!("unix:{}", missing.display());
        let denied = DeniedSocket::bind(&prefix.join("denied.sock"));

        fs::create_dir(prefix.join("tls")).expect("create tls dir");
        let upstream_id = SelfSigned::create(&prefix.join("tls"), "upstream", "upstream.test");
        // The trust anchor nginx gets: a valid self-signed certificate, but not the upstream's.
        let other_ca = SelfSigned::create(&prefix.join("tls"), "other-ca", "medic-e2e other CA");
        let tls = TlsServer::start(&upstream_id, &prefix.join("tls/s_server.log"));

        let port = free_port();
        let http_body = format!(
            r#"    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;

    server {{
        listen 127.0.0.1:{port};
        server_name app.test;

        location = /ok {{
            proxy_pass http://{ok};
        }}
        location = /refused {{
            proxy_pass http://{refused};
        }}
        location = /missing {{
            proxy_pass http://{missing_addr}:;
        }}
        location = /denied {{
            proxy_pass http://{denied}:;
        }}
        location = /timeout {{
            proxy_read_timeout 1s;
            proxy_pass http://{hang};
        }}
        location = /reset {{
            proxy_pass http://{reset};
        }}
        location = /closed {{
            proxy_pass http://{close};
        }}
        location = /big-header {{
            proxy_buffer_size 4k;
            proxy_pass http://{big};
        }}
        location = /tls {{
            proxy_pass https://{tls};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {trusted};
            proxy_ssl_name upstream.test;
            proxy_ssl_server_name on;
        }}
        location = /limited {{
            limit_req zone=one;
            proxy_pass http://{ok};
        }}
    }}"#,
            ok = ok.addr(),
            denied = denied.addr(),
            hang = hang.addr(),
            reset = reset.addr(),
            close = close.addr(),
            big = big.addr(),
            tls = tls.addr(),
            trusted = other_ca.cert.display(),
        );
        let conf = nginx::config(&prefix, &http_body);

        let on_read = "while reading response header from upstream";
        let upstream_field = |scheme: &str, addr: &str, loc: &str| {
            // `upstream: "http://127.0.0.1:P/refused"`, `upstream: "http://unix:/p/x.sock:/missing"`.
            let sep = if addr.starts_with("unix:") { ":" } else { "" };
            format!("upstream: \"{scheme}://{addr}{sep}{loc}\"")
        };
        let case = |location: &'static str,
                    class: &'static str,
                    upstream: &str,
                    status: u16,
                    says: &[&str]| {
            let scheme = if location == "/tls" { "https" } else { "http" };
            let mut nginx_says: Vec<String> = says.iter().map(|s| s.to_string()).collect();
            nginx_says.push(upstream_field(scheme, upstream, location));
            Case {
                location,
                class,
                upstream: Some(upstream.to_string()),
                status,
                nginx_says,
                requests: ROUNDS,
            }
        };
        let cases = vec![
            case(
                "/refused",
                "connect-refused",
                &refused,
                502,
                &["connect() failed (111: Connection refused) while connecting to upstream"],
            ),
            case(
                "/missing",
                "socket-missing",
                &missing_addr,
                502,
                &[&format!(
                    "connect() to {missing_addr} failed (2: No such file or directory) while connecting to upstream"
                )],
            ),
            case(
                "/denied",
                "connect-permission",
                &denied.addr(),
                502,
                &[&format!(
                    "connect() to {} failed (13: Permission denied) while connecting to upstream",
                    denied.addr()
                )],
            ),
            case(
                "/timeout",
                "read-timeout",
                &hang.addr(),
                504,
                &[&format!("upstream timed out (110: Connection timed out) {on_read}")],
            ),
            case(
                "/reset",
                "upstream-reset",
                &reset.addr(),
                502,
                &[&format!("recv() failed (104: Connection reset by peer) {on_read}")],
            ),
            case(
                "/closed",
                "premature-close",
                &close.addr(),
                502,
                &[&format!("upstream prematurely closed connection {on_read}")],
            ),
            case(
                "/big-header",
                "header-too-big",
                &big.addr(),
                502,
                &[&format!("upstream sent too big header {on_read}")],
            ),
            case(
                "/tls",
                "tls-verify",
                &tls.addr(),
                502,
                &[
                    "upstream SSL certificate verify error: (",
                    "while SSL handshaking to upstream",
                ],
            ),
            Case {
                location: "/limited",
                class: "rate-limited",
                upstream: None,
                status: 503,
                nginx_says: vec![
                    "limiting requests, excess: ".to_string(),
                    "by zone \"one\"".to_string(),
                ],
                requests: ROUNDS,
            },
        ];

        let mut server = Nginx::start(&prefix, &conf, port);
        let timeout = Duration::from_secs(10);
        let expect = |path: &str, want: u16, server: &Nginx| {
            let got = http::get(port, path, timeout);
            assert_eq!(
                got,
                want,
                "GET {path}: nginx answered {got}, the staging expects {want}\n{}",
                server.diagnostics()
            );
        };
        // The first request of the zone's minute passes; the ones after it are limited.
        expect("/ok", 200, &server);
        expect("/limited", 200, &server);
        for _ in 0..ROUNDS {
            for c in &cases {
                expect(c.location, c.status, &server);
            }
            expect("/ok", 200, &server);
        }
        server.stop();
        let ok_upstream = ok.addr();
        drop((ok, hang, reset, close, big, denied, tls));

        MixedIncident {
            prefix,
            conf,
            port,
            ok_upstream,
            cases,
        }
    }

    pub fn error_log(&self) -> PathBuf {
        self.prefix.error_log()
    }

    pub fn access_log(&self) -> PathBuf {
        self.prefix.access_log()
    }

    pub fn access_combined_log(&self) -> PathBuf {
        self.prefix.access_combined_log()
    }

    pub fn case(&self, class: &str) -> &Case {
        self.cases
            .iter()
            .find(|c| c.class == class)
            .unwrap_or_else(|| panic!("no case for class {class}"))
    }

    /// The error-log lines that show `case`'s failure: every expected substring, and the
    /// request line of its location.
    pub fn nginx_lines(&self, case: &Case) -> Vec<String> {
        let text = fs::read_to_string(self.error_log()).expect("read error.log");
        let request = format!("request: \"GET {} HTTP/1.1\"", case.location);
        text.lines()
            .filter(|l| l.contains(&request) && case.nginx_says.iter().all(|s| l.contains(s)))
            .map(str::to_string)
            .collect()
    }
}
