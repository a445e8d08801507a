//! Config parsing throughput (criterion, bytes per second) on a synthetic config of 2,000
//! server blocks over 100 included files, in memory: lex + parse + checks, and the crossplane
//! JSON. The whole-program comparison with `crossplane parse` is `bench/config.sh`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use medic_parse::config::{lexer, parse_with, to_json, JsonStyle, MemFs, Options};
use std::hint::black_box;

fn server(i: usize) -> String {
    format!(
        "# app{i}\nserver {{\n    listen 443 ssl http2;\n    server_name app{i}.example.com www.app{i}.example.com;\n    \
         ssl_certificate /etc/ssl/app{i}.pem;\n    include snippets/ssl.conf;\n    root /var/www/app{i};\n    \
         if ($blocked) {{ return 403; }}\n    location / {{ try_files $uri $uri/ /index.php?$args; }}\n    \
         location ~ \\.php$ {{\n        include fastcgi_params;\n        fastcgi_pass unix:/run/php/app{i}.sock;\n        \
         fastcgi_read_timeout 60s;\n    }}\n    location /api/ {{ proxy_pass http://backend{i}; proxy_set_header Host \"$host\"; }}\n}}\n"
    )
}

fn config() -> (MemFs, usize) {
    let mut fs = MemFs::default();
    let mut bytes = 0;
    let main = "user www-data;\nevents { worker_connections 1024; }\nhttp {\n    include /c/sites/*.conf;\n}\n";
    fs.insert("/c/nginx.conf", main);
    fs.insert("/c/snippets/ssl.conf", "ssl_protocols TLSv1.2 TLSv1.3;\n");
    fs.insert(
        "/c/fastcgi_params",
        "fastcgi_param QUERY_STRING $query_string;\n",
    );
    for f in 0..100 {
        let text: String = (0..20).map(|i| server(f * 20 + i)).collect();
        bytes += text.len();
        fs.insert(format!("/c/sites/{f:03}.conf"), text);
    }
    (fs, bytes + main.len())
}

fn config_bench(c: &mut Criterion) {
    let (fs, bytes) = config();
    let mut g = c.benchmark_group("config");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("lex", |b| {
        let texts: Vec<String> = fs.files.values().map(|v| lexer::decode(v)).collect();
        b.iter(|| {
            for t in &texts {
                black_box(lexer::lex(black_box(t)));
            }
        })
    });
    g.bench_function("parse", |b| {
        b.iter(|| black_box(parse_with(&fs, "/c/nginx.conf", &Options::default())))
    });
    let parsed = parse_with(&fs, "/c/nginx.conf", &Options::default());
    assert!(parsed.errors().next().is_none());
    g.bench_function("crossplane_json", |b| {
        b.iter(|| black_box(to_json(black_box(&parsed), JsonStyle::default())))
    });
    g.finish();
}

criterion_group!(benches, config_bench);
criterion_main!(benches);
