//! The bundled example incidents beyond the mixed one (`examples/`): a PHP-FPM site and a set
//! of TLS upstreams, each failing for real in front of a real nginx, captured by
//! `cargo run -p medic-e2e --bin capture -- php-fpm|tls OUT_DIR`.
//!
//! Each staging checks every status nginx answered, stops nginx and the upstream side, and
//! returns the prefix (config and logs) with a table of what was staged.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::nginx::{self, Nginx, Prefix};
use crate::php_fpm::{docroot, PhpFpm, Pm, Pool, PoolOptions};
use crate::tls::{TestCa, TlsServer};
use crate::{free_port, http};

/// One staged failure: the location, what the upstream side did, nginx's answer.
pub struct Staged {
    pub location: &'static str,
    pub upstream_side: String,
    pub status: u16,
    pub requests: usize,
}

/// A staged incident after nginx stopped.
pub struct Incident {
    pub prefix: Prefix,
    pub port: u16,
    pub staged: Vec<Staged>,
    /// Extra files worth keeping (the PHP-FPM log), as (path, name in the example).
    pub extra: Vec<(PathBuf, &'static str)>,
}

fn fastcgi_location(
    location: &str,
    socket: &str,
    root: &str,
    read_timeout: Option<&str>,
) -> String {
    let timeout = read_timeout
        .map(|t| format!("            fastcgi_read_timeout {t};\n"))
        .unwrap_or_default();
    format!(
        "        location {location} {{
            root {root};
{timeout}            fastcgi_pass unix:{socket};
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param DOCUMENT_ROOT $document_root;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param SERVER_NAME $server_name;
        }}
"
    )
}

fn get_n(port: u16, path: &str, n: usize, want: u16, timeout: Duration) {
    for _ in 0..n {
        let got = http::get(port, path, timeout);
        assert_eq!(got, want, "GET {path}");
    }
}

/// A PHP site behind nginx: a pool whose socket the workers may not open (`listen.mode 0600`),
/// a socket left by a dead pool, a script path that does not exist, a PHP fatal error, a slow
/// script beyond `fastcgi_read_timeout`, and a healthy page.
pub fn php_fpm() -> Incident {
    let prefix = Prefix::new();
    let p = prefix.display().to_string();
    let www = docroot(
        &prefix.join("www/app"),
        &[
            ("index.php", "<?php echo \"hello\\n\";"),
            ("fatal.php", "<?php undefined_function_called();"),
            ("slow.php", "<?php sleep(3); echo \"late\\n\";"),
        ],
    );
    let www_root = www.parent().expect("docroot parent").display().to_string();
    let app_sock = prefix.join("php-app.sock").display().to_string();
    let admin_sock = prefix.join("php-admin.sock").display().to_string();
    let old_sock = prefix.join("php-legacy.sock").display().to_string();
    // A socket whose pool died: bound, then the listener dropped (the file stays).
    drop(std::os::unix::net::UnixListener::bind(&old_sock).expect("bind the legacy socket"));
    // Writable for the workers, so nginx gets as far as connect(): refused, not denied.
    fs::set_permissions(&old_sock, fs::Permissions::from_mode(0o666))
        .expect("chmod the legacy socket");
    let mut fpm = PhpFpm::start_with(
        prefix.path(),
        &[
            (
                Pool {
                    name: "app".into(),
                    listen: app_sock.clone(),
                    mode: Some("0666".into()),
                },
                PoolOptions {
                    pm: Pm::Static,
                    max_children: 4,
                    extra: vec![
                        "php_admin_value[log_errors] = On".into(),
                        "php_admin_value[display_errors] = Off".into(),
                    ],
                },
            ),
            (
                Pool {
                    name: "admin".into(),
                    listen: admin_sock.clone(),
                    mode: Some("0600".into()),
                },
                PoolOptions::default(),
            ),
        ],
    );
    let port = free_port();
    let mut body = format!(
        "    server {{\n        listen 127.0.0.1:{port};\n        server_name shop.test;\n\n"
    );
    body.push_str(&fastcgi_location("/app/", &app_sock, &www_root, Some("1s")));
    body.push_str(&fastcgi_location("/admin/", &admin_sock, &www_root, None));
    body.push_str(&fastcgi_location("/legacy/", &old_sock, &www_root, None));
    body.push_str(&fastcgi_location(
        "/shop/",
        &app_sock,
        &format!("{p}/www-old"),
        None,
    ));
    body.push_str("    }\n");
    let conf = nginx::config(&prefix, &body);
    let mut ngx = Nginx::start(&prefix, &conf, port);
    let t = Duration::from_secs(10);
    get_n(port, "/app/index.php", 2, 200, t);
    get_n(port, "/admin/index.php", 3, 502, t);
    get_n(port, "/legacy/index.php", 2, 502, t);
    get_n(port, "/shop/index.php", 2, 404, t);
    get_n(port, "/app/fatal.php", 2, 500, t);
    get_n(port, "/app/slow.php", 2, 504, t);
    get_n(port, "/app/index.php", 1, 200, t);
    ngx.stop();
    fpm.stop();
    let staged = vec![
        Staged {
            location: "/admin/",
            upstream_side: format!("`unix:{admin_sock}`: PHP-FPM pool `admin`, `listen.mode = 0600`, owned by root; nginx workers run as nobody"),
            status: 502,
            requests: 3,
        },
        Staged {
            location: "/legacy/",
            upstream_side: format!("`unix:{old_sock}`: a socket file left behind, nothing listening"),
            status: 502,
            requests: 2,
        },
        Staged {
            location: "/shop/",
            upstream_side: format!("pool `app`, but `root {p}/www-old` does not exist: `Primary script unknown`"),
            status: 404,
            requests: 2,
        },
        Staged {
            location: "/app/fatal.php",
            upstream_side: "pool `app`: a call to an undefined function (PHP fatal error)".into(),
            status: 500,
            requests: 2,
        },
        Staged {
            location: "/app/slow.php",
            upstream_side: "pool `app`: `sleep(3)` with `fastcgi_read_timeout 1s`".into(),
            status: 504,
            requests: 2,
        },
    ];
    let log = prefix.join("php-fpm.log");
    Incident {
        prefix,
        port,
        staged,
        extra: vec![(log, "php-fpm.log")],
    }
}

