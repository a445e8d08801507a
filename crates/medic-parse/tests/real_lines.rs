//! Real error-log lines from permissively licensed projects (`fixtures/ATTRIBUTION.md`), parsed
//! field by field. Unlike `corpus.rs` these live in the repository, so they run everywhere.

use medic_parse::error_log::{
    classify, may_be_failure, parse, parse_head, ErrorEntry, FailureClass,
};
use medic_parse::upstream::target;

const LINES: &str = include_str!("fixtures/real-error-lines.log");

/// One line per entry: the head, the class, then each field that is present.
fn render(e: &ErrorEntry<'_>) -> String {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out = format!("{} {} {}#{}", e.time, e.level.as_str(), e.pid, e.tid);
    if let Some(c) = e.cid {
        out += &format!(" *{c}");
    }
    out += &format!(" {} | text={}", classify(e).id(), s(e.text));
    if let Some(x) = e.errno {
        out += &format!(" | errno={}:{}", x.code, s(x.text));
    }
    let c = &e.context;
    for (k, v) in [
        ("action", e.action),
        ("resolver", e.resolver),
        ("client", c.client),
        ("server", c.server),
        ("request", c.request),
        ("upstream", c.upstream),
        ("host", c.host),
        ("referrer", c.referrer),
    ] {
        if let Some(v) = v {
            out += &format!(" | {k}={}", s(v));
        }
    }
    if let Some(u) = c.upstream {
        out += &format!(" | target={}", s(target(u)));
    }
    if e.truncated {
        out += " | truncated";
    }
    out
}

