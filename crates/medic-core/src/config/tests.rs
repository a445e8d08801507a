//! The model against nginx's merge rules, on small configs.

use std::sync::Arc;
use std::time::Duration;

use super::testing::{config, one};
use super::*;

fn model(text: &str) -> Model {
    build(&one(text), &BuildOptions::default())
}

#[test]
fn scalars_come_from_the_innermost_level_arrays_whole_from_one_level() {
    let m = model(
        r#"http {
    proxy_read_timeout 30s;
    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    server {
        proxy_connect_timeout 5s;
        location /a {
            proxy_pass http://127.0.0.1:8080;
        }
        location /b {
            proxy_read_timeout 1m30s;
            proxy_set_header X-Only $x;
            proxy_pass http://127.0.0.1:8080;
        }
    }
}"#,
    );
    let a = &m.passes[0];
    assert_eq!(a.settings.read_timeout.value, Duration::from_secs(30));
    assert_eq!(
        a.settings.read_timeout.src.as_ref().map(|s| s.line()),
        Some(2)
    );
    assert_eq!(a.settings.connect_timeout.value, Duration::from_secs(5));
    assert!(a.settings.send_timeout.is_default());
    assert_eq!(a.settings.send_timeout.value, DEFAULT_TIMEOUT);
    assert!(a.settings.next_upstream.is_default());
    assert_eq!(*a.settings.next_upstream.value, ["error", "timeout"]);
    let ssl = a.settings.ssl.as_ref().expect("proxy has TLS settings");
    assert_eq!(*ssl.protocols.value, ["TLSv1", "TLSv1.1", "TLSv1.2"]);
    assert!(ssl.protocols.is_default());
    assert_eq!(a.settings.headers.len(), 2);
    assert_eq!(
        a.settings.http_version.as_ref().map(|v| v.value.as_str()),
        Some("1.0")
    );
    assert_eq!(
        a.settings
            .connection_header
            .as_ref()
            .map(|c| c.value.as_str()),
        Some("close")
    );
    let b = &m.passes[1];
    assert_eq!(b.settings.read_timeout.value, Duration::from_secs(90));
    let names: Vec<&str> = b.settings.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["X-Only"],
        "one proxy_set_header hides the inherited ones"
    );
    assert_eq!(
        m.describe_scope(b.scope),
        "server (no server_name) > location /b"
    );
}

