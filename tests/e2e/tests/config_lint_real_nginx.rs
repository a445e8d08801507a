//! `nginx-medic config lint` on configs that the real nginx accepts (`nginx -t` passes), one
//! location per latent cause, and discovery of a real running nginx.
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use medic_e2e::nginx::{self, line_of, test_config};
use medic_e2e::{free_port, medic, MedicRun, Nginx, Prefix};
use serde_json::Value;

fn lint(args: &[&str]) -> MedicRun {
    medic(args, Vec::<PathBuf>::new())
}

/// `(id, FILE:LINE)` of every finding's first evidence.
fn found(json: &Value, run: &MedicRun) -> BTreeSet<(String, String)> {
    json["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings array\n{run}"))
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or_default().to_string(),
                f["evidence"][0]["source"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Every config-lint rule but `ssl-verify-no-ca` (which nginx itself refuses, see below) in
/// one config that `nginx -t` accepts; each finding at its line, nothing else.
#[test]
fn lint_finds_each_latent_cause_in_a_config_nginx_accepts() {
    let prefix = Prefix::new();
    let port = free_port();
    let body = format!(
        r#"    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    upstream keep {{
        server 127.0.0.1:{p1};
        keepalive 8;
    }}
    upstream local_group {{
        server localhost:{p2};
    }}
    map $http_x_backend $dyn_backend {{
        default backend.internal;
    }}

    server {{
        listen 127.0.0.1:{port};
        location /sni {{
            proxy_pass https://localhost:{p3};
        }}
        location /keepalive {{
            proxy_pass http://keep;
        }}
        location /local {{
            proxy_pass http://local_group;
        }}
        location /dynamic {{
            proxy_pass http://$dyn_backend:8080;
        }}
        location ~ \.php$ {{
            fastcgi_pass 127.0.0.1:{p4};
        }}
        location /slow {{
            proxy_read_timeout 5;
            proxy_connect_timeout 10s;
            proxy_pass http://127.0.0.1:{p5};
        }}
        location /limited {{
            limit_req zone=one;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://keep;
        }}
        location /clean {{
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:{p6};
        }}
    }}"#,
        p1 = free_port(),
        p2 = free_port(),
        p3 = free_port(),
        p4 = free_port(),
        p5 = free_port(),
        p6 = free_port(),
    );
    let conf = nginx::config(&prefix, &body);
    let t = test_config(&prefix, &conf);
    assert!(
        t.ok,
        "nginx -t rejects the lint scenario:\n{}\n{conf}",
        t.stderr
    );

    let path = prefix.conf().display().to_string();
    let at = |needle: &str| format!("{path}:{}", line_of(&conf, needle));
    let want: BTreeSet<(String, String)> = [
        ("ssl-no-sni", at("proxy_pass https://localhost:")),
        ("localhost-upstream", at("proxy_pass https://localhost:")),
        ("localhost-upstream", at("server localhost:")),
        ("keepalive-no-http11", at("proxy_pass http://keep;")),
        ("variable-no-resolver", at("proxy_pass http://$dyn_backend")),
        ("fastcgi-no-script-filename", at("fastcgi_pass 127.0.0.1:")),
        ("timeout-inconsistent", at("proxy_pass http://127.0.0.1:")),
        ("limit-req-no-burst", at("limit_req zone=one;")),
    ]
    .into_iter()
    .map(|(id, src)| (id.to_string(), src))
    .collect();

    let run = lint(&["config", "lint", "--config", &path, "--format", "json"]);
    assert_eq!(run.code(), Some(1), "warnings found: exit 1\n{run}");
    let json = run.json();
    assert_eq!(found(&json, &run), want, "\n{run}");
    assert_eq!(json["schema"], 1, "{run}");
    assert_eq!(json["instances"][0]["config"], path.as_str(), "{run}");
    for f in json["findings"].as_array().into_iter().flatten() {
        assert_eq!(f["severity"], "warning", "{run}");
        assert_eq!(f["evidence"][0]["kind"], "config", "{run}");
        assert!(
            f["fix"]["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{run}"
        );
    }
    // The evidence text is the directive as written in the file.
    let sni = json["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == "ssl-no-sni"))
        .unwrap_or_else(|| panic!("no ssl-no-sni\n{run}"));
    let line = conf
        .lines()
        .find(|l| l.contains("proxy_pass https://localhost:"))
        .expect("the sni line");
    assert_eq!(sni["evidence"][0]["text"], line.trim(), "{run}");

    // --fail-on error: warnings alone do not fail.
    let run = lint(&["config", "lint", "--config", &path, "--fail-on", "error"]);
    assert_eq!(run.code(), Some(0), "{run}");
    assert!(
        run.stdout.contains("warning[ssl-no-sni]: ")
            && run
                .stdout
                .contains(&format!(" --> {}", at("proxy_pass https://localhost:"))),
        "rustc-style text\n{run}"
    );

    // SARIF: one result per finding, at the same file and line.
    let run = lint(&["config", "lint", "--config", &path, "--format", "sarif"]);
    assert_eq!(run.code(), Some(1), "{run}");
    let sarif = run.json();
    assert_eq!(sarif["version"], "2.1.0", "{run}");
    let rules: Vec<&str> = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(
        rules.contains(&"ssl-no-sni") && rules.contains(&"limit-req-no-burst"),
        "{run}"
    );
    let results: BTreeSet<(String, String)> = sarif["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            (
                r["ruleId"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{}:{}",
                    loc["artifactLocation"]["uri"].as_str().unwrap_or_default(),
                    loc["region"]["startLine"]
                ),
            )
        })
        .collect();
    assert_eq!(results, want, "{run}");
}

