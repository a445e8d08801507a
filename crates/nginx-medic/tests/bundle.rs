//! `nginx-medic collect` and `diagnose --bundle`: a config and logs seeded with 50 distinct
//! secrets are collected; the bundle holds none of them (in any file, gzip'd or not) and
//! diagnoses the same as the files it came from. Bad bundles get clear errors.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn medic(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(args)
        .output()
        .expect("run nginx-medic")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/502-mixed-incident")
}

/// The 50 secrets, each with the line that carries it (config, included file or log).
struct Seeded {
    dir: tempfile::TempDir,
    secrets: Vec<String>,
}

impl Seeded {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn seed() -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let secrets = std::cell::RefCell::new(Vec::new());
    let s = |kind: &str| {
        let mut all = secrets.borrow_mut();
        let v = format!("{kind}{:02}x9Qz", all.len());
        all.push(v.clone());
        v
    };
    // Config directives, inside the example's server block.
    let mut block = String::new();
    for h in [
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "X-Api-Key",
    ] {
        block += &format!("        proxy_set_header {h} \"Bearer {}\";\n", s("hdr"));
    }
    for h in ["X-Auth-Token", "X-Service-Secret", "X-Client-Secret"] {
        block += &format!("        proxy_set_header {h} {};\n", s("hdr"));
    }
    block += &format!(
        "        add_header Set-Cookie \"sid={}; Secure\";\n",
        s("cookie")
    );
    for p in [
        "DB_PASSWORD",
        "APP_SECRET",
        "API_TOKEN",
        "STRIPE_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        block += &format!("        fastcgi_param {p} {};\n", s("param"));
    }
    block += &format!("        set $api_key \"{}\";\n", s("var"));
    block += &format!("        set $session_token {};\n", s("var"));
    block += &format!("        secure_link_secret {};\n", s("link"));
    block += &format!(
        "        # old upstream: http://deploy:{}@10.0.0.5:8080/\n",
        s("url")
    );
    block += &format!(
        "        location = /lua {{\n            content_by_lua_block {{\n                local key = \"{}\"\n                ngx.say(\"{{}}\")\n            }}\n        }}\n",
        s("lua")
    );
    block += &format!(
        "        location = /lua2 {{ access_by_lua 'local t = \"{}\"'; }}\n",
        s("lua")
    );
    block += "        auth_basic_user_file htpasswd;\n";
    let conf = std::fs::read_to_string(example().join("nginx.conf")).unwrap();
    let conf = conf.replacen(
        "        server_name app.test;\n",
        &format!("        server_name app.test;\n{block}        include secrets.conf;\n"),
        1,
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    // An included file, with an inline private key and an env line.
    let key1 = s("pemA");
    let key2 = s("pemB");
    let included = format!(
        "proxy_set_header X-Upstream-Token {};\nenv STRIPE_SECRET_KEY={};\n# ssl_certificate_key data:\n# -----BEGIN PRIVATE KEY-----\n# {key1}\n# {key2}\n# -----END PRIVATE KEY-----\nproxy_set_header X-Request-Id $request_id;\n",
        s("inc"),
        s("env"),
    );
    std::fs::write(dir.path().join("secrets.conf"), included).unwrap();
    let htpasswd_secret = s("htpasswd");
    std::fs::write(
        dir.path().join("htpasswd"),
        format!("admin:{htpasswd_secret}\n"),
    )
    .unwrap();
    // The logs: tokens in query strings, referrers and user agents of every failing request.
    let query = ["token", "access_token", "api_key", "password", "session"];
    let mut error = String::new();
    for (n, line) in std::fs::read_to_string(example().join("error.log"))
        .unwrap()
        .lines()
        .enumerate()
    {
        let q = query[n % query.len()];
        let line = if line.contains(" HTTP/1.1\"") && secrets.borrow().len() < 44 {
            line.replacen(" HTTP/1.1\"", &format!("?{q}={} HTTP/1.1\"", s("elog")), 1)
        } else {
            line.to_string()
        };
        error += &line;
        error.push('\n');
    }
    std::fs::write(dir.path().join("error.log"), error).unwrap();
    let mut access = String::new();
    for line in std::fs::read_to_string(example().join("access.log"))
        .unwrap()
        .lines()
    {
        let line = if line.contains(" 502 ") && secrets.borrow().len() < 50 {
            let a = line.replacen(
                " HTTP/1.1\"",
                &format!("?api_key={} HTTP/1.1\"", s("alog")),
                1,
            );
            a.replacen(
                "\"-\" \"medic-e2e/0.1\"",
                &format!(
                    "\"https://app.test/?auth_token={}\" \"medic-e2e/0.1\"",
                    s("ref")
                ),
                1,
            )
        } else {
            line.to_string()
        };
        access += &line;
        access.push('\n');
    }
    std::fs::write(dir.path().join("access.log"), access).unwrap();
    let secrets = secrets.into_inner();
    assert_eq!(secrets.len(), 50, "{secrets:?}");
    Seeded { dir, secrets }
}

/// Every file of the bundle, gunzip'd when gzip'd.
fn contents(bundle: &Path) -> Vec<(String, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(bundle).unwrap());
    let mut tar = tar::Archive::new(gz);
    let mut out = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .unwrap();
            bytes = plain;
        }
        out.push((name, bytes));
    }
    out
}

