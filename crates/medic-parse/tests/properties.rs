//! Property tests of the parsers.
//!
//! - any bytes: no parser panics (and the classifier's prefilter agrees with the classifier);
//! - a well-formed error-log entry, built from its fields, parses back to exactly those fields and
//!   classifies as the template it came from says;
//! - an access line, built from a random `log_format` over the variables nginx-medic reads, gives
//!   back every value it was built from;
//! - an error-log entry cut at any byte still parses without panicking, and is never given a
//!   failure class other than its own;
//! - `LogTime` converts to the civil calendar and back.

use std::sync::LazyLock;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use medic_parse::access_log::{origin, Escape, Field, LogFormat, COMBINED, KNOWN, MAIN};
use medic_parse::error_log::{
    classify, may_be_failure, parse, parse_head, starts_entry, FailureClass, Level,
};
use medic_parse::input::LogKind;
use medic_parse::time::LogTime;
use medic_parse::upstream;

// ---------------------------------------------------------------------------------------------
// (a) Any bytes

static FORMATS: LazyLock<Vec<LogFormat>> = LazyLock::new(|| {
    let mut v: Vec<LogFormat> = KNOWN
        .iter()
        .map(|(_, f)| LogFormat::compile(f).unwrap())
        .collect();
    v.push(LogFormat::compile("$remote_addr $request $status $upstream_addr").unwrap());
    v.push(
        LogFormat::compile_with(
            "{\"r\":\"$request\",\"s\":\"$status\",\"u\":\"$upstream_addr\"}",
            Escape::Json,
        )
        .unwrap(),
    );
    v
});

const ALL_FIELDS: [Field; Field::COUNT] = Field::ALL;

/// Every parser on the same bytes. Panics only on a broken invariant.
fn exercise(b: &[u8]) {
    let _ = starts_entry(b);
    let _ = LogKind::sniff(b);
    if let Some(e) = parse(b) {
        let class = classify(&e);
        let entry = b.strip_suffix(b"\r").unwrap_or(b);
        let head = parse_head(entry).expect("parse() implies parse_head()");
        if class != FailureClass::Other {
            assert!(may_be_failure(head.level, &entry[head.message_start..]));
        }
        if let Some(u) = e.context.upstream {
            let _ = upstream::target(u);
        }
    }
    let _ = LogTime::parse_error_log(b);
    let _ = LogTime::parse_time_local(b);
    let _ = LogTime::parse_iso(b);
    let _ = LogTime::parse_msec(b);
    let _ = upstream::target(b);
    let _ = upstream::list(b).count();
    let _ = upstream::last(b);
    for f in FORMATS.iter() {
        if let Ok(r) = f.parse(b) {
            let _ = (r.status(), r.time());
            let _ = origin(
                r.get(Field::UpstreamStatus),
                r.get(Field::UpstreamHeaderTime),
            );
        }
        let _ = f.parse_exact(b);
        let _ = f.parse_upto(b, &[Field::Status]);
    }
    let _ = LogFormat::detect(b, &FORMATS);
    if let Ok(f) = LogFormat::compile(&String::from_utf8_lossy(b)) {
        let _ = f.parse(b);
        let _ = f.parse_upto(b, &ALL_FIELDS);
    }
}

/// Pieces of nginx's text, so that random input gets past the first checks.
const TOKENS: &[&str] = &[
    "2026/11/20 14:32:10 [error] 8131#8131: *42 ",
    "2026/11/20 14:32:10 [warn] 1#0: ",
    "2026/02/30 24:61:61 [crit] 1#1: *",
    "connect() ",
    "to unix:/run/php.sock ",
    "failed ",
    "(111: Connection refused)",
    "(24: Too many open files)",
    "(104: ",
    "upstream timed out ",
    "upstream sent too big header",
    "no live upstreams",
    "SSL_do_handshake() failed ",
    "FastCGI sent in stderr: \"",
    " could not be resolved (",
    "limiting requests",
    " while ",
    "connecting to upstream",
    "reading response header from upstream",
    "resolving",
    ", resolver: ",
    ", client: ",
    ", server: ",
    ", request: \"",
    ", upstream: \"",
    ", host: \"",
    "\"",
    ", ",
    " : ",
    ":",
    "(",
    ")",
    " ",
    "\n",
    "\r",
    "\\",
    "http://",
    "fastcgi://unix:/x:",
    "[::1]:80",
    "[",
    "]",
    "$remote_addr",
    "$time_local",
    "$request",
    "$upstream_addr",
    "${status}",
    "$",
    "20/Nov/2026:14:32:10 +0100",
    "GET / HTTP/1.1",
    "502",
    "-",
    "0.001",
    "\u{0}",
    "\u{ff}",
];

