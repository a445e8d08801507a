//! Each rule on configs that make it fire and configs that must leave it quiet. Firing cases
//! are snapshots of the whole finding (title, upstream, evidence, fix), so a change in wording
//! is reviewed, not missed.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::config::testing::{config, one};
use crate::config::{build, BuildOptions};
use crate::rules::{find, Finding};
use medic_parse::config::Config;

fn run(id: &str, cfg: &Arc<Config>) -> Vec<Finding> {
    let model = build(cfg, &BuildOptions::default());
    let mut out = Vec::new();
    find(id).expect("rule id").check(&model, &mut out);
    out
}

fn render(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        let _ = writeln!(s, "{}[{}]: {}", f.severity.as_str(), f.id, f.title);
        if let Some(u) = &f.upstream {
            let _ = writeln!(s, "  upstream: {u}");
        }
        for e in &f.evidence {
            let _ = writeln!(s, "  {} {}: {}", e.kind, e.source, e.text);
        }
        let _ = writeln!(
            s,
            "  fix: {} ({}, risk {})",
            f.fix.summary, f.fix.time, f.fix.risk
        );
        for step in &f.fix.steps {
            let _ = writeln!(s, "    - {step}");
        }
    }
    s
}

/// Wraps a server body in `http { server { ... } }`.
fn http(body: &str) -> Arc<Config> {
    one(&format!("http {{\n{body}\n}}\n"))
}

fn quiet(id: &str, cfg: &Arc<Config>) {
    let f = run(id, cfg);
    assert!(f.is_empty(), "{id} should stay quiet:\n{}", render(&f));
}

