//! `nginx-medic config lint` on fixture configs: the three output formats (insta snapshots),
//! `nginx -T` dumps, include files, and the exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run nginx-medic")
}

const MAIN: &str = r#"user www-data;
events {}
http {
    limit_req_zone $binary_remote_addr zone=api:10m rate=10r/s;
    upstream app {
        server 127.0.0.1:8080;
        keepalive 16;
    }
    include conf.d/*.conf;
}
"#;

const SITE: &str = r#"server {
    listen 80;
    server_name app.example.com;

    location / {
        proxy_pass http://app;
    }
    location /api/ {
        limit_req zone=api;
        proxy_pass https://api.example.com;
    }
    location ~ \.php$ {
        include fastcgi_params;
        fastcgi_pass unix:/run/php/php8.2-fpm.sock;
    }
}
"#;

const FASTCGI_PARAMS: &str = "fastcgi_param  QUERY_STRING       $query_string;\nfastcgi_param  REQUEST_METHOD     $request_method;\n";

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(dir.path().join("nginx.conf"), MAIN).unwrap();
    std::fs::write(dir.path().join("conf.d/app.conf"), SITE).unwrap();
    std::fs::write(dir.path().join("fastcgi_params"), FASTCGI_PARAMS).unwrap();
    dir
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn text_report() {
    let dir = fixture();
    let out = run(&["config", "lint", "--config", "nginx.conf"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn json_report() {
    let dir = fixture();
    let out = run(
        &[
            "config",
            "lint",
            "--config",
            "nginx.conf",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    // The prefix defaults to the config's directory: here, relative, so the snapshot is stable.
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn sarif_report() {
    let dir = fixture();
    let out = run(
        &[
            "config",
            "lint",
            "--config",
            "nginx.conf",
            "--format",
            "sarif",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert!(rules.iter().all(|r| r["help"]["markdown"]
        .as_str()
        .is_some_and(|m| r["id"] == "config-invalid" || m.contains("## Why it causes 502/504"))));
    for r in run["results"].as_array().expect("results") {
        let i = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(loc["artifactLocation"]["uri"].is_string());
        assert!(loc["region"]["startLine"].as_u64().is_some_and(|l| l > 0));
    }
    let results: Vec<String> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            format!(
                "{} {} {}:{}",
                r["level"].as_str().unwrap(),
                r["ruleId"].as_str().unwrap(),
                loc["artifactLocation"]["uri"].as_str().unwrap(),
                loc["region"]["startLine"]
            )
        })
        .collect();
    insta::assert_snapshot!(results.join("\n"));
}

/// A saved `nginx -T` dump is read section by section: positions name the original files, and
/// the text report shows their lines from the dump.
#[test]
fn nginx_t_dump() {
    let dir = tempfile::tempdir().unwrap();
    let dump = format!(
        "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\nnginx: configuration file /etc/nginx/nginx.conf test is successful\n# configuration file /etc/nginx/nginx.conf:\n{}\n# configuration file /etc/nginx/conf.d/app.conf:\n{SITE}\n# configuration file /etc/nginx/fastcgi_params:\n{FASTCGI_PARAMS}\n",
        MAIN.replace("conf.d/*.conf", "/etc/nginx/conf.d/*.conf")
    );
    std::fs::write(dir.path().join("dump.txt"), dump).unwrap();
    let out = run(&["config", "lint", "--config", "dump.txt"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains(" --> /etc/nginx/conf.d/app.conf:10\n"),
        "{text}"
    );
    assert!(
        text.contains("10 |         proxy_pass https://api.example.com;\n"),
        "{text}"
    );
    let json = run(
        &["config", "lint", "--config", "dump.txt", "--format", "json"],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["instances"][0]["read_from"], "nginx -T dump");
}

#[test]
fn exit_codes() {
    let dir = fixture();
    let code = |args: &[&str]| run(args, dir.path()).status.code();
    assert_eq!(
        code(&[
            "config",
            "lint",
            "--config",
            "nginx.conf",
            "--fail-on",
            "error"
        ]),
        Some(0)
    );
    assert_eq!(
        code(&[
            "config",
            "lint",
            "--config",
            "nginx.conf",
            "--fail-on",
            "info"
        ]),
        Some(1)
    );
    assert_eq!(
        code(&["config", "lint", "--config", "missing.conf"]),
        Some(2)
    );
    // A syntax error is a `config-invalid` error finding; what parsed is still linted.
    std::fs::write(
        dir.path().join("broken.conf"),
        "http {\n    server {\n        location / { proxy_pass http://localhost:1; }\n",
    )
    .unwrap();
    let out = run(
        &[
            "config",
            "lint",
            "--config",
            "broken.conf",
            "--format",
            "json",
            "--fail-on",
            "error",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["id"], "config-invalid");
    assert_eq!(v["findings"][0]["severity"], "error");
}