fn nginxish() -> impl Strategy<Value = Vec<u8>> {
    vec(select(TOKENS), 0..40).prop_map(|v| v.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_bytes_never_panic(b in vec(any::<u8>(), 0..600)) {
        exercise(&b);
    }

    #[test]
    fn nginxish_bytes_never_panic(b in nginxish()) {
        exercise(&b);
    }

    #[test]
    fn valid_head_with_any_tail_never_panics(
        head in select(&TOKENS[..3]),
        tail in vec(any::<u8>(), 0..2200),
    ) {
        let mut b = head.as_bytes().to_vec();
        b.extend_from_slice(&tail);
        exercise(&b);
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Well-formed error-log entries

/// How a template's class depends on the level.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// The same class at every level.
    Always(FailureClass),
    /// This class at `[error]` and above (where nginx writes it), `Other` below.
    ErrorOrAbove(FailureClass),
}

impl Rule {
    fn class(self, level: Level) -> FailureClass {
        match self {
            Rule::Always(c) => c,
            Rule::ErrorOrAbove(c) if level <= Level::Error => c,
            Rule::ErrorOrAbove(_) => FailureClass::Other,
        }
    }
}

/// A message as nginx writes it, with the fields it must parse into.
#[derive(Clone, Debug)]
struct Message {
    /// `TEXT[ (ERRNO: STRERROR)][ while ACTION][, resolver: ADDR]`.
    raw: String,
    text: String,
    errno: Option<(u32, String)>,
    action: Option<String>,
    resolver: Option<String>,
    rule: Rule,
    /// Whether nginx appends the request context to this message.
    context: bool,
}

fn message(text: String, errno: Option<(u32, &str)>, action: Option<&str>, rule: Rule) -> Message {
    let mut raw = text.clone();
    if let Some((code, s)) = errno {
        raw += &format!(" ({code}: {s})");
    }
    if let Some(a) = action {
        raw += &format!(" while {a}");
    }
    Message {
        raw,
        text,
        errno: errno.map(|(c, s)| (c, s.to_string())),
        action: action.map(str::to_string),
        resolver: None,
        rule,
        context: true,
    }
}

fn unix_path() -> impl Strategy<Value = String> {
    "/(run|var/run|tmp)/[a-z0-9._-]{1,20}\\.sock"
}

fn hostname() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}(\\.[a-z][a-z0-9-]{0,8}){0,3}"
}