/// `https://` upstreams failing four TLS ways, and a healthy one: an expired certificate, a
/// certificate for another name, a plain-HTTP port, a TLS-1.3-only server with nginx limited to
/// TLS 1.2.
pub fn tls() -> Incident {
    let prefix = Prefix::new();
    let dir = prefix.join("tls");
    fs::create_dir_all(&dir).expect("create tls dir");
    let ca = TestCa::create(&dir);
    let good = ca.sign("api", "api.test", "20240101000000Z", "20991231000000Z");
    let expired = ca.sign(
        "billing",
        "billing.test",
        "20200101000000Z",
        "20200201000000Z",
    );
    let wrong_name = ca.sign(
        "search",
        "search-old.test",
        "20240101000000Z",
        "20991231000000Z",
    );
    let modern = ca.sign(
        "reports",
        "reports.test",
        "20240101000000Z",
        "20991231000000Z",
    );
    let s_good = TlsServer::start(&good, &dir.join("api.log"));
    let s_expired = TlsServer::start(&expired, &dir.join("billing.log"));
    let s_name = TlsServer::start(&wrong_name, &dir.join("search.log"));
    let s_modern = TlsServer::start_with(&modern, &["-tls1_3".as_ref()], &dir.join("reports.log"));
    // A plain-HTTP port of the same nginx: it answers a ClientHello with `400 Bad Request`,
    // as a real web server does.
    let plain_port = free_port();
    let ca_path = ca.cert.display().to_string();
    let port = free_port();
    let loc = |path: &str, addr: &str, name: &str, extra: &str| {
        format!(
            "        location {path} {{
            proxy_pass https://{addr};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {ca_path};
            proxy_ssl_name {name};
            proxy_ssl_server_name on;
{extra}        }}
"
        )
    };
    let mut body = format!(
        "    server {{\n        listen 127.0.0.1:{port};\n        server_name gateway.test;\n\n"
    );
    body.push_str(&loc("/api/", &s_good.addr(), "api.test", ""));
    body.push_str(&loc("/billing/", &s_expired.addr(), "billing.test", ""));
    body.push_str(&loc("/search/", &s_name.addr(), "search.test", ""));
    body.push_str(&loc(
        "/reports/",
        &s_modern.addr(),
        "reports.test",
        "            proxy_ssl_protocols TLSv1.2;\n",
    ));
    body.push_str(&format!(
        "        location /partner/ {{\n            proxy_pass https://127.0.0.1:{plain_port};\n        }}\n"
    ));
    body.push_str("    }\n");
    body.push_str(&format!(
        "    server {{\n        listen 127.0.0.1:{plain_port};\n        server_name partner.test;\n        return 200 \"partner\\n\";\n    }}\n"
    ));
    let conf = nginx::config(&prefix, &body);
    let mut ngx = Nginx::start(&prefix, &conf, port);
    let t = Duration::from_secs(10);
    get_n(port, "/api/", 2, 200, t);
    get_n(port, "/billing/", 3, 502, t);
    get_n(port, "/search/", 2, 502, t);
    get_n(port, "/reports/", 2, 502, t);
    get_n(port, "/partner/", 2, 502, t);
    get_n(port, "/api/", 1, 200, t);
    ngx.stop();
    let staged = vec![
        Staged {
            location: "/billing/",
            upstream_side: format!("`{}`: `openssl s_server`, certificate for billing.test expired 2020-02-01", s_expired.addr()),
            status: 502,
            requests: 3,
        },
        Staged {
            location: "/search/",
            upstream_side: format!("`{}`: certificate for search-old.test; nginx checks `proxy_ssl_name search.test`", s_name.addr()),
            status: 502,
            requests: 2,
        },
        Staged {
            location: "/reports/",
            upstream_side: format!("`{}`: TLS 1.3 only (`-tls1_3`); nginx has `proxy_ssl_protocols TLSv1.2`", s_modern.addr()),
            status: 502,
            requests: 2,
        },
        Staged {
            location: "/partner/",
            upstream_side: format!("`127.0.0.1:{plain_port}`: a plain-HTTP server block of the same nginx, but `proxy_pass https://`"),
            status: 502,
            requests: 2,
        },
    ];
    Incident {
        prefix,
        port,
        staged,
        extra: Vec::new(),
    }
}