const WANT: [&str; 26] = [
    // nginx/nginx-gateway-fabric
    "2025-01-13T22:52:26 error 704#704 *231 no-live-upstreams | text=no live upstreams | action=connecting to upstream | client=10.138.0.109 | server=17.example.com | request=GET / HTTP/2.0 | upstream=http://scale_backend-17_80/ | host=17.example.com | target=scale_backend-17_80",
    // The same message with its values unquoted, as these results print them.
    "2026-08-01T17:39:53 error 1079#1079 *2179 no-live-upstreams | text=no live upstreams | action=connecting to upstream | client=136.66.13.254 | server=52.example.com | request=GET / HTTP/2.0 | upstream=http://scale_backend-52_80/ | host=52.example.com | target=scale_backend-52_80",
    "2026-05-04T03:18:56 error 220547#220547 *81388340 connect-timeout | text=upstream timed out | errno=110:Operation timed out | action=connecting to upstream | client=10.138.0.74 | server=cafe.example.com | request=GET /tea HTTP/1.1 | upstream=http://10.8.2.175:8080/tea | host=cafe.example.com | target=10.8.2.175:8080",
    "2026-05-04T03:18:56 warn 220547#220547 *81388340 other | text=upstream server temporarily disabled | action=connecting to upstream | client=10.138.0.74 | server=cafe.example.com | request=GET /tea HTTP/1.1 | upstream=http://10.8.2.175:8080/tea | host=cafe.example.com | target=10.8.2.175:8080",
    "2026-05-04T03:00:18 error 220549#220549 *81169042 upstream-reset | text=recv() failed | errno=104:Connection reset by peer | action=reading response header from upstream | client=10.138.0.74 | server=cafe.example.com | request=GET /tea HTTP/1.1 | upstream=http://10.8.0.20:8080/tea | host=cafe.example.com | target=10.8.0.20:8080",
    "2026-05-04T03:00:18 error 220540#220540 *81168965 premature-close | text=upstream prematurely closed connection | action=reading response header from upstream | client=10.138.0.74 | server=cafe.example.com | request=GET /tea HTTP/1.1 | upstream=http://10.8.0.20:8080/tea | host=cafe.example.com | target=10.8.0.20:8080",
    "2024-08-16T17:14:48 info 138#138 *9 other | text=client unix: closed keepalive connection",
    "2024-08-16T17:14:11 notice 25#25 other | text=using the \"epoll\" event method",
    "2024-08-16T17:14:11 notice 25#25 other | text=start worker processes",
    "2024-08-16T17:14:13 notice 25#25 other | text=signal 17 (SIGCHLD) received from 35",
    "2025-06-02T16:12:16 emerg 8#8 other | text=unexpected end of file, expecting \"}\" in /etc/nginx/conf.d/http.conf:666",
    "2023-10-10T22:46:54 emerg 141#141 other | text=bind() to unix:/var/run/nginx/nginx-config-version.sock failed | errno=98:Address in use",
    "2024-08-16T17:15:17 crit 139#139 other | text=ngx_slab_alloc() failed: no memory in upstream zone \"scale_backend_80\"",
    // crowdsecurity/hub
    "2023-09-23T09:58:51 error 298#298 *1093 fastcgi-stderr | text=FastCGI sent in stderr: \"PHP message: Failed login for user@example.com\" | action=reading response header from upstream | client=1.2.3.4 | server=_ | request=POST /login HTTP/1.1 | upstream=fastcgi://127.0.0.1:9000 | host=bookstack.example.com | referrer=https://bookstack.example.com/login | target=127.0.0.1:9000",
    "2021-12-02T11:53:15 error 4065777#4065777 *42952950 rate-limited | text=limiting requests, excess: 5.428 by zone \"default_root_zone\" | client=::1 | server= | request=GET / HTTP/1.1 | host=la03.d.sb",
    // The mail proxy's reverse lookup of its client.
    "2022-04-02T15:45:23 error 8#8 *15950 other | text=5.34.207.182 could not be resolved | errno=3:Host not found | action=in resolving client address | client=5.34.207.182 | server=0.0.0.0:25",
    // `login:` is the mail module's own key: read over, not kept.
    "2022-04-02T13:39:51 info 8#8 *6631 other | text=client login failed: \"AUTH not supported\" | action=in http auth state | client=5.34.207.182 | server=0.0.0.0:25",
    "2021-09-30T09:23:53 error 1925800#1925800 *17 other | text=user \"foo\" was not found in \"/tmp/a.htpasswd\" | client=127.0.0.1 | server=_ | request=GET / HTTP/1.1 | host=localhost",
    "2024-02-10T21:22:09 error 1124#1124 *163 other | text=open() \"/var/www/booking/dsfgsdf\" failed | errno=2:No such file or directory | client=192.168.1.100 | server=booking.example.org | request=GET /dsfgsdf HTTP/2.0 | host=booking.example.org",
    "2021-12-01T13:53:33 error 31#31 *46 other | text=\"/usr/share/nginx/html/market/index.html\" is not found | errno=2:No such file or directory | client=172.17.0.1 | server=localhost | request=GET /market/ HTTP/1.1 | host=localhost",
    "2022-04-05T04:45:57 error 8#8 *23638 other | text=directory index of \"/static/\" is forbidden | client=34.77.162.21 | server= | request=GET / HTTP/1.1 | host=mail.example.com",
    // vectordotdev/vrl
    "2022-04-15T08:16:13 error 7164#7164 *20 connect-unreachable | text=connect() failed | errno=113:No route to host | action=connecting to upstream | client=10.244.0.0 | server=test.local | request=GET / HTTP/2.0 | upstream=http://127.0.0.1:80/ | target=127.0.0.1:80",
    // limit_req's delay is not a refusal: the request is served late.
    "2022-05-30T20:56:22 error 7164#7164 *38068741 other | text=delaying requests, excess: 50.416, by zone \"api_access_token\" | client=10.244.0.0 | server=test.local | request=GET / HTTP/2.0 | host=127.0.0.1:8080",
    "2023-09-08T13:50:28 warn 3#3 *531 other | text=an upstream response is buffered to a temporary file /var/lib/nginx/tmp/fastcgi/6/03/0000000036 | action=reading upstream | client=10.224.1.1 | server= | request=GET / HTTP/1.1 | upstream=fastcgi://127.0.0.1:9000 | host= | referrer= | target=127.0.0.1:9000",
    // A reset while reading from the upstream, but reported about the client: not the upstream's fault.
    "2022-05-30T20:56:22 info 3134#0 *99247 other | text=epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too | errno=104:Connection reset by peer | action=reading upstream | client=10.244.0.0 | server=example.org | request=GET / HTTP/1.1 | upstream=fastcgi://unix:/run/php-fpm/php8.3-fpm.sock: | host=example:8080 | target=unix:/run/php-fpm/php8.3-fpm.sock",
    "2021-06-17T19:25:59 notice 133309#133309 other | text=signal process started",
];

#[test]
fn real_lines_parse_field_by_field() {
    let lines: Vec<&str> = LINES.lines().collect();
    assert_eq!(lines.len(), WANT.len());
    let mut failed = Vec::new();
    for (i, (line, want)) in lines.iter().zip(WANT).enumerate() {
        let e = parse(line.as_bytes()).unwrap_or_else(|| panic!("line {}: not parsed", i + 1));
        let got = render(&e);
        if got != want {
            failed.push(format!("line {}:\n  want {want}\n  got  {got}", i + 1));
        }
        // The prefilter agrees on every real line, failure or not.
        let head = parse_head(line.as_bytes()).unwrap();
        let msg = &line.as_bytes()[head.message_start..];
        if classify(&e) != FailureClass::Other {
            assert!(may_be_failure(head.level, msg), "line {}", i + 1);
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