fn message_strategy() -> impl Strategy<Value = Message> {
    use FailureClass::*;
    let connect = (
        select(vec![
            (111u32, "Connection refused", ConnectRefused),
            (113, "No route to host", ConnectUnreachable),
            (101, "Network is unreachable", ConnectUnreachable),
            (99, "Cannot assign requested address", PortsExhausted),
            (110, "Connection timed out", ConnectTimeout),
            (13, "Permission denied", ConnectPermission),
        ]),
        proptest::option::of(unix_path()),
    )
        .prop_map(|((code, s, class), unix)| {
            let text = match unix {
                Some(p) => format!("connect() to unix:{p} failed"),
                None => "connect() failed".to_string(),
            };
            message(
                text,
                Some((code, s)),
                Some("connecting to upstream"),
                Rule::Always(class),
            )
        });
    let unix_only = (
        select(vec![
            (2u32, "No such file or directory", SocketMissing),
            (11, "Resource temporarily unavailable", SocketBacklog),
        ]),
        unix_path(),
    )
        .prop_map(|((code, s, class), p)| {
            message(
                format!("connect() to unix:{p} failed"),
                Some((code, s)),
                Some("connecting to upstream"),
                Rule::Always(class),
            )
        });
    let timeout = (
        select(vec![
            ("connecting to upstream", ConnectTimeout),
            ("SSL handshaking to upstream", ConnectTimeout),
            ("sending request to upstream", SendTimeout),
            ("reading response header from upstream", ReadTimeout),
            ("reading upstream", ReadTimeout),
            ("proxying upgraded connection", ReadTimeout),
        ]),
        select(vec!["Connection timed out", "Operation timed out"]),
    )
        .prop_map(|((action, class), s)| {
            message(
                "upstream timed out".into(),
                Some((110, s)),
                Some(action),
                Rule::Always(class),
            )
        });
    let reset = select(vec![
        (
            "recv() failed",
            104u32,
            "Connection reset by peer",
            "reading response header from upstream",
        ),
        (
            "readv() failed",
            104,
            "Connection reset by peer",
            "reading upstream",
        ),
        (
            "writev() failed",
            32,
            "Broken pipe",
            "sending request to upstream",
        ),
        (
            "send() failed",
            104,
            "Connection reset by peer",
            "sending request to upstream",
        ),
        (
            "sendfile() failed",
            32,
            "Broken pipe",
            "sending request to upstream",
        ),
    ])
    .prop_map(|(text, code, s, action)| {
        message(
            text.into(),
            Some((code, s)),
            Some(action),
            Rule::Always(UpstreamReset),
        )
    });
    let plain = select(vec![
        ("upstream prematurely closed connection", "reading response header from upstream", Rule::Always(PrematureClose)),
        ("upstream prematurely closed FastCGI stdout", "reading response header from upstream", Rule::Always(PrematureClose)),
        ("upstream sent too big header", "reading response header from upstream", Rule::Always(HeaderTooBig)),
        ("upstream sent invalid header", "reading response header from upstream", Rule::ErrorOrAbove(InvalidResponse)),
        ("upstream sent invalid chunked response", "reading upstream", Rule::ErrorOrAbove(InvalidResponse)),
        ("no live upstreams", "connecting to upstream", Rule::Always(NoLiveUpstreams)),
        ("upstream server temporarily disabled", "connecting to upstream", Rule::Always(Other)),
        ("SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number)", "SSL handshaking to upstream", Rule::Always(TlsHandshake)),
        // nginx verifies the peer after the handshake: OpenSSL's words inside a failed one do
        // not make it a verify error.
        ("SSL_do_handshake() failed (SSL: error:0A000086:SSL routines::certificate verify failed)", "SSL handshaking to upstream", Rule::Always(TlsHandshake)),
        ("upstream SSL certificate does not match \"api.internal\"", "SSL handshaking to upstream", Rule::Always(TlsVerify)),
        ("SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share)", "SSL handshaking", Rule::Always(Other)),
        ("client prematurely closed connection", "reading client request body", Rule::Always(Other)),
    ])
    .prop_map(|(text, action, rule)| message(text.into(), None, Some(action), rule));
    let verify = Just(message(
        "upstream SSL certificate verify error:".into(),
        None,
        None,
        Rule::Always(TlsVerify),
    ))
    .prop_map(|mut m| {
        // nginx writes this one's reason without the space: `(10:certificate has expired)`.
        m.raw = "upstream SSL certificate verify error: (10:certificate has expired) while SSL handshaking to upstream".into();
        m.errno = Some((10, "certificate has expired".into()));
        m.action = Some("SSL handshaking to upstream".into());
        m
    });
    let limits = (
        "[a-z_]{1,12}",
        0u32..100_000,
        select(vec![
            (
                "limiting requests, excess: {x} by zone \"{z}\"",
                RateLimited,
            ),
            ("limiting connections by zone \"{z}\"", ConnLimited),
            ("delaying request, excess: {x}, by zone \"{z}\"", Other),
        ]),
    )
        .prop_map(|(zone, excess, (t, class))| {
            let x = format!("{}.{:03}", excess / 1000, excess % 1000);
            message(
                t.replace("{x}", &x).replace("{z}", &zone),
                None,
                None,
                Rule::Always(class),
            )
        });
    let dns = (
        hostname(),
        select(vec![(2u32, "Server failure"), (3, "Host not found")]),
    )
        .prop_map(|(h, (code, s))| {
            message(
                format!("{h} could not be resolved"),
                Some((code, s)),
                None,
                Rule::ErrorOrAbove(DnsFailure),
            )
        });
    let no_resolver = hostname().prop_map(|h| {
        message(
            format!("no resolver defined to resolve {h}"),
            None,
            None,
            Rule::Always(DnsFailure),
        )
    });
    let resolver_io = ("[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:53").prop_map(|addr| {
        let mut m = message(
            "send() failed".into(),
            Some((111, "Connection refused")),
            Some("resolving"),
            Rule::Always(DnsFailure),
        );
        m.raw += &format!(", resolver: {addr}");
        m.resolver = Some(addr);
        m.context = false;
        m
    });
    // PHP's stderr may hold anything nginx's own grammar uses, newlines included.
    let fastcgi = vec(
        select(vec![
            "PHP message: ",
            "x",
            " ",
            ", client: evil",
            "\" while y",
            "(1: z)",
            "\n",
            "Stack trace:",
            "#0 {main}",
            "\"",
            ":",
        ]),
        1..12,
    )
    .prop_map(|parts| {
        let php = parts.concat();
        message(
            format!("FastCGI sent in stderr: \"{php}\""),
            None,
            Some("reading response header from upstream"),
            Rule::Always(FastcgiStderr),
        )
    });
    let emfile = select(vec![
        (
            "socket() failed",
            Some("connecting to upstream"),
            Rule::Always(WorkerLimits),
        ),
        ("accept4() failed", None, Rule::ErrorOrAbove(WorkerLimits)),
        (
            "open() \"/var/www/index.html\" failed",
            None,
            Rule::ErrorOrAbove(WorkerLimits),
        ),
    ])
    .prop_map(|(text, action, rule)| {
        message(text.into(), Some((24, "Too many open files")), action, rule)
    });
    let noise = select(vec![
        ("client 10.0.0.1 closed keepalive connection", None, false),
        ("start worker process 8131", None, false),
        ("signal 17 (SIGCHLD) received from 8131", None, false),
        (
            "open() \"/usr/share/nginx/html/favicon.ico\" failed",
            Some((2u32, "No such file or directory")),
            true,
        ),
        (
            "an upstream response is buffered to a temporary file /var/cache/nginx/1/00/0000000001",
            None,
            true,
        ),
    ])
    .prop_map(|(text, errno, context)| {
        let mut m = message(text.into(), errno, None, Rule::Always(FailureClass::Other));
        m.context = context;
        m
    });
    prop_oneof![
        connect,
        unix_only,
        timeout,
        reset,
        plain,
        verify,
        limits,
        dns,
        no_resolver,
        resolver_io,
        fastcgi,
        emfile,
        noise,
    ]
}