#[test]
fn targets() {
    let m = model(
        r#"http {
    upstream app { server 10.0.0.1:8080 weight=2 max_fails=3; server app2.internal backup; keepalive 8; }
    server {
        location /1 { proxy_pass http://app; }
        location /2 { proxy_pass https://api.example.com/v1/; }
        location /3 { proxy_pass http://unix:/run/app.sock:/x; }
        location /4 { fastcgi_pass unix:/run/php/fpm.sock; }
        location /5 { proxy_pass http://$host; }
        location /6 { grpc_pass grpcs://[::1]:50051; }
        location /7 { uwsgi_pass 127.0.0.1:3031; }
        location /8 { proxy_pass http://app:81; }
    }
}"#,
    );
    let shown: Vec<String> = m.passes.iter().map(|p| p.target.display()).collect();
    assert_eq!(
        shown,
        [
            "app",
            "api.example.com:443",
            "unix:/run/app.sock",
            "unix:/run/php/fpm.sock",
            "$host",
            "[::1]:50051",
            "127.0.0.1:3031",
            "app:81"
        ]
    );
    assert!(m.passes[1].tls && m.passes[5].tls && !m.passes[0].tls);
    let g = m.group(&m.passes[0]).expect("group");
    assert_eq!(g.keepalive.as_ref().map(|k| k.value), Some(8));
    assert_eq!(g.servers[0].params, ["weight=2", "max_fails=3"]);
    assert_eq!(g.servers[1].port, Some(80));
    assert_eq!(m.passes[3].kind, PassKind::Fastcgi);
    assert!(m.passes[3].settings.ssl.is_none() && m.passes[3].settings.http_version.is_none());
}

#[test]
fn if_blocks_and_nested_locations_inherit() {
    let m = model(
        r#"http { server {
    location / {
        proxy_read_timeout 7s;
        location /inner { proxy_pass http://127.0.0.1:1; }
        if ($request_method = POST) { proxy_pass http://127.0.0.1:2; }
    }
} }"#,
    );
    assert_eq!(m.passes.len(), 2);
    for p in &m.passes {
        assert_eq!(p.settings.read_timeout.value, Duration::from_secs(7));
    }
    assert_eq!(
        m.describe_scope(m.passes[1].scope),
        "server (no server_name) > location / > if ($request_method = POST)"
    );
}

#[test]
fn includes_are_spliced_in_place() {
    let cfg = config(&[
        (
            "/etc/nginx/nginx.conf",
            "http {\n    include conf.d/app.conf;\n}\n",
        ),
        (
            "/etc/nginx/conf.d/app.conf",
            "server {\n    listen 8080;\n    location / {\n        include proxy.conf;\n        proxy_pass http://127.0.0.1:3000;\n    }\n}\n",
        ),
        ("/etc/nginx/proxy.conf", "proxy_read_timeout 2s;\n"),
    ]);
    let m = build(&cfg, &BuildOptions::default());
    let p = &m.passes[0];
    assert_eq!(p.src.location(), "/etc/nginx/conf.d/app.conf:5");
    assert_eq!(
        p.settings
            .read_timeout
            .src
            .as_ref()
            .map(|s| s.location())
            .as_deref(),
        Some("/etc/nginx/proxy.conf:1")
    );
    assert_eq!(m.listens[0].address, "8080");
    assert_eq!(m.listens[0].src.location(), "/etc/nginx/conf.d/app.conf:2");
}

#[test]
fn globals_logs_and_formats() {
    let cfg = one(r#"user www-data;
pid /run/nginx.pid;
error_log logs/error.log warn;
http {
    log_format main escape=json '$remote_addr - $status '
                    '$upstream_addr';
    access_log logs/access.log main;
    access_log /var/log/nginx/all.log;
    server {
        error_log /var/log/nginx/site.error.log;
        access_log off;
        location / { access_log /var/log/nginx/loc.log main buffer=32k; }
    }
}
stream {
    log_format basic '$remote_addr $status';
    server { listen 12345; access_log /var/log/nginx/stream.log basic; proxy_pass 127.0.0.1:5432; }
}"#);
    let m = build(
        &cfg,
        &BuildOptions {
            prefix: Some("/usr/share/nginx".into()),
        },
    );
    assert_eq!(m.worker_user().name, "www-data");
    assert_eq!(
        m.pid.as_ref().map(|p| p.value.as_str()),
        Some("/run/nginx.pid")
    );
    let errs: Vec<(&str, &str, &str)> = m
        .error_logs
        .iter()
        .map(|e| (e.path.as_str(), e.level.as_str(), e.context))
        .collect();
    assert_eq!(
        errs,
        [
            ("/usr/share/nginx/logs/error.log", "warn", "main"),
            ("/var/log/nginx/site.error.log", "error", "server")
        ]
    );
    let logs: Vec<(&str, &str, &str)> = m
        .access_logs
        .iter()
        .map(|a| (a.path.as_str(), a.format_name.as_str(), a.escape.as_str()))
        .collect();
    assert_eq!(
        logs,
        [
            ("/usr/share/nginx/logs/access.log", "main", "json"),
            ("/var/log/nginx/all.log", "combined", "default"),
            ("/var/log/nginx/loc.log", "main", "json"),
            ("/var/log/nginx/stream.log", "basic", "default"),
        ]
    );
    assert_eq!(
        m.access_logs[0].format.as_deref(),
        Some("$remote_addr - $status $upstream_addr")
    );
    assert_eq!(m.access_logs[1].format.as_deref(), Some(COMBINED));
    assert_eq!(m.access_logs[2].params, ["buffer=32k"]);
    let stream = m
        .passes
        .iter()
        .find(|p| p.protocol == Protocol::Stream)
        .expect("stream pass");
    assert_eq!(stream.settings.read_timeout.value, Duration::from_secs(600));
    assert_eq!(stream.target.display(), "127.0.0.1:5432");
}

#[test]
fn limits_error_pages_resolver_and_defaults() {
    let m = model(
        r#"http {
    limit_req_zone $binary_remote_addr zone=one:10m rate=5r/s;
    limit_conn_zone $binary_remote_addr zone=addr:10m;
    resolver 127.0.0.53 valid=30s;
    error_page 502 503 504 /50x.html;
    server {
        limit_req zone=one burst=10 nodelay;
        limit_req_status 429;
        location / {
            limit_conn addr 5;
            error_page 404 =200 /empty.gif;
            proxy_next_upstream error timeout http_502;
            proxy_buffer_size 16k;
            proxy_buffers 4 32k;
            proxy_ssl_server_name on;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_pass https://10.0.0.1;
        }
    }
    server { }
}"#,
    );
    let p = &m.passes[0];
    let s = m.scope(p);
    assert_eq!(s.settings.limit_req.len(), 1);
    let l = &s.settings.limit_req[0];
    assert_eq!(
        (l.zone.as_str(), l.burst, l.nodelay),
        ("one", Some(10), true)
    );
    assert_eq!(
        l.zone_def
            .as_ref()
            .and_then(|z| z.rate)
            .map(|r| r.to_string())
            .as_deref(),
        Some("5r/s")
    );
    assert_eq!(s.settings.limit_req_status.value, 429);
    assert_eq!(s.settings.limit_conn[0].limit, Some(5));
    assert_eq!(
        s.settings.limit_conn[0].zone_key.as_deref(),
        Some("$binary_remote_addr")
    );
    assert_eq!(s.settings.limit_conn_status.value, 503);
    assert!(s.settings.limit_conn_status.is_default());
    assert_eq!(
        s.settings.error_pages.len(),
        1,
        "the location's error_page hides the http one"
    );
    assert_eq!(s.settings.error_pages[0].response.as_deref(), Some("=200"));
    assert_eq!(
        s.settings.resolver.as_ref().map(|r| r.value.to_vec()),
        Some(vec![Text::from("127.0.0.53")])
    );
    assert_eq!(
        *p.settings.next_upstream.value,
        ["error", "timeout", "http_502"]
    );
    assert_eq!(p.settings.buffer_size.value, 16 * 1024);
    assert_eq!(
        p.settings.buffers.value,
        Buffers {
            count: 4,
            size: 32 * 1024
        }
    );
    let ssl = p.settings.ssl.as_ref().expect("ssl");
    assert!(ssl.server_name.value && !ssl.verify.value);
    assert_eq!(*ssl.protocols.value, ["TLSv1.2", "TLSv1.3"]);
    // The second, empty server inherits from http only.
    let empty = &m.scopes[m.servers[1].scope];
    assert_eq!(empty.settings.error_pages[0].codes, [502, 503, 504]);
    assert!(empty.settings.limit_req.is_empty());
    assert_eq!(m.worker_user().name, "nobody");
}

#[test]
fn directive_text_quotes_what_needs_it() {
    let m = model("http { server { location / { proxy_set_header Connection \"\"; proxy_set_header X \"a b\"; proxy_pass http://b; } } }");
    let texts: Vec<String> = m.passes[0]
        .settings
        .headers
        .iter()
        .map(|h| h.src.text())
        .collect();
    assert_eq!(
        texts,
        [
            "proxy_set_header Connection \"\";",
            "proxy_set_header X \"a b\";"
        ]
    );
}

/// Inherited lists are built once per level that sets them and shared by every scope that
/// inherits them; a level that sets its own gets its own. Upstream groups are found by protocol
/// and name, the first block of a name winning as in nginx.
#[test]
fn inherited_lists_are_shared_and_groups_found_by_name() {
    let m = model(
        r#"http {
    limit_req_zone $binary_remote_addr zone=one:10m rate=5r/s;
    limit_conn_zone $binary_remote_addr zone=addr:10m;
    upstream app { server 127.0.0.1:3000; }
    upstream app { server 127.0.0.1:4000; }
    upstream other { server 127.0.0.1:5000; }
    server {
        limit_req zone=one burst=5;
        limit_conn addr 10;
        location /a { proxy_pass http://app; }
        location /b { proxy_pass http://other; }
        location /c {
            limit_req zone=one burst=50 nodelay;
            limit_conn addr 1;
            proxy_pass http://app;
        }
    }
}
stream {
    upstream app { server 127.0.0.1:6000; }
    server { listen 9000; proxy_pass app; }
}"#,
    );
    let scope = |i: usize| m.scope(&m.passes[i]);
    let (a, b, c) = (scope(0), scope(1), scope(2));
    assert!(Arc::ptr_eq(&a.settings.limit_req, &b.settings.limit_req));
    assert!(Arc::ptr_eq(&a.settings.limit_conn, &b.settings.limit_conn));
    assert_eq!(
        (
            a.settings.limit_req[0].burst,
            a.settings.limit_conn[0].limit
        ),
        (Some(5), Some(10))
    );
    assert_eq!(
        (
            c.settings.limit_req[0].burst,
            c.settings.limit_conn[0].limit
        ),
        (Some(50), Some(1))
    );
    assert!(c.settings.limit_req[0].nodelay && !a.settings.limit_req[0].nodelay);
    assert_eq!(a.settings.limit_req[0].src.line(), 8);
    let groups: Vec<(String, u16)> = m
        .passes
        .iter()
        .map(|p| {
            let g = m.group(p).expect("a group");
            (g.name.clone(), g.servers[0].port.unwrap_or(0))
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("app".to_string(), 3000),
            ("other".to_string(), 5000),
            ("app".to_string(), 3000),
            ("app".to_string(), 6000),
        ]
    );
}

/// The module directives written out per module are the module's prefix and the setting.
#[test]
fn module_directive_names_follow_the_prefix() {
    for kind in PassKind::ALL {
        let names = super::build::module_directives_of(kind);
        for (name, setting) in names {
            assert_eq!(name, format!("{}_{setting}", kind.prefix()));
        }
    }
}

/// Within a level, small or large, a scalar is its first directive of the name and a list is
/// all of them, in order.
#[test]
fn a_level_gives_its_first_scalar_and_its_whole_list() {
    let body = |padding: usize| {
        let pad: String = (0..padding)
            .map(|i| format!("        add_header X-Pad-{i} {i};\n"))
            .collect();
        format!(
            "http {{\n    server {{\n{pad}        proxy_read_timeout 7s;\n        \
             proxy_read_timeout 9s;\n        proxy_set_header A 1;\n        proxy_set_header B 2;\n        \
             location / {{ proxy_pass http://127.0.0.1:1; }}\n    }}\n}}\n"
        )
    };
    for padding in [0, 40] {
        let m = model(&body(padding));
        let p = &m.passes[0];
        assert_eq!(
            p.settings.read_timeout.value,
            Duration::from_secs(7),
            "{padding}"
        );
        let headers: Vec<&str> = p.settings.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(headers, ["A", "B"], "{padding}");
        assert_eq!(
            p.settings.read_timeout.src.as_ref().map(|s| s.line()),
            Some(3 + padding as u32)
        );
    }
}

/// The vectors are sized from this count: a snippet of locations included by every server
/// makes scopes and passes in each (and an upstream's `server` lines make none).
#[test]
fn blocks_are_counted_once_per_inclusion() {
    let cfg = config(&[
        (
            "nginx.conf",
            "http {\n    upstream app {\n        server 127.0.0.1:3000;\n        server 127.0.0.1:3001;\n    }\n    server {\n        include api.conf;\n    }\n    server {\n        include api.conf;\n        location / {\n            if ($x) {\n                return 404;\n            }\n        }\n    }\n    server {\n        include api.conf;\n    }\n}\n",
        ),
        (
            "api.conf",
            "location /api {\n    proxy_pass http://app;\n}\nlocation /php {\n    fastcgi_pass unix:/run/php.sock;\n}\n",
        ),
    ]);
    let m = build(&cfg, &BuildOptions::default());
    assert_eq!((m.scopes.len(), m.passes.len()), (11, 6));
    let http = cfg.files[0].parsed[0].block.as_deref().unwrap();
    let servers: Vec<&medic_parse::config::Directive> =
        http.iter().filter(|d| d.name == "server").collect();
    assert_eq!(super::build::count(&cfg, &servers), (11, 6));
}

/// The upstream blocks are built on a thread of their own and added at the servers of their
/// protocol block: the model is the one a builder makes by itself, with the first block of a
/// name found by passes, `http` and `stream` names apart, and blocks in included files.
#[test]
fn upstreams_built_apart_change_nothing() {
    let cfg = config(&[
        (
            "nginx.conf",
            "http {\n    upstream app {\n        server 127.0.0.1:3000 max_fails=2;\n        keepalive 8;\n    }\n    include ups/*.conf;\n    upstream app {\n        server 127.0.0.1:4000;\n    }\n    server {\n        location / {\n            proxy_pass http://app;\n        }\n        location /b {\n            proxy_pass http://b;\n        }\n    }\n}\nstream {\n    upstream app {\n        server unix:/run/app.sock;\n    }\n    server {\n        listen 9000;\n        proxy_pass app;\n    }\n}\n",
        ),
        ("ups/b.conf", "upstream b {\n    server b.internal;\n}\n"),
    ]);
    let opts = BuildOptions::default();
    let apart = build(&cfg, &opts);
    let names: Vec<_> = apart
        .upstreams
        .iter()
        .map(|u| (u.protocol, u.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (Protocol::Http, "app"),
            (Protocol::Http, "b"),
            (Protocol::Http, "app"),
            (Protocol::Stream, "app"),
        ]
    );
    let groups: Vec<_> = apart
        .passes
        .iter()
        .map(|p| match &p.target {
            Target::Group { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(groups, [Some(0), Some(1), Some(3)]);
    assert_same(
        &format!("{:#?}", super::build::build_upstreams_here(&cfg, &opts)),
        &format!("{apart:#?}"),
        "upstreams built by the builder itself",
    );
}

/// The same model, whether a protocol block's servers are built on one thread or split across
/// two (which a config of `PARALLEL_SERVERS` servers or more is).
fn assert_split_changes_nothing(cfg: &std::sync::Arc<medic_parse::config::Config>, what: &str) {
    let opts = BuildOptions {
        prefix: Some("/etc/nginx".into()),
    };
    let one = format!("{:#?}", super::build::build_with(cfg, &opts, usize::MAX));
    // Counts that size the split's parts right, and wrong every way (`split::give_back`).
    for miscount in [(0, 0), (-1, 0), (2, 0), (0, -1), (1, -2)] {
        let split = format!(
            "{:#?}",
            super::build::build_miscounted(cfg, &opts, 2, miscount)
        );
        assert_same(&one, &split, &format!("{what}, miscounted by {miscount:?}"));
    }
}

fn assert_same(one: &str, split: &str, what: &str) {
    if one != split {
        let at = one
            .lines()
            .zip(split.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let around = |s: &str| {
            s.lines()
                .skip(at.saturating_sub(3))
                .take(8)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "{what}: the split build differs at line {at}:\n{}\n--- split:\n{}",
            around(one),
            around(split)
        );
    }
}

#[test]
fn servers_built_on_two_threads_make_the_same_model() {
    // Nine servers, so the halves differ in size; in both halves: a shared snippet of
    // locations, an access log also written in the other half, `set` variables, a server-level
    // error log, nested blocks, a group, inherited lists.
    let mut http = String::from(
        "http {\n    upstream app { server 127.0.0.1:3000; keepalive 8; }\n    limit_req_zone $binary_remote_addr zone=z:10m rate=1r/s;\n    limit_req zone=z burst=5;\n    fastcgi_param A a;\n    access_log logs/all.log;\n    map $host $to { default app; }\n",
    );
    for i in 0..9 {
        http.push_str(&format!(
            "    server {{\n        listen {port};\n        server_name s{i}.example;\n        access_log logs/s{shared}.log;\n        error_log logs/e{i}.log warn;\n        set $who s{i};\n        include api.conf;\n        location /{i} {{\n            proxy_read_timeout {i}s;\n            if ($x) {{ proxy_pass http://127.0.0.1:{port}; }}\n            location /{i}/inner {{ fastcgi_param B b; fastcgi_pass unix:/run/{i}.sock; }}\n        }}\n    }}\n",
            port = 8000 + i,
            shared = i % 3,
        ));
    }
    http.push_str("}\nstream {\n");
    for i in 0..3 {
        http.push_str(&format!(
            "    server {{ listen {port}; proxy_pass 127.0.0.1:{port}; }}\n",
            port = 9000 + i
        ));
    }
    http.push_str("}\n");
    let cfg = config(&[
        ("nginx.conf", &http),
        (
            "api.conf",
            "location /api { proxy_pass http://app; }\nlocation /dyn { proxy_pass http://$to; }\n",
        ),
    ]);
    let m = build(&cfg, &BuildOptions::default());
    assert_eq!((m.servers.len(), m.passes.len()), (12, 39));
    assert_split_changes_nothing(&cfg, "generated");
}

/// The same over every config of the in-repository corpus with two servers or more.
#[test]
fn corpus_models_are_the_same_built_on_two_threads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../medic-parse/tests/corpus/configs");
    let mut stack = vec![root];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "conf") {
                let cfg = std::sync::Arc::new(medic_parse::config::parse_file(
                    &path,
                    &medic_parse::config::Options::nginx(),
                ));
                let m = build(&cfg, &BuildOptions::default());
                if m.servers.len() >= 2 {
                    assert_split_changes_nothing(&cfg, &path.display().to_string());
                    checked += 1;
                }
            }
        }
    }
    // The corpus has 40 such configs; finding few means it moved.
    assert!(
        checked >= 30,
        "only {checked} corpus configs with two servers or more"
    );
}

/// Relative log paths are joined to the prefix as `Path::join` joins them; the others are
/// kept as written.
#[test]
fn paths_resolve_as_path_join() {
    for prefix in ["/etc/nginx", "/etc/nginx/", "/", "rel", "/a//"] {
        for p in ["logs/access.log", "", "a b/ü.log", "./x", "../y"] {
            let joined = std::path::Path::new(prefix).join(p).display().to_string();
            assert_eq!(
                super::build::resolve(Some(prefix), p),
                joined,
                "{prefix} {p}"
            );
        }
        for p in [
            "/var/log/a.log",
            "stderr",
            "syslog:server=unix:/dev/log",
            "memory:32m",
        ] {
            assert_eq!(super::build::resolve(Some(prefix), p), p);
        }
    }
    assert_eq!(super::build::resolve(None, "logs/a.log"), "logs/a.log");
    assert_eq!(super::build::resolve(Some(""), "logs/a.log"), "logs/a.log");
}

/// The servers of a protocol block counted as the build meets them, split across any two
/// halves.
#[test]
fn servers_count_as_the_whole_does() {
    let cfg = config(&[
        (
            "nginx.conf",
            "http {\n    upstream app { server 127.0.0.1:3000; }\n    server { include api.conf; }\n    server {\n        include api.conf;\n        location / { if ($x) { return 404; } grpc_pass grpc://app; }\n    }\n    server { listen 80; }\n}\n",
        ),
        (
            "api.conf",
            "location /api { proxy_pass http://app; }\nlocation /php { fastcgi_pass unix:/run/php.sock; }\n",
        ),
    ]);
    let http = cfg.files[0].parsed[0].block.as_deref().unwrap();
    let servers: Vec<&medic_parse::config::Directive> =
        http.iter().filter(|d| d.name == "server").collect();
    let count = |servers: &[&medic_parse::config::Directive]| super::build::count(&cfg, servers);
    let m = build(&cfg, &BuildOptions::default());
    assert_eq!(count(&servers), (9, 5));
    assert_eq!(count(&servers), (m.scopes.len(), m.passes.len()));
    for half in 0..=servers.len() {
        let (a, b) = servers.split_at(half);
        let (sa, pa) = count(a);
        let (sb, pb) = count(b);
        assert_eq!((sa + sb, pa + pb), count(&servers), "{half}");
    }
}

/// A file included from an included file counts once per inclusion, as the build meets it.
#[test]
fn counts_follow_nested_includes() {
    let cfg = config(&[
        (
            "nginx.conf",
            "http {\n    server { include site.conf; }\n    server { include site.conf; location /b { include pass.conf; } }\n}\n",
        ),
        ("site.conf", "location /a { include pass.conf; }\n"),
        ("pass.conf", "proxy_pass http://127.0.0.1:1;\n"),
    ]);
    let m = build(&cfg, &BuildOptions::default());
    let http = cfg.files[0].parsed[0].block.as_deref().unwrap();
    let servers: Vec<&medic_parse::config::Directive> = http.iter().collect();
    let count = |servers: &[&medic_parse::config::Directive]| super::build::count(&cfg, servers);
    assert_eq!(count(&servers), (m.scopes.len(), m.passes.len()));
    assert_eq!(count(&servers), (5, 3));
    assert_eq!(count(&servers[1..]), (3, 2));
}

#[test]
fn passes_set_by_the_same_tls_directives_share_their_settings() {
    let m = model(
        "http {\n    proxy_ssl_server_name on;\n    server {\n        location /a { proxy_pass https://a; }\n        location /b { proxy_pass https://b; }\n        location /c { proxy_ssl_verify on; proxy_pass https://c; }\n        location /d { fastcgi_pass unix:/run/d.sock; }\n    }\n}\n",
    );
    let ssl = |i: usize| {
        m.passes[i]
            .settings
            .ssl
            .clone()
            .expect("proxy has TLS settings")
    };
    assert!(Arc::ptr_eq(&ssl(0), &ssl(1)));
    assert!(!Arc::ptr_eq(&ssl(0), &ssl(2)));
    assert!(ssl(0).server_name.value && !ssl(0).verify.value);
    assert!(ssl(2).server_name.value && ssl(2).verify.value);
    assert!(m.passes[3].settings.ssl.is_none());
}

/// Scopes whose inherited settings come from the same directives share them; a scope that
/// writes one of them has its own, and its nested scopes share that.
#[test]
fn scopes_share_settings_made_by_the_same_directives() {
    let m = model(
        r#"http {
    resolver 127.0.0.1;
    server {
        listen 80;
        location /a { return 200; }
        location /b { return 200; }
        location /c {
            limit_req_status 429;
            location /c/d { return 200; }
        }
    }
    server { listen 81; }
}"#,
    );
    let by_args = |args: &str| {
        m.scopes
            .iter()
            .find(|s| s.args.join(" ") == args)
            .unwrap_or_else(|| panic!("{args}"))
    };
    let (server, a, b, c, d) = (
        &m.scopes[m.servers[0].scope],
        by_args("/a"),
        by_args("/b"),
        by_args("/c"),
        by_args("/c/d"),
    );
    let other = &m.scopes[m.servers[1].scope];
    assert!(Arc::ptr_eq(&server.settings, &a.settings));
    assert!(Arc::ptr_eq(&a.settings, &b.settings));
    assert!(Arc::ptr_eq(&server.settings, &other.settings));
    assert!(!Arc::ptr_eq(&a.settings, &c.settings));
    assert!(Arc::ptr_eq(&c.settings, &d.settings));
    assert_eq!(c.settings.limit_req_status.value, 429);
    assert_eq!(a.settings.limit_req_status.value, 503);
    assert_eq!(
        d.settings.resolver.as_ref().map(|r| r.value.to_vec()),
        Some(vec![Text::from("127.0.0.1")])
    );
}

/// Passes of one module whose settings come from the same directives share them; another
/// module, `stream {}`, or a setting written at the pass's level makes settings of their own.
#[test]
fn passes_share_settings_made_by_the_same_directives() {
    let m = model(
        r#"http {
    proxy_read_timeout 5s;
    server {
        listen 80;
        location /a { proxy_pass http://127.0.0.1:1; }
        location /b { proxy_pass https://127.0.0.1:2; }
        location /c { proxy_read_timeout 7s; proxy_pass http://127.0.0.1:3; }
        location /d { grpc_pass grpc://127.0.0.1:4; }
    }
}
stream {
    server { listen 9000; proxy_pass 127.0.0.1:5; }
}"#,
    );
    let by_url = |url: &str| {
        m.passes
            .iter()
            .find(|p| p.url == url)
            .unwrap_or_else(|| panic!("{url}"))
    };
    let (a, b, c, d, e) = (
        by_url("http://127.0.0.1:1"),
        by_url("https://127.0.0.1:2"),
        by_url("http://127.0.0.1:3"),
        by_url("grpc://127.0.0.1:4"),
        by_url("127.0.0.1:5"),
    );
    assert!(Arc::ptr_eq(&a.settings, &b.settings));
    assert!(!a.tls && b.tls);
    for other in [c, d, e] {
        assert!(!Arc::ptr_eq(&a.settings, &other.settings), "{}", other.url);
    }
    let secs = |p: &Pass| p.settings.read_timeout.value.as_secs();
    assert_eq!([secs(a), secs(c), secs(d), secs(e)], [5, 7, 60, 600]);
}
