//! nginx's value grammars: times (`ngx_parse_time`), sizes (`ngx_parse_size`), booleans,
//! `host:port` addresses and upstream URLs, as `src/core/ngx_parse.c` and
//! `src/core/ngx_inet.c` read them.

use std::time::Duration;

use medic_parse::config::Text;

/// Parses an nginx time: `60`, `60s`, `1m`, `500ms`, `1h30m`, `1h 30m`, `1d`.
///
/// A bare number is seconds (`ngx_parse_time(value, 1)` is what every `*_timeout` uses). Units
/// are `ms s m h d w M y` (`M` = 30 days, `y` = 365 days, as in `ngx_parse.c`); each unit may
/// appear once, in decreasing order, which is what nginx enforces too.
pub fn parse_time(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    const MS: u64 = 1;
    const S: u64 = 1000;
    let mut total: u64 = 0;
    let mut rest = s;
    // The previous unit's size: units must strictly decrease ("1m1h" is invalid in nginx).
    let mut last = u64::MAX;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (MS, 2)
        } else {
            match rest.bytes().next() {
                Some(b's') => (S, 1),
                Some(b'm') => (60 * S, 1),
                Some(b'h') => (3600 * S, 1),
                Some(b'd') => (86_400 * S, 1),
                Some(b'w') => (7 * 86_400 * S, 1),
                Some(b'M') => (30 * 86_400 * S, 1),
                Some(b'y') => (365 * 86_400 * S, 1),
                // A trailing bare number counts as seconds, like nginx's `sw_last` state.
                None | Some(b' ') => (S, 0),
                Some(_) => return None,
            }
        };
        if unit >= last {
            return None;
        }
        last = unit;
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[len..];
    }
    Some(Duration::from_millis(total))
}

/// Formats a duration the way one would write it in nginx.conf: `60s`, `1m30s`, `500ms`.
pub fn format_time(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, name) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ] {
        if ms >= unit {
            out.push_str(&format!("{}{name}", ms / unit));
            ms %= unit;
        }
    }
    out
}

/// Parses an nginx size: `4096`, `4k`, `4K`, `8m`, `1g` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        b'g' | b'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// `on` / `off` as nginx's `ngx_conf_set_flag_slot` reads them (case-insensitive).
pub fn parse_flag(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("on") {
        Some(true)
    } else if s.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

/// Whether `host` is an IPv4 or IPv6 literal (`127.0.0.1`, `[::1]`, `::1`).
pub fn is_ip_literal(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.parse::<std::net::IpAddr>().is_ok()
}

/// Splits `host:port`, `[v6]:port`, `host` into the host and the port, if any.
///
/// Returns `None` for a port that is not a number (`host:$port`, `host:http`).
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &s[..end + 2];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p.parse().ok()?))),
        Some(_) => Some((s, None)),
        None => Some((s, None)),
    }
}

/// An upstream URL as the `*_pass` directives take it, split like `ngx_parse_url` does: parts
/// of the argument, but for the scheme, which nginx compares without case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassUrl<'a> {
    /// `http`, `https`, `grpc`, `grpcs`, `uwsgi`, `suwsgi`, lowercased; `None` without
    /// `scheme://`.
    pub scheme: Option<Text>,
    /// The authority: `host`, `host:port`, `[::1]:8080`, `unix:/path`, `$var`.
    pub authority: &'a str,
    /// `unix:` socket path, when the authority is one.
    pub unix: Option<&'a str>,
    /// The part after the authority (`/api/` in `http://b/api/`), possibly empty.
    pub uri: &'a str,
}

/// Splits a `*_pass` argument into scheme, authority and URI.
///
/// `http://unix:/run/app.sock:/uri` is nginx's form for a unix socket with a URI: the path ends
/// at the next `:` (`ngx_parse_unix_domain_url`).
pub fn split_pass_url(arg: &str) -> PassUrl<'_> {
    let (scheme, rest) = match arg.split_once("://") {
        Some((s, r)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            let scheme = if s.bytes().any(|b| b.is_ascii_uppercase()) {
                Text::from(s.to_ascii_lowercase())
            } else {
                Text::from(s)
            };
            (Some(scheme), r)
        }
        _ => (None, arg),
    };
    if let Some(path) = rest.strip_prefix("unix:") {
        let (p, uri) = match path.find(':') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (path, ""),
        };
        return PassUrl {
            scheme,
            authority: &rest[.."unix:".len() + p.len()],
            unix: Some(p),
            uri,
        };
    }
    let mut end = if scheme.is_some() {
        rest.find('/').unwrap_or(rest.len())
    } else {
        rest.len()
    };
    // `http://backend$request_uri`: variables that always expand to a URI (starting with `/`
    // or `?`) end the authority, like the `/` they stand for.
    const URI_VARS: [&str; 6] = [
        "$request_uri",
        "$uri",
        "$document_uri",
        "$is_args",
        "$args",
        "$query_string",
    ];
    if let Some(i) = rest[..end].find('$') {
        if i > 0 && URI_VARS.iter().any(|v| rest[i..].starts_with(v)) {
            end = i;
        }
    }
    PassUrl {
        scheme,
        authority: &rest[..end],
        unix: None,
        uri: &rest[end..],
    }
}