#[derive(Clone, Debug, Default)]
struct Ctx {
    client: String,
    server: String,
    request: Option<String>,
    /// The URL and the peer [`upstream::target`] must make of it.
    upstream: Option<(String, String)>,
    host: Option<String>,
    referrer: Option<String>,
}

impl Ctx {
    fn render(&self) -> String {
        let mut s = format!(", client: {}, server: {}", self.client, self.server);
        if let Some(r) = &self.request {
            s += &format!(", request: \"{r}\"");
        }
        if let Some((u, _)) = &self.upstream {
            s += &format!(", upstream: \"{u}\"");
        }
        if let Some(h) = &self.host {
            s += &format!(", host: \"{h}\"");
        }
        if let Some(r) = &self.referrer {
            s += &format!(", referrer: \"{r}\"");
        }
        s
    }
}

fn ctx_strategy() -> impl Strategy<Value = Ctx> {
    let client = prop_oneof![
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        Just("2001:db8::80da:af6b:8b2c".to_string()),
        Just("::ffff:10.0.0.1".to_string()),
        Just("unix:".to_string()),
    ];
    let server = prop_oneof![Just(String::new()), Just("_".to_string()), hostname()];
    // nginx writes the request line raw: quotes and ", " may be in it, but a `", ` that looks
    // like the next key would be read as one (nginx gives no way to tell).
    let request = (
        select(vec!["GET", "POST", "HEAD", "PROPFIND"]),
        "/[a-zA-Z0-9/?=&%.,\"_ -]{0,40}",
        select(vec!["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"]),
    )
        .prop_filter(
            "a quote and a comma that look like the next key",
            |(_, uri, _)| !uri.contains("\", "),
        )
        .prop_map(|(m, uri, p)| format!("{m} {uri} {p}"));
    let upstream = prop_oneof![
        (
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            1u16..65535,
            "(/[a-z0-9]{0,8}){0,2}"
        )
            .prop_map(|(ip, port, uri)| (
                format!("http://{ip}:{port}{uri}"),
                format!("{ip}:{port}")
            )),
        unix_path().prop_map(|p| (format!("fastcgi://unix:{p}:"), format!("unix:{p}"))),
        unix_path().prop_map(|p| (format!("http://unix:{p}:/api/x"), format!("unix:{p}"))),
        Just(("http://[::1]:3000/".to_string(), "[::1]:3000".to_string())),
        Just((
            "grpcs://[fd00::1]:50051".to_string(),
            "[fd00::1]:50051".to_string()
        )),
        Just((
            "uwsgi://unix:////var/run/uwsgi.sock:".to_string(),
            "unix:////var/run/uwsgi.sock".to_string()
        )),
        "[a-z_][a-z0-9_-]{0,15}".prop_map(|g| (format!("http://{g}/x"), g)),
    ];
    let host = prop_oneof![
        Just(String::new()),
        hostname(),
        Just("127.0.0.1:8080".to_string())
    ];
    let referrer = prop_oneof![
        Just("https://example.com/, client: x".to_string()),
        "https://[a-z.]{1,12}/[a-z?=&]{0,12}",
        Just(String::new()),
    ];
    (
        client,
        server,
        proptest::option::of(request),
        proptest::option::of(upstream),
        proptest::option::of(host),
        proptest::option::of(referrer),
    )
        .prop_map(|(client, server, request, upstream, host, referrer)| Ctx {
            client,
            server,
            request,
            upstream,
            host,
            referrer,
        })
}

#[derive(Clone, Debug)]
struct Civil {
    y: i64,
    m: u32,
    d: u32,
    hh: u32,
    mi: u32,
    s: u32,
}

impl Civil {
    fn time(&self) -> LogTime {
        LogTime::from_civil(self.y, self.m, self.d, self.hh, self.mi, self.s).unwrap()
    }
}