#[test]
fn ssl_no_sni_fires() {
    let cfg = http(
        r#"
upstream tls_group { server api.internal:443; }
server {
    listen 80;
    location /a { proxy_pass https://api.example.com; }
    location /b { proxy_pass https://tls_group; }
    location /c { proxy_ssl_server_name off; proxy_pass https://$host; }
}"#,
    );
    insta::assert_snapshot!(render(&run("ssl-no-sni", &cfg)));
}

#[test]
fn ssl_no_sni_quiet() {
    quiet(
        "ssl-no-sni",
        &http(
            r#"
proxy_ssl_server_name on;
upstream ips { server 10.0.0.1:443; }
server {
    location /a { proxy_pass https://api.example.com; }
    location /b { proxy_ssl_server_name off; proxy_pass https://10.0.0.2; }
    location /c { proxy_ssl_server_name off; proxy_pass https://ips; }
    location /d { proxy_ssl_server_name off; proxy_pass http://api.example.com; }
}"#,
        ),
    );
}

#[test]
fn ssl_verify_no_ca_fires() {
    let cfg = http(
        r#"
proxy_ssl_verify on;
server {
    location /a { proxy_pass https://billing.internal; }
    location /b { proxy_pass $scheme://billing.internal; resolver 127.0.0.53; }
}"#,
    );
    insta::assert_snapshot!(render(&run("ssl-verify-no-ca", &cfg)));
}

#[test]
fn ssl_verify_no_ca_quiet() {
    quiet(
        "ssl-verify-no-ca",
        &http(
            r#"
proxy_ssl_verify on;
server {
    location /a { proxy_ssl_trusted_certificate /etc/ssl/ca.pem; proxy_pass https://b; }
    location /b { proxy_pass http://b; }
    location /c { proxy_ssl_verify off; proxy_pass https://b; }
}"#,
        ),
    );
}

#[test]
fn keepalive_no_http11_fires() {
    let cfg = http(
        r#"
upstream app { server 127.0.0.1:8080; keepalive 16; }
server {
    location /none { proxy_pass http://app; }
    location /v11 { proxy_http_version 1.1; proxy_pass http://app; }
    location /conn { proxy_set_header Connection ""; proxy_pass http://app; }
}"#,
    );
    insta::assert_snapshot!(render(&run("keepalive-no-http11", &cfg)));
}

#[test]
fn keepalive_no_http11_quiet() {
    quiet(
        "keepalive-no-http11",
        &http(
            r#"
upstream app { server 127.0.0.1:8080; keepalive 16; }
upstream plain { server 127.0.0.1:8081; }
proxy_http_version 1.1;
proxy_set_header Connection "";
server {
    location / { proxy_pass http://app; }
    location /p { proxy_http_version 1.0; proxy_pass http://plain; }
    location /g { grpc_pass grpc://app; }
}"#,
        ),
    );
}

/// One `proxy_set_header` in a location drops the inherited `Connection ""`: the classic trap
/// of array-directive inheritance.
#[test]
fn keepalive_no_http11_sees_dropped_inherited_header() {
    let cfg = http(
        r#"
upstream app { server 127.0.0.1:8080; keepalive 16; }
proxy_http_version 1.1;
proxy_set_header Connection "";
server {
    location / { proxy_set_header Host $host; proxy_pass http://app; }
}"#,
    );
    let f = run("keepalive-no-http11", &cfg);
    assert_eq!(f.len(), 1, "{}", render(&f));
    assert!(f[0].title.contains("Connection: close"), "{}", render(&f));
}

#[test]
fn localhost_upstream_fires() {
    let cfg = http(
        r#"
upstream node { server localhost:3000; server 127.0.0.1:3001; }
server {
    location / { proxy_pass http://localhost:3000; }
    location ~ \.php$ { fastcgi_pass localhost:9000; }
}"#,
    );
    insta::assert_snapshot!(render(&run("localhost-upstream", &cfg)));
}

#[test]
fn localhost_upstream_quiet() {
    quiet(
        "localhost-upstream",
        &http(
            r#"
upstream localhost_app { server 127.0.0.1:3000; }
server {
    server_name localhost;
    location / { proxy_pass http://127.0.0.1:3000; }
    location /g { proxy_pass http://localhost_app; }
    location /u { proxy_pass http://unix:/run/localhost.sock; }
}"#,
        ),
    );
}

#[test]
fn variable_no_resolver_fires() {
    let cfg = http(
        r#"
map $http_x_tenant $tenant_backend { default app.internal; beta 10.0.0.9; }
server {
    location /a { proxy_pass http://$tenant_backend:8080; }
    location /b { proxy_pass http://api.internal$request_uri; }
    location /c { set $target https://localhost:9443; proxy_pass $target; }
}"#,
    );
    insta::assert_snapshot!(render(&run("variable-no-resolver", &cfg)));
}

#[test]
fn variable_no_resolver_quiet() {
    quiet(
        "variable-no-resolver",
        &http(
            r#"
upstream blue { server 127.0.0.1:8001; }
upstream green { server 127.0.0.1:8002; }
map $cookie_color $pool { default blue; g green; }
server {
    location /a { proxy_pass http://$pool; }
    location /b { proxy_pass http://127.0.0.1:8080$request_uri; }
    location /c { resolver 127.0.0.53; proxy_pass http://$host; }
    location /d { proxy_pass http://blue$request_uri; }
}"#,
        ),
    );
}

#[test]
fn fastcgi_no_script_filename_fires() {
    let cfg = config(&[
        (
            "nginx.conf",
            r#"http {
    fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
    server {
        location ~ \.php$ {
            include fastcgi_params;
            fastcgi_pass unix:/run/php/php8.2-fpm.sock;
        }
        location /other.php {
            fastcgi_pass 127.0.0.1:9000;
        }
    }
}"#,
        ),
        (
            "fastcgi_params",
            "fastcgi_param QUERY_STRING $query_string;\nfastcgi_param REQUEST_METHOD $request_method;\n",
        ),
    ]);
    // The first location's include replaces the http-level list; the second inherits it.
    insta::assert_snapshot!(render(&run("fastcgi-no-script-filename", &cfg)));
}

#[test]
fn fastcgi_no_script_filename_quiet() {
    quiet(
        "fastcgi-no-script-filename",
        &config(&[
            (
                "nginx.conf",
                r#"http { server {
    location ~ \.php$ { include fastcgi.conf; fastcgi_pass unix:/run/php.sock; }
    location /p { proxy_pass http://127.0.0.1:1; }
} }"#,
            ),
            (
                "fastcgi.conf",
                "fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n",
            ),
        ]),
    );
}

#[test]
fn timeout_inconsistent_fires() {
    let cfg = http(
        r#"
upstream app { server 127.0.0.1:8080; }
server {
    location /slow { proxy_read_timeout 300s; proxy_pass http://app; }
    location /fast { proxy_pass http://app; }
    location /typo { proxy_read_timeout 5; proxy_connect_timeout 10s; proxy_pass http://127.0.0.1:9000; }
}"#,
    );
    insta::assert_snapshot!(render(&run("timeout-inconsistent", &cfg)));
}

/// A read timeout every location inherits is cited once; each one written in a location too.
#[test]
fn timeout_inconsistent_cites_each_timeout_once() {
    let cfg = http(
        r#"
upstream app { server 127.0.0.1:8080; }
server {
    proxy_read_timeout 60s;
    location /a { proxy_pass http://app; }
    location /b { proxy_pass http://app; }
    location /c { proxy_read_timeout 300s; proxy_pass http://app; }
    location /d { proxy_pass http://app; }
    location /e { proxy_read_timeout 300s; proxy_pass http://app; }
}"#,
    );
    let found = run("timeout-inconsistent", &cfg);
    assert_eq!(found.len(), 1, "{}", render(&found));
    let cited = |text: &str| {
        found[0]
            .evidence
            .iter()
            .filter(|e| e.text == text)
            .map(|e| e.source.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(cited("proxy_read_timeout 60s;").len(), 1);
    // Two directives with the same text, on different lines: both.
    assert_eq!(cited("proxy_read_timeout 300s;").len(), 2);
    assert_eq!(cited("proxy_pass http://app;").len(), 5);
}

/// One finding per target and module, in the order of target names then modules, whatever
/// the order the config writes them in.
#[test]
fn timeout_inconsistent_groups_by_target_and_module() {
    let cfg = http(
        r#"
upstream zeta { server 127.0.0.1:8080; }
upstream alpha { server 127.0.0.1:8081; }
server {
    location /z1 { proxy_read_timeout 2m; proxy_pass http://zeta; }
    location /z2 { proxy_pass http://zeta; }
    location /h1 { proxy_read_timeout 3m; proxy_pass http://127.0.0.1:9000; }
    location /a1 { proxy_read_timeout 4m; proxy_pass http://alpha; }
    location /g1 { grpc_read_timeout 5m; grpc_pass grpc://alpha; }
    location /h2 { proxy_pass http://127.0.0.1:9000/x; }
    location /a2 { proxy_pass http://alpha; }
    location /g2 { grpc_pass grpc://alpha; }
    location /same1 { proxy_read_timeout 6m; proxy_pass http://127.0.0.1:9001; }
    location /same2 { proxy_read_timeout 6m; proxy_pass http://127.0.0.1:9001; }
}"#,
    );
    let found = run("timeout-inconsistent", &cfg);
    let groups: Vec<(&str, &str)> = found
        .iter()
        .map(|f| {
            let module = if f.title.contains("grpc_read_timeout") {
                "grpc"
            } else {
                "proxy"
            };
            (f.upstream.as_deref().unwrap_or(""), module)
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("127.0.0.1:9000", "proxy"),
            ("alpha", "grpc"),
            ("alpha", "proxy"),
            ("zeta", "proxy")
        ],
        "{}",
        render(&found)
    );
}

#[test]
fn timeout_inconsistent_quiet() {
    quiet(
        "timeout-inconsistent",
        &http(
            r#"
upstream app { server 127.0.0.1:8080; }
proxy_read_timeout 120s;
server {
    location /a { proxy_pass http://app; }
    location /b { proxy_read_timeout 2m; proxy_pass http://app; }
    location /c { proxy_connect_timeout 5s; proxy_read_timeout 5s; proxy_pass http://127.0.0.1:1; }
    location ~ \.php$ { fastcgi_pass app; fastcgi_read_timeout 300; }
}"#,
        ),
    );
}

#[test]
fn limit_req_no_burst_fires() {
    let cfg = http(
        r#"
limit_req_zone $binary_remote_addr zone=api:10m rate=10r/s;
server {
    limit_req zone=api;
    location /a { proxy_pass http://127.0.0.1:1; }
    location /b { proxy_pass http://127.0.0.1:2; }
    location /login { limit_req zone=api burst=5; limit_req zone=other; }
}"#,
    );
    insta::assert_snapshot!(render(&run("limit-req-no-burst", &cfg)));
}

#[test]
fn limit_req_no_burst_quiet() {
    quiet(
        "limit-req-no-burst",
        &http(
            r#"
limit_req_zone $binary_remote_addr zone=api:10m rate=10r/s;
server {
    location /a { limit_req zone=api burst=20 nodelay; proxy_pass http://127.0.0.1:1; }
    location /b { limit_req zone=api burst=5 delay=2; }
}"#,
        ),
    );
}

/// Every rule is registered once, documented with the four sections, and IDs are those of the
/// catalog.
#[test]
fn registry_is_complete() {
    let ids: Vec<&str> = crate::rules::registry().iter().map(|r| r.id()).collect();
    assert_eq!(
        ids,
        [
            "ssl-no-sni",
            "ssl-verify-no-ca",
            "keepalive-no-http11",
            "localhost-upstream",
            "variable-no-resolver",
            "fastcgi-no-script-filename",
            "timeout-inconsistent",
            "limit-req-no-burst"
        ]
    );
    for r in crate::rules::registry() {
        for section in ["What it detects", "Why it causes 502/504", "Example", "Fix"] {
            assert!(
                crate::rules::doc_section(*r, section).is_some_and(|s| !s.is_empty()),
                "{}: no `## {section}`",
                r.id()
            );
        }
        let fix = crate::rules::doc_section(*r, "Fix").unwrap_or_default();
        assert!(
            fix.contains("Time") && fix.contains("Risk"),
            "{}: Fix without time/risk",
            r.id()
        );
    }
}

/// `check_all` runs the rules on two threads: its list is the one the rules make one after
/// another, in catalog order, then ranked. The config makes most rules fire more than once.
#[test]
fn check_all_is_the_rules_one_after_another() {
    let mut body = String::from("upstream app { server 127.0.0.1:3000; keepalive 8; }\n");
    for i in 0..20 {
        body.push_str(&format!(
            "server {{\n    listen {port};\n    location /a {{ proxy_read_timeout {i}s; proxy_connect_timeout 30s; proxy_pass http://app; }}\n    location /b {{ proxy_pass https://api{i}.example.com; proxy_ssl_verify on; }}\n    location /c {{ proxy_pass http://$host{i}; }}\n    location ~ \\.php$ {{ fastcgi_pass unix:/run/php{i}.sock; }}\n    location /d {{ limit_req zone=z{i}; proxy_pass http://localhost:{port}; }}\n}}\n",
            port = 8000 + i
        ));
    }
    let model = build(&http(&body), &BuildOptions::default());
    let mut serial = Vec::new();
    for rule in crate::rules::registry() {
        rule.check(&model, &mut serial);
    }
    crate::rules::rank(&mut serial);
    let fired: std::collections::BTreeSet<&str> = serial.iter().map(|f| f.id).collect();
    assert!(fired.len() >= 5, "{fired:?}");
    assert_eq!(crate::rules::check_all(&model), serial);
}
