//! Parser throughput on representative lines (criterion, bytes per second). The whole-program
//! comparison with the peers (rg, mawk, GoAccess) is `bench/run.sh`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use medic_parse::access_log::LogFormat;
use medic_parse::error_log::{classify, parse, parse_head, starts_entry};
use std::hint::black_box;

const ERROR_LINES: &[&str] = &[
    "2023/10/26 00:01:12 [error] 1402#1402: *46382 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 185.186.169.24, server: metrics.corp.example, request: \"POST /api/v2/posts/metrics HTTP/2.0\", upstream: \"http://10.13.56.69:8888/api/v2/posts/metrics\", host: \"metrics.corp.example\", referrer: \"https://metrics.corp.example/search?q=shoes\"",
    "2023/10/26 00:00:53 [crit] 1408#1408: *38847 connect() to unix:/var/run/app/node.sock failed (2: No such file or directory) while connecting to upstream, client: 117.38.216.152, server: docs.shopco.de, request: \"GET /api/v2/users/2676059 HTTP/1.1\", upstream: \"http://unix:/var/run/app/node.sock:/api/v2/users/2676059\", host: \"docs.shopco.de\"",
    "2023/10/26 00:01:24 [warn] 1401#1401: *51443 an upstream response is buffered to a temporary file /var/cache/nginx/fastcgi_temp/7/50/0085905214 while reading upstream, client: 192.137.108.204, server: reports.acme.io, request: \"GET /api/v1/media?page=131&per_page=50 HTTP/1.0\", upstream: \"http://10.11.58.238:9000/api/v1/media?page=131&per_page=50\", host: \"reports.acme.io\"",
    "2023/10/26 00:00:20 [error] 1408#1408: *24766 connect() failed (111: Connection refused) while connecting to upstream, client: 192.86.128.205, server: staging.corp.example, request: \"POST /admin.v1.CommentsService/Create HTTP/2.0\", upstream: \"grpc://10.19.198.254:8081\", host: \"staging.corp.example\"",
    "2026/11/21 20:26:52 [info] 8131#8131: *3 client 127.0.0.1 closed keepalive connection",
];

const ACCESS_LINE: &str = "10.1.2.3 - - [26/Oct/2023:00:00:01 +0000] \"GET /api/v1/items/42?x=1 HTTP/1.1\" 502 157 \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0\" 10.0.0.1:8080, 10.0.0.2:8080 502, 502 0.001, 0.002 0.004";

fn error_log(c: &mut Criterion) {
    let bytes: usize = ERROR_LINES.iter().map(|l| l.len() + 1).sum();
    let mut g = c.benchmark_group("error_log");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("parse_and_classify", |b| {
        b.iter(|| {
            for l in ERROR_LINES {
                let e = parse(black_box(l.as_bytes())).expect("valid");
                black_box(classify(&e));
            }
        })
    });
    g.bench_function("head_only", |b| {
        b.iter(|| {
            for l in ERROR_LINES {
                black_box(
                    starts_entry(l.as_bytes()) && parse_head(black_box(l.as_bytes())).is_some(),
                );
            }
        })
    });
    g.finish();
}

fn access_log(c: &mut Criterion) {
    let f = LogFormat::compile(medic_parse::access_log::KNOWN[0].1).expect("known format");
    let mut g = c.benchmark_group("access_log");
    g.throughput(Throughput::Bytes(ACCESS_LINE.len() as u64 + 1));
    g.bench_function("full", |b| {
        b.iter(|| black_box(f.parse(black_box(ACCESS_LINE.as_bytes())).is_ok()))
    });
    g.bench_function("status_only", |b| {
        b.iter(|| {
            black_box(
                f.parse_upto(
                    black_box(ACCESS_LINE.as_bytes()),
                    &[medic_parse::access_log::Field::Status],
                )
                .is_ok(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, error_log, access_log);
criterion_main!(benches);