fn civil(years: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = Civil> {
    (years, 1u32..=12, 1u32..=31, 0u32..24, 0u32..60, 0u32..60).prop_map(|(y, m, d, hh, mi, s)| {
        // Clamp the day into the month: 31 → 30/29/28 where needed.
        let mut d = d;
        while LogTime::from_civil(y, m, d, hh, mi, s).is_none() {
            d -= 1;
        }
        Civil { y, m, d, hh, mi, s }
    })
}

/// A generated entry: its text and what it is made of.
#[derive(Clone, Debug)]
struct Entry {
    line: String,
    time: Civil,
    level: Level,
    pid: u32,
    tid: u64,
    cid: Option<u64>,
    msg: Message,
    ctx: Option<Ctx>,
}

fn entry_strategy() -> impl Strategy<Value = Entry> {
    (
        civil(1000..=9999),
        select(Level::ALL.to_vec()),
        any::<u32>(),
        0u64..1_000_000_000_000,
        proptest::option::of(0u64..1_000_000_000_000_000_000),
        message_strategy(),
        proptest::option::of(ctx_strategy()),
    )
        .prop_map(|(time, level, pid, tid, cid, msg, ctx)| {
            let ctx = ctx.filter(|_| msg.context);
            let mut line = format!(
                "{:04}/{:02}/{:02} {:02}:{:02}:{:02} [{}] {pid}#{tid}: ",
                time.y,
                time.m,
                time.d,
                time.hh,
                time.mi,
                time.s,
                level.as_str()
            );
            if let Some(c) = cid {
                line += &format!("*{c} ");
            }
            line += &msg.raw;
            if let Some(c) = &ctx {
                line += &c.render();
            }
            Entry {
                line,
                time,
                level,
                pid,
                tid,
                cid,
                msg,
                ctx,
            }
        })
}

fn s(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8(b.to_vec()).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn error_entry_roundtrip(e in entry_strategy()) {
        let p = parse(e.line.as_bytes()).expect("a well-formed entry parses");
        prop_assert_eq!(p.time, e.time.time());
        prop_assert_eq!(p.level, e.level);
        prop_assert_eq!(p.pid, e.pid);
        prop_assert_eq!(p.tid, e.tid);
        prop_assert_eq!(p.cid, e.cid);
        prop_assert_eq!(s(Some(p.message)), Some(e.msg.raw.clone()));
        prop_assert_eq!(s(Some(p.text)), Some(e.msg.text.clone()));
        prop_assert_eq!(
            p.errno.map(|x| (x.code, String::from_utf8(x.text.to_vec()).unwrap())),
            e.msg.errno.clone()
        );
        prop_assert_eq!(s(p.action), e.msg.action.clone());
        prop_assert_eq!(s(p.resolver), e.msg.resolver.clone());
        let c = e.ctx.clone().unwrap_or_default();
        let has = e.ctx.is_some();
        prop_assert_eq!(s(p.context.client), has.then(|| c.client.clone()));
        prop_assert_eq!(s(p.context.server), has.then(|| c.server.clone()));
        prop_assert_eq!(s(p.context.request), c.request.clone());
        prop_assert_eq!(s(p.context.upstream), c.upstream.as_ref().map(|u| u.0.clone()));
        prop_assert_eq!(s(p.context.host), c.host.clone());
        prop_assert_eq!(s(p.context.referrer), c.referrer.clone());
        prop_assert_eq!(s(p.context.subrequest), None);
        prop_assert!(!p.truncated);
        if let (Some(u), Some((_, peer))) = (p.context.upstream, &c.upstream) {
            prop_assert_eq!(s(Some(upstream::target(u))), Some(peer.clone()));
        }
        let want = e.msg.rule.class(e.level);
        prop_assert_eq!(classify(&p), want);
        let head = parse_head(e.line.as_bytes()).unwrap();
        prop_assert_eq!(head.message_start + e.msg.raw.len() + c_len(&e), e.line.len());
        if want != FailureClass::Other {
            prop_assert!(may_be_failure(e.level, &e.line.as_bytes()[head.message_start..]));
        }
        prop_assert!(starts_entry(e.line.as_bytes()));
        // nginx's own line ending variants.
        let crlf = format!("{}\r", e.line);
        prop_assert_eq!(parse(crlf.as_bytes()), Some(p));
    }

    // (d) An entry cut anywhere: a partial last line, a copy that stopped short, or nginx's own
    // 2048-byte cap.
    #[test]
    fn cut_entry_keeps_its_class_or_none(e in entry_strategy()) {
        let want = e.msg.rule.class(e.level);
        let b = e.line.as_bytes();
        for cut in 0..=b.len() {
            let part = &b[..cut];
            let Some(p) = parse(part) else { continue };
            let got = classify(&p);
            prop_assert!(
                got == want || got == FailureClass::Other,
                "cut at {} of {:?}: {:?}, not {:?}", cut, e.line, got, want
            );
            let head = parse_head(part).unwrap();
            if got != FailureClass::Other {
                prop_assert!(may_be_failure(head.level, &part[head.message_start..]));
            }
        }
    }
}

fn c_len(e: &Entry) -> usize {
    e.ctx.as_ref().map_or(0, |c| c.render().len())
}

// ---------------------------------------------------------------------------------------------
// (c) Access lines from a random log_format

/// How a variable is written into the format.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wrap {
    Bare,
    Quoted,
    Bracketed,
}

#[derive(Clone, Debug)]
struct Var {
    name: &'static str,
    field: Option<Field>,
    wrap: Wrap,
    value: String,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn time_local() -> impl Strategy<Value = (String, LogTime)> {
    (
        civil(1970..=2200),
        select(vec!['+', '-']),
        0u32..15,
        select(vec![0u32, 30, 45]),
    )
        .prop_map(|(c, sign, zh, zm)| {
            let v = format!(
                "{:02}/{}/{:04}:{:02}:{:02}:{:02} {sign}{zh:02}{zm:02}",
                c.d,
                MONTHS[c.m as usize - 1],
                c.y,
                c.hh,
                c.mi,
                c.s
            );
            (v, c.time())
        })
}

/// `$upstream_*` lists: `a, b : c` (retries, then a new upstream after an internal redirect).
fn list_of(item: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("-".to_string()),
        4 => vec(vec(item, 1..4).prop_map(|g| g.join(", ")), 1..4).prop_map(|v| v.join(" : ")),
    ]
}