/// A `limit_req_zone` rate: `10r/s` or `30r/m`, kept as requests per minute x 1000 like nginx
/// (which stores `rate * 1000` per second or per minute) so `1r/m` stays exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub requests: u64,
    pub per_minute: bool,
}

impl Rate {
    pub fn parse(s: &str) -> Option<Rate> {
        let (n, unit) = s
            .strip_suffix("r/s")
            .map(|n| (n, false))
            .or_else(|| s.strip_suffix("r/m").map(|n| (n, true)))?;
        Some(Rate {
            requests: n.parse().ok()?,
            per_minute: unit,
        })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.per_minute { "m" } else { "s" };
        write!(f, "{}r/{unit}", self.requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Option<u64> {
        parse_time(s).map(|d| d.as_millis() as u64)
    }

    #[test]
    fn times() {
        assert_eq!(ms("60"), Some(60_000));
        assert_eq!(ms("60s"), Some(60_000));
        assert_eq!(ms("1m"), Some(60_000));
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("1h30m"), Some(5_400_000));
        assert_eq!(ms("1h 30m"), Some(5_400_000));
        assert_eq!(ms("1d"), Some(86_400_000));
        assert_eq!(ms("1m1h"), None);
        assert_eq!(ms("5x"), None);
        assert_eq!(ms(""), None);
        assert_eq!(ms("s"), None);
        assert_eq!(ms("99999999999999999999"), None);
        assert_eq!(format_time(Duration::from_millis(90_500)), "1m30s500ms");
        assert_eq!(format_time(Duration::from_secs(60)), "1m");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4k"), Some(4096));
        assert_eq!(parse_size("4K"), Some(4096));
        assert_eq!(parse_size("8m"), Some(8 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_size("-1"), None);
    }

    #[test]
    fn hosts_and_urls() {
        assert_eq!(split_host_port("a:80"), Some(("a", Some(80))));
        assert_eq!(split_host_port("[::1]:80"), Some(("[::1]", Some(80))));
        assert_eq!(split_host_port("[::1]"), Some(("[::1]", None)));
        assert_eq!(split_host_port("a"), Some(("a", None)));
        assert_eq!(split_host_port("a:$p"), None);
        assert!(
            is_ip_literal("127.0.0.1") && is_ip_literal("[::1]") && !is_ip_literal("localhost")
        );
        let u = split_pass_url("http://unix:/run/a.sock:/x");
        assert_eq!(u.unix, Some("/run/a.sock"));
        assert_eq!(u.authority, "unix:/run/a.sock");
        assert_eq!(u.uri, "/x");
        let u = split_pass_url("https://api.example.com:8443/v1/");
        assert_eq!(u.scheme.as_deref(), Some("https"));
        assert_eq!(split_pass_url("HTTPS://a").scheme.as_deref(), Some("https"));
        assert_eq!(u.authority, "api.example.com:8443");
        assert_eq!(u.uri, "/v1/");
        let u = split_pass_url("unix:/run/php/fpm.sock");
        assert_eq!(
            (u.scheme, u.unix, u.authority),
            (None, Some("/run/php/fpm.sock"), "unix:/run/php/fpm.sock")
        );
        let u = split_pass_url("http://blue$request_uri");
        assert_eq!((u.authority, u.uri), ("blue", "$request_uri"));
        assert_eq!(
            split_pass_url("http://$host$request_uri").authority,
            "$host$request_uri"
        );
        assert_eq!(
            Rate::parse("1r/m"),
            Some(Rate {
                requests: 1,
                per_minute: true
            })
        );
        assert_eq!(
            Rate::parse("10r/s").map(|r| r.to_string()).as_deref(),
            Some("10r/s")
        );
    }
}