fn findings(json: &serde_json::Value) -> Vec<serde_json::Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f["id"], "severity": f["severity"], "upstream": f["upstream"],
                "state": f["state"], "count": f["count"], "first_seen": f["first_seen"],
                "last_seen": f["last_seen"], "impact": f["impact"],
                "evidence": f["evidence"].as_array().unwrap().iter().map(|e| e["source"].clone()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[test]
fn fifty_secrets_none_in_the_bundle_same_diagnosis() {
    let seeded = seed();
    let files = [
        "--no-probe",
        "--config",
        &seeded.path("nginx.conf"),
        "--error-log",
        &seeded.path("error.log"),
        "--access-log",
        &seeded.path("access.log"),
    ];
    // The files diagnose with the secrets in them.
    let direct = medic(&[&["diagnose", "--format", "json"][..], &files[..]].concat());
    assert!(matches!(direct.status.code(), Some(0 | 1)), "{direct:?}");
    let direct: serde_json::Value = serde_json::from_slice(&direct.stdout).unwrap();
    let all_text = serde_json::to_string(&direct).unwrap();
    assert!(
        seeded.secrets.iter().any(|s| all_text.contains(s.as_str())),
        "the seeded report must show some secrets, or the test proves nothing"
    );

    let bundle = seeded.path("incident.tar.gz");
    let run = medic(&[&["collect", "-o", &bundle][..], &files[..]].concat());
    assert!(run.status.success(), "{run:?}");
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(said.contains("redaction on"), "{said}");

    let files_in = contents(Path::new(&bundle));
    let names: Vec<&str> = files_in.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "nginx-medic-bundle/MANIFEST",
        "nginx-medic-bundle/SHA256SUMS",
        "nginx-medic-bundle/bundle.json",
        "nginx-medic-bundle/nginx-T.txt",
        "nginx-medic-bundle/diagnosis.json",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let mut leaks = Vec::new();
    for (name, bytes) in &files_in {
        let text = String::from_utf8_lossy(bytes);
        for s in &seeded.secrets {
            if text.contains(s.as_str()) {
                leaks.push(format!("{s} in {name}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets in the bundle: {leaks:#?}");
    // The paths of secret files stay, their contents never; the MANIFEST says what was done.
    let (_, conf) = files_in
        .iter()
        .find(|(n, _)| n.ends_with("nginx-T.txt"))
        .unwrap();
    let conf = String::from_utf8_lossy(conf);
    assert!(conf.contains("auth_basic_user_file htpasswd;"), "{conf}");
    assert!(
        conf.contains("proxy_set_header X-Request-Id $request_id;"),
        "{conf}"
    );
    assert!(conf.contains("sha256 "), "{conf}");
    let (_, manifest) = files_in
        .iter()
        .find(|(n, _)| n.ends_with("MANIFEST"))
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let whats: Vec<&str> = manifest["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    for w in [
        "header value",
        "query value",
        "private key",
        "lua code",
        "url credentials",
    ] {
        assert!(whats.contains(&w), "{w} not in the MANIFEST: {whats:?}");
    }

    // Anywhere: the bundle diagnoses as the files did, citing the same files and lines.
    let replayed = medic(&["diagnose", "--format", "json", "--bundle", &bundle]);
    assert!(
        matches!(replayed.status.code(), Some(0 | 1)),
        "{replayed:?}"
    );
    let replayed: serde_json::Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert!(!findings(&direct).is_empty());
    assert_eq!(findings(&replayed), findings(&direct));
    // `sha256sum -c` checks the files with standard tools.
    let out = tempfile::tempdir().unwrap();
    let tar = Command::new("tar")
        .args(["-xzf", &bundle, "-C"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(tar.success());
    let sums = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(out.path().join("nginx-medic-bundle"))
        .output()
        .unwrap();
    assert!(sums.status.success(), "{sums:?}");
}

#[test]
fn a_tampered_or_truncated_bundle_is_refused_by_name() {
    let seeded = seed();
    let bundle = seeded.path("incident.tar.gz");
    let run = medic(&[
        "collect",
        "-o",
        &bundle,
        "--no-probe",
        "--config",
        &seeded.path("nginx.conf"),
        "--error-log",
        &seeded.path("error.log"),
    ]);
    assert!(run.status.success(), "{run:?}");
    let bytes = std::fs::read(&bundle).unwrap();

    let cut = seeded.path("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = medic(&["diagnose", "--bundle", &cut]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated") || err.contains("damaged"),
        "{err}"
    );

    // Change one log line after collection, keep the MANIFEST.
    let x = tempfile::tempdir().unwrap();
    assert!(Command::new("tar")
        .args(["-xzf", &bundle, "-C"])
        .arg(x.path())
        .status()
        .unwrap()
        .success());
    let logs = x.path().join("nginx-medic-bundle/logs");
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut text = std::fs::read(&log).unwrap();
    text.extend_from_slice(b"forged line\n");
    std::fs::write(&log, text).unwrap();
    let forged = seeded.path("forged.tar.gz");
    assert!(Command::new("tar")
        .args(["-czf", &forged, "-C"])
        .arg(x.path())
        .arg("nginx-medic-bundle")
        .status()
        .unwrap()
        .success());
    let out = medic(&["diagnose", "--bundle", &forged]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let name = format!(
        "logs/{} was changed after collection",
        log.file_name().unwrap().to_string_lossy()
    );
    assert!(err.contains(&name), "{err}");
}