fn peer() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        "10\\.0\\.[0-9]{1,3}\\.[0-9]{1,3}:[0-9]{2,5}",
        "unix:/run/[a-z]{1,8}\\.sock",
        Just("[::1]:8080".to_string()),
        "[a-z_]{1,10}",
    ]
}

fn secs() -> impl Strategy<Value = String> + Clone {
    prop_oneof![Just("-".to_string()), "[0-9]{1,3}\\.[0-9]{3}"]
}

/// A value as nginx's default escaping writes it: no `"`, no `\` except in `\xHH`.
fn quoted_text() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            4 => "[ -!#-\\[\\]-~]{1,8}",
            1 => Just("\\x22".to_string()),
            1 => Just("\\x5C".to_string()),
        ],
        0..6,
    )
    .prop_map(|v| v.concat())
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{1,16}"
}

fn var_strategy() -> impl Strategy<Value = Vec<Var>> {
    // (name, field, wraps nginx users write it in, value)
    type Gen = BoxedStrategy<String>;
    let vars: Vec<(&'static str, Option<Field>, Vec<Wrap>, Gen)> = vec![
        (
            "remote_addr",
            Some(Field::RemoteAddr),
            vec![Wrap::Bare, Wrap::Quoted],
            "[0-9]{1,3}(\\.[0-9]{1,3}){3}|2001:db8::[0-9a-f]{1,4}".boxed(),
        ),
        (
            "remote_user",
            Some(Field::RemoteUser),
            vec![Wrap::Bare],
            prop_oneof![Just("-".to_string()), token()].boxed(),
        ),
        (
            "request",
            Some(Field::Request),
            vec![Wrap::Quoted],
            (
                select(vec!["GET", "POST", "OPTIONS"]),
                "/[ -!#-\\[\\]-~]{0,30}",
                select(vec!["HTTP/1.1", "HTTP/2.0"]),
            )
                .prop_map(|(m, u, p)| format!("{m} {u} {p}"))
                .boxed(),
        ),
        (
            "status",
            Some(Field::Status),
            vec![Wrap::Bare, Wrap::Quoted],
            (100u16..600).prop_map(|s| s.to_string()).boxed(),
        ),
        (
            "body_bytes_sent",
            Some(Field::BodyBytesSent),
            vec![Wrap::Bare],
            (0u64..10_000_000).prop_map(|s| s.to_string()).boxed(),
        ),
        (
            "http_referer",
            Some(Field::Referer),
            vec![Wrap::Quoted],
            quoted_text().boxed(),
        ),
        (
            "http_user_agent",
            Some(Field::UserAgent),
            vec![Wrap::Quoted],
            quoted_text().boxed(),
        ),
        (
            "host",
            Some(Field::Host),
            vec![Wrap::Bare, Wrap::Quoted],
            hostname().boxed(),
        ),
        (
            "http_host",
            Some(Field::HttpHost),
            vec![Wrap::Bare, Wrap::Quoted],
            "[a-z.]{1,12}(:[0-9]{2,5})?".boxed(),
        ),
        (
            "server_name",
            Some(Field::ServerName),
            vec![Wrap::Bare, Wrap::Bracketed],
            prop_oneof![Just("_".to_string()), hostname()].boxed(),
        ),
        (
            "upstream_addr",
            Some(Field::UpstreamAddr),
            vec![Wrap::Bare, Wrap::Quoted],
            list_of(peer()).boxed(),
        ),
        (
            "upstream_status",
            Some(Field::UpstreamStatus),
            vec![Wrap::Bare, Wrap::Quoted],
            list_of((100u16..600).prop_map(|s| s.to_string())).boxed(),
        ),
        (
            "upstream_response_time",
            Some(Field::UpstreamResponseTime),
            vec![Wrap::Bare, Wrap::Quoted],
            list_of(secs()).boxed(),
        ),
        (
            "upstream_connect_time",
            Some(Field::UpstreamConnectTime),
            vec![Wrap::Bare, Wrap::Quoted],
            list_of(secs()).boxed(),
        ),
        (
            "upstream_header_time",
            Some(Field::UpstreamHeaderTime),
            vec![Wrap::Bare, Wrap::Quoted],
            list_of(secs()).boxed(),
        ),
        (
            "request_time",
            Some(Field::RequestTime),
            vec![Wrap::Bare, Wrap::Quoted],
            "[0-9]{1,3}\\.[0-9]{3}".boxed(),
        ),
        // Variables nginx-medic does not read: parsed over.
        (
            "request_length",
            None,
            vec![Wrap::Bare],
            "[0-9]{1,6}".boxed(),
        ),
        (
            "ssl_protocol",
            None,
            vec![Wrap::Bare, Wrap::Quoted],
            prop_oneof![Just("-".to_string()), Just("TLSv1.3".to_string())].boxed(),
        ),
        (
            "upstream_cache_status",
            None,
            vec![Wrap::Bare],
            prop_oneof![
                Just("-".to_string()),
                Just("HIT".to_string()),
                Just("MISS".to_string())
            ]
            .boxed(),
        ),
        (
            "http_x_forwarded_for",
            None,
            vec![Wrap::Quoted],
            prop_oneof![
                Just("-".to_string()),
                Just("203.0.113.7, 10.0.0.1".to_string())
            ]
            .boxed(),
        ),
    ];
    // Pick a subset, each with one of its wraps and a value, then shuffle.
    let picks: Vec<BoxedStrategy<Option<Var>>> = vars
        .into_iter()
        .map(|(name, field, wraps, value)| {
            proptest::option::weighted(0.5, (select(wraps), value))
                .prop_map(move |o| {
                    o.map(|(wrap, value)| Var {
                        name,
                        field,
                        wrap,
                        value,
                    })
                })
                .boxed()
        })
        .collect();
    (picks, time_var(), unquoted_request())
        .prop_map(|(v, t, r)| {
            let mut out: Vec<Var> = v.into_iter().flatten().collect();
            out.extend(t);
            // An unquoted $request only when the quoted one is not there: one field, one value.
            if !out.iter().any(|x| x.name == "request") {
                out.extend(r);
            }
            out
        })
        .prop_shuffle()
}

