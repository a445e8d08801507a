//! Upstream targets as nginx names them, and nginx's multi-value `$upstream_*` lists.
//!
//! The error log's `upstream:` field is a URL (`http://127.0.0.1:3000/uri`,
//! `fastcgi://unix:/run/php/php8.2-fpm.sock:`, `http://[::1]:3000/`, `http://backend/` for a
//! group); `$upstream_addr` is the peer alone (`127.0.0.1:3000`, `unix:/run/app.sock`, `backend`).
//! [`target`] reduces both to the peer, so the two logs and the config agree on one name.

/// The peer of an `upstream:` URL or an `$upstream_addr` item: `HOST:PORT`, `[v6]:PORT`,
/// `unix:/path` or a group name.
///
/// ```
/// use medic_parse::upstream::target;
/// assert_eq!(target(b"http://127.0.0.1:3000/api"), &b"127.0.0.1:3000"[..]);
/// assert_eq!(target(b"fastcgi://unix:/run/php/php8.2-fpm.sock:"), &b"unix:/run/php/php8.2-fpm.sock"[..]);
/// assert_eq!(target(b"http://unix:/run/app.sock:/x"), &b"unix:/run/app.sock"[..]);
/// assert_eq!(target(b"grpc://[::1]:50051"), &b"[::1]:50051"[..]);
/// assert_eq!(target(b"http://backend/x"), &b"backend"[..]);
/// assert_eq!(target(b"unix:/run/app.sock"), &b"unix:/run/app.sock"[..]);
/// ```
pub fn target(url: &[u8]) -> &[u8] {
    // A scheme is at most `fastcgi`/`memcached` long; look for `://` only there.
    let head = &url[..url.len().min(14)];
    let s = match memchr::memchr(b':', head) {
        Some(p) if url[p..].starts_with(b"://") => &url[p + 3..],
        _ => url,
    };
    if let Some(path) = s.strip_prefix(b"unix:") {
        // nginx writes `unix:PATH:` then the URI; a path never ends in ':'.
        let end = memchr::memchr(b':', path).unwrap_or(path.len());
        return &s[..5 + end];
    }
    if s.first() == Some(&b'[') {
        let Some(close) = memchr::memchr(b']', s) else {
            return s;
        };
        let end = memchr::memchr(b'/', &s[close..]).map_or(s.len(), |p| close + p);
        return &s[..end];
    }
    let end = memchr::memchr(b'/', s).unwrap_or(s.len());
    &s[..end]
}

/// One item of a `$upstream_*` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListItem<'a> {
    /// Counts the ` : ` separators before this item: nginx starts a new group after an internal
    /// redirect (`error_page`, `X-Accel-Redirect`) to another upstream.
    pub group: usize,
    pub value: &'a [u8],
}

/// Splits nginx's list forms: `a, b` (retries to the next peer) and `a : b` (a new upstream after
/// an internal redirect).
///
/// ```
/// use medic_parse::upstream::list;
/// let v: Vec<_> = list(b"10.0.0.1:80, 10.0.0.2:80 : unix:/x").map(|i| (i.group, i.value)).collect();
/// assert_eq!(v, [(0, &b"10.0.0.1:80"[..]), (0, &b"10.0.0.2:80"[..]), (1, &b"unix:/x"[..])]);
/// ```
pub fn list(s: &[u8]) -> impl Iterator<Item = ListItem<'_>> {
    let mut rest = s;
    let mut group = 0;
    let mut done = s.is_empty();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match memchr::memchr2(b',', b' ', rest) {
            None => {
                done = true;
                Some(ListItem { group, value: rest })
            }
            Some(p) => {
                let value = &rest[..p];
                let item = ListItem { group, value };
                if rest[p..].starts_with(b", ") {
                    rest = &rest[p + 2..];
                } else if rest[p..].starts_with(b" : ") {
                    rest = &rest[p + 3..];
                    group += 1;
                } else {
                    rest = &rest[p + 1..];
                }
                Some(item)
            }
        }
    })
}

/// The last item of a list: the peer (or status, or time) of the attempt that decided the answer.
pub fn last(s: &[u8]) -> &[u8] {
    let cut = [
        memchr::memmem::rfind(s, b", "),
        memchr::memmem::rfind(s, b" : "),
    ]
    .into_iter()
    .flatten()
    .max();
    match cut {
        Some(p) if s[p..].starts_with(b", ") => &s[p + 2..],
        Some(p) => &s[p + 3..],
        None => s,
    }
}

/// Whether a `$upstream_*` value is nginx's "nothing" (`-`, or empty in some custom formats).
pub fn is_none(s: &[u8]) -> bool {
    s.is_empty() || s == b"-"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_items() {
        assert_eq!(last(b"502, 200"), b"200");
        assert_eq!(last(b"502, 502 : 200"), b"200");
        assert_eq!(last(b"10.0.0.1:80 : grp"), b"grp");
        assert_eq!(last(b"-"), b"-");
    }

    #[test]
    fn odd_targets() {
        assert_eq!(
            target(b"uwsgi://unix:////var/run/uwsgi.sock:"),
            b"unix:////var/run/uwsgi.sock"
        );
        assert_eq!(target(b"127.0.0.1:3000"), b"127.0.0.1:3000");
        assert_eq!(target(b"http://[fd00::1]:8080/a/b"), b"[fd00::1]:8080");
        assert_eq!(target(b""), b"");
        assert_eq!(target(b"http://[broken"), b"[broken");
    }
}