/// A clean config: nothing found, exit 0.
#[test]
fn lint_is_quiet_on_a_clean_config() {
    let prefix = Prefix::new();
    let body = format!(
        r#"    upstream app {{
        server 127.0.0.1:{p};
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }}
    }}"#,
        p = free_port(),
        port = free_port()
    );
    let conf = nginx::config(&prefix, &body);
    let t = test_config(&prefix, &conf);
    assert!(t.ok, "{}", t.stderr);
    let path = prefix.conf().display().to_string();
    let run = lint(&["config", "lint", "--config", &path, "--format", "json"]);
    assert_eq!(run.code(), Some(0), "{run}");
    assert_eq!(run.json()["findings"], serde_json::json!([]), "{run}");
}

/// `proxy_ssl_verify on` without a CA: nginx 1.22 refuses the config outright, so the lint
/// is what catches it before a reload or restart fails. The lint and nginx agree.
#[test]
fn ssl_verify_no_ca_is_the_config_nginx_refuses() {
    let prefix = Prefix::new();
    let body = format!(
        r#"    server {{
        listen 127.0.0.1:{port};
        location /billing {{
            proxy_ssl_verify on;
            proxy_pass https://127.0.0.1:{p};
        }}
    }}"#,
        port = free_port(),
        p = free_port()
    );
    let conf = nginx::config(&prefix, &body);
    let t = test_config(&prefix, &conf);
    assert!(!t.ok, "nginx -t accepted verify without a CA:\n{conf}");
    assert!(
        t.stderr
            .contains("no proxy_ssl_trusted_certificate for proxy_ssl_verify"),
        "{}",
        t.stderr
    );
    let path = prefix.conf().display().to_string();
    let run = lint(&["config", "lint", "--config", &path, "--format", "json"]);
    assert_eq!(run.code(), Some(1), "{run}");
    let json = run.json();
    let want: BTreeSet<(String, String)> = [(
        "ssl-verify-no-ca".to_string(),
        format!("{path}:{}", line_of(&conf, "proxy_pass https://127.0.0.1:")),
    )]
    .into_iter()
    .collect();
    assert_eq!(found(&json, &run), want, "{run}");
    let f = &json["findings"][0];
    assert_eq!(
        f["evidence"][1]["source"],
        format!("{path}:{}", line_of(&conf, "proxy_ssl_verify on;")),
        "{run}"
    );
}

/// An unreadable config is exit 2, not a clean report.
#[test]
fn lint_of_a_missing_config_exits_2() {
    let prefix = Prefix::new();
    let path = prefix.join("conf/absent.conf").display().to_string();
    let run = lint(&["config", "lint", "--config", &path]);
    assert_eq!(run.code(), Some(2), "{run}");
    assert!(run.stderr.contains(&path), "{run}");
}

/// Without --config, the lint finds the running master (this test's own nginx) in /proc, with
/// its -p and -c, reads its config through `nginx -T`, and lints it.
#[test]
fn discovery_finds_a_running_nginx_and_reads_it_with_nginx_t() {
    let prefix = Prefix::new();
    let port = free_port();
    let body = format!(
        r#"    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://localhost:{p};
        }}
    }}"#,
        p = free_port()
    );
    let conf = nginx::config(&prefix, &body);
    let server = Nginx::start(&prefix, &conf, port);
    let pid = server.pid().expect("our nginx runs");

    let run = lint(&["config", "lint", "--format", "json"]);
    let json = run.json();
    // Other tests' nginx may run too, and exit mid-way: look for ours.
    let ours = json["instances"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["pid"] == pid))
        .unwrap_or_else(|| panic!("master {pid} not discovered\n{run}"));
    let conf_path = prefix.conf().display().to_string();
    assert_eq!(ours["config"], conf_path.as_str(), "{run}");
    assert_eq!(
        ours["prefix"].as_str().map(|p| p.trim_end_matches('/')),
        Some(prefix.display()),
        "{run}"
    );
    assert_eq!(ours["read_from"], "nginx -T", "{run}");
    assert_eq!(
        ours["nginx_version"].as_str(),
        nginx::nginx_version().strip_prefix("nginx/"),
        "{run}"
    );
    assert!(
        ours["binary"]
            .as_str()
            .is_some_and(|b| b.ends_with("nginx")),
        "{run}"
    );
    let want = (
        "localhost-upstream".to_string(),
        format!(
            "{conf_path}:{}",
            line_of(&conf, "proxy_pass http://localhost:")
        ),
    );
    assert!(
        found(&json, &run).contains(&want),
        "{want:?} not found\n{run}"
    );
    drop(server);
}