/// At most one of the time variables, so that `AccessRecord::time` has one answer.
fn time_var() -> impl Strategy<Value = Option<Var>> {
    prop_oneof![
        Just(None),
        (time_local(), select(vec![Wrap::Bracketed, Wrap::Bare])).prop_map(|((v, _), wrap)| Some(
            Var {
                name: "time_local",
                field: Some(Field::TimeLocal),
                wrap,
                value: v,
            }
        )),
        civil(1970..=2200).prop_map(|c| Some(Var {
            name: "time_iso8601",
            field: Some(Field::TimeIso8601),
            wrap: Wrap::Bare,
            value: format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
                c.y, c.m, c.d, c.hh, c.mi, c.s
            ),
        })),
        (0u64..4_000_000_000, 0u32..1000).prop_map(|(t, ms)| Some(Var {
            name: "msec",
            field: Some(Field::Msec),
            wrap: Wrap::Bare,
            value: format!("{t}.{ms:03}"),
        })),
    ]
}

/// `$request` outside quotes: METHOD URI PROTOCOL, the URI without spaces.
fn unquoted_request() -> impl Strategy<Value = Option<Var>> {
    proptest::option::weighted(
        0.3,
        (
            select(vec!["GET", "HEAD"]),
            "/[!-~]{0,20}",
            select(vec!["HTTP/1.0", "HTTP/1.1"]),
        )
            .prop_map(|(m, u, p)| Var {
                name: "request",
                field: Some(Field::Request),
                wrap: Wrap::Bare,
                value: format!("{m} {u} {p}"),
            }),
    )
}

/// The text between two variables. Bare values hold no spaces (lists and `$time_local` aside,
/// which the compiler knows), so every separator starts with one.
const SEPARATORS: &[&str] = &[" ", " | ", " - ", "  ", " rt="];

fn access_case() -> impl Strategy<Value = (String, String, Vec<Var>)> {
    (
        var_strategy().prop_filter("at least one variable", |v| !v.is_empty()),
        select(vec!["", "> ", "log: "]),
        vec(select(SEPARATORS), 24),
        any::<bool>(),
    )
        .prop_map(|(vars, lead, seps, trailing)| {
            let mut format = lead.to_string();
            let mut line = lead.to_string();
            for (k, v) in vars.iter().enumerate() {
                let (open, close) = match v.wrap {
                    Wrap::Bare => ("", ""),
                    Wrap::Quoted => ("\"", "\""),
                    Wrap::Bracketed => ("[", "]"),
                };
                format += &format!("{open}${}{close}", v.name);
                line += &format!("{open}{}{close}", v.value);
                let last = k + 1 == vars.len();
                if !last || trailing {
                    format += seps[k];
                    line += seps[k];
                }
            }
            (format, line, vars)
        })
}

/// The JSON form, `escape=json`: values may hold `\"` and `\\`.
fn json_value() -> impl Strategy<Value = String> {
    "[ -~]{0,20}".prop_map(|raw| {
        let mut out = String::new();
        for c in raw.chars() {
            match c {
                '"' => out += "\\\"",
                '\\' => out += "\\\\",
                c => out.push(c),
            }
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn access_line_roundtrip((format, line, vars) in access_case()) {
        let f = LogFormat::compile(&format).unwrap();
        prop_assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        let r = f.parse_exact(line.as_bytes());
        prop_assert!(r.is_ok(), "format {:?}\nline   {:?}\n{:?}", format, line, r);
        let r = r.unwrap();
        for field in ALL_FIELDS {
            let want = vars.iter().find(|v| v.field == Some(field)).map(|v| v.value.clone());
            prop_assert_eq!(s(r.get(field)), want.clone(), "{:?} in {:?} / {:?}", field, format, line);
            prop_assert_eq!(f.has(field), want.is_some());
            let part = f.parse_upto(line.as_bytes(), &[field]).unwrap();
            prop_assert_eq!(s(part.get(field)), want);
        }
        if let Some(v) = vars.iter().find(|v| v.name == "status") {
            prop_assert_eq!(r.status().map(|s| s.to_string()), Some(v.value.clone()));
        }
        let want_time = vars.iter().find_map(|v| match v.name {
            "time_local" => LogTime::parse_time_local(v.value.as_bytes()),
            "time_iso8601" => LogTime::parse_iso(v.value.as_bytes()),
            "msec" => LogTime::parse_msec(v.value.as_bytes()),
            _ => None,
        });
        prop_assert_eq!(r.time(), want_time);
        let _ = origin(r.get(Field::UpstreamStatus), r.get(Field::UpstreamHeaderTime));
        // A list's last item is the attempt that decided the answer.
        if let Some(v) = r.get(Field::UpstreamStatus) {
            let items: Vec<_> = upstream::list(v).collect();
            prop_assert_eq!(Some(upstream::last(v)), items.last().map(|i| i.value));
        }
    }

    #[test]
    fn json_escaped_values_roundtrip(
        r in json_value(), ua in json_value(), status in 100u16..600,
    ) {
        let f = LogFormat::compile_with(
            "{\"request\":\"$request\",\"ua\":\"$http_user_agent\",\"status\":\"$status\"}",
            Escape::Json,
        )
        .unwrap();
        let line = format!("{{\"request\":\"{r}\",\"ua\":\"{ua}\",\"status\":\"{status}\"}}");
        let p = f.parse_exact(line.as_bytes()).unwrap();
        prop_assert_eq!(s(p.get(Field::Request)), Some(r));
        prop_assert_eq!(s(p.get(Field::UserAgent)), Some(ua));
        prop_assert_eq!(p.status(), Some(status));
    }

    #[test]
    fn combined_and_main_read_their_own_lines(
        (tl, t) in time_local(),
        ua in quoted_text(),
        referer in quoted_text(),
        status in 100u16..600,
    ) {
        let line = format!("10.0.0.1 - - [{tl}] \"GET /x?a=b HTTP/1.1\" {status} 612 \"{referer}\" \"{ua}\"");
        let c = LogFormat::compile(COMBINED).unwrap();
        let r = c.parse_exact(line.as_bytes()).unwrap();
        prop_assert_eq!(r.time(), Some(t));
        prop_assert_eq!(r.status(), Some(status));
        prop_assert_eq!(s(r.get(Field::UserAgent)), Some(ua));
        let m = LogFormat::compile(MAIN).unwrap();
        let main_line = format!("{line} \"-\"");
        prop_assert!(m.parse_exact(main_line.as_bytes()).is_ok());
        prop_assert!(c.parse_exact(main_line.as_bytes()).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// (e) LogTime and the civil calendar

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn civil_roundtrip(t in -62_135_596_800i64..253_402_300_800) {
        let t = LogTime(t);
        let (y, m, d, hh, mi, s) = t.to_civil();
        prop_assert_eq!(LogTime::from_civil(y, m, d, hh, mi, s), Some(t));
        prop_assert!(t.minute() <= t && t.0 - t.minute().0 < 60);
        let shown = t.to_string();
        prop_assert_eq!(shown.len(), 19);
        prop_assert_eq!(LogTime::parse_iso(shown.as_bytes()), Some(t));
    }

    #[test]
    fn text_forms_agree(c in civil(1000..=9999)) {
        let t = c.time();
        prop_assert_eq!(t.to_civil(), (c.y, c.m, c.d, c.hh, c.mi, c.s));
        let err = format!("{:04}/{:02}/{:02} {:02}:{:02}:{:02}", c.y, c.m, c.d, c.hh, c.mi, c.s);
        prop_assert_eq!(LogTime::parse_error_log(err.as_bytes()), Some(t));
        let local = format!(
            "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
            c.d, MONTHS[c.m as usize - 1], c.y, c.hh, c.mi, c.s
        );
        prop_assert_eq!(LogTime::parse_time_local(local.as_bytes()), Some(t));
        prop_assert_eq!(t.to_string(), format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", c.y, c.m, c.d, c.hh, c.mi, c.s));
    }

    #[test]
    fn impossible_dates_are_refused(y in 1000i64..=9999, m in 0u32..=14, d in 0u32..=33, hh in 0u32..=25, mi in 0u32..=61) {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            1..=12 => 31,
            _ => 0,
        };
        let valid = (1..=12).contains(&m) && (1..=days).contains(&d) && hh < 24 && mi < 60;
        prop_assert_eq!(LogTime::from_civil(y, m, d, hh, mi, 0).is_some(), valid);
    }
}
