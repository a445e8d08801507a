//! Redaction of what a bundle carries: the config (directive-aware), the logs, and the recorded
//! host answers (unit files, `systemctl show`, pm2's JSON, journals).
//!
//! A secret becomes a pseudonym, `REDACTED-` and 12 hex digits of an HMAC-SHA256 keyed with a
//! random key drawn once per bundle (and never stored): the same secret maps to the same token
//! everywhere in one bundle, so "these two locations send the same credential" survives, while
//! two bundles cannot be joined on it and a guessed secret cannot be checked against it.
//!
//! Every replacement keeps the line structure (a PEM block's lines stay lines, a Lua body keeps
//! its newlines): the diagnosis of the bundle cites the same `file:line` as the live run.
//!
//! What is redacted, and why each pattern is the shape it is:
//! - header values whose name is credential-like (`Authorization`, `Proxy-Authorization`,
//!   `Cookie`, `X-Api-Key`, anything with `token`, `secret`, `passw`, `api-key`, ...) in
//!   `proxy_set_header`, `add_header`, `fastcgi_param` and their kin, unless the value is only
//!   nginx variables (`$http_authorization` names a secret, it is not one);
//! - `set $secret_var ...`, `env NAME=...`, `secure_link_secret`, `secure_link_md5`;
//! - `*_by_lua_block` bodies and inline `*_by_lua` code: replaced by their SHA-256, so two
//!   bundles can still tell whether they run the same code;
//! - `user:password@` in any URL; any PEM private key block; `?token=`-like query values;
//!   `NAME=value`, `NAME: value` and JSON `"NAME": "value"` where NAME is credential-like.
//!
//! Files whose contents are secret by definition (`ssl_certificate_key`, `ssl_password_file`,
//! `auth_basic_user_file`, `ssl_session_ticket_key`, ...) are never copied: their paths stay in
//! the config, [`key_file_paths`] names them so the collector can refuse their contents.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use medic_parse::config::lexer::{is_lua_block, lex};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use regex::bytes::{Captures, Regex};
use serde::Serialize;

/// The prefix of every pseudonym: a value that already starts with it is left alone.
pub const PSEUDONYM_PREFIX: &str = "REDACTED-";

/// What was redacted in one file, for the MANIFEST.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Redaction {
    pub file: String,
    /// `header value`, `url credentials`, `private key`, `lua code`, `query value`, ...
    pub what: &'static str,
    pub why: String,
    pub count: u64,
    /// The first lines it happened on (at most [`MAX_LINES`]).
    pub lines: Vec<u32>,
}

const MAX_LINES: usize = 8;

/// Directives whose (name, value) arguments set a header or a parameter.
const PAIR_DIRECTIVES: &[&str] = &[
    "proxy_set_header",
    "grpc_set_header",
    "add_header",
    "add_trailer",
    "fastcgi_param",
    "uwsgi_param",
    "scgi_param",
    "proxy_hide_header",
];

/// Directives naming files whose contents are secret: the path is kept, the contents never.
const KEY_FILE_DIRECTIVES: &[&str] = &[
    "ssl_certificate_key",
    "proxy_ssl_certificate_key",
    "grpc_ssl_certificate_key",
    "uwsgi_ssl_certificate_key",
    "ssl_password_file",
    "proxy_ssl_password_file",
    "grpc_ssl_password_file",
    "uwsgi_ssl_password_file",
    "ssl_session_ticket_key",
    "auth_basic_user_file",
    "auth_jwt_key_file",
];

/// Directives whose every argument is a secret.
const SECRET_DIRECTIVES: &[&str] = &["secure_link_secret", "secure_link_md5"];

/// Credential-like when a name contains one of these ...
const PARTS: &[&str] = &[
    "token",
    "secret",
    "passw",
    "passwd",
    "pwd",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "cookie",
    "credential",
    "private_key",
    "private-key",
    "privatekey",
    "access_key",
    "access-key",
    "x-auth",
    "x_auth",
    "auth_key",
    "signature",
    "session_id",
    "sessionid",
    "client_secret",
];
/// ... or is one of these (or ends in `_key`/`-key`).
const WHOLE: &[&str] = &[
    "auth", "key", "sid", "jwt", "otp", "pin", "code", "sig", "pass", "session",
];

/// Whether a header, parameter, variable or key name is credential-like.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let n = n.trim_start_matches('$');
    PARTS.iter().any(|p| n.contains(p))
        || WHOLE.contains(&n)
        || n.ends_with("_key")
        || n.ends_with("-key")
}

/// The files a config names whose contents must never be copied (`ssl_certificate_key` ...).
pub fn key_file_paths(sections: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, text) in sections {
        let lexed = lex(&String::from_utf8_lossy(text));
        for st in statements(&lexed.tokens) {
            if KEY_FILE_DIRECTIVES.contains(&st.name.as_str()) {
                if let Some(p) = st.args.first() {
                    if !p.text.starts_with("data:") && !p.text.starts_with('$') {
                        out.push(p.text.to_string());
                    }
                }
            }
        }
    }
    out
}

/// One `name arg...` statement of the token stream.
struct Statement<'t> {
    name: String,
    name_line: u32,
    args: Vec<&'t medic_parse::config::lexer::Token>,
}

fn statements(tokens: &[medic_parse::config::lexer::Token]) -> Vec<Statement<'_>> {
    let mut out = Vec::new();
    let mut cur: Option<Statement> = None;
    for t in tokens {
        let punct = !t.quoted && matches!(t.text.as_ref(), "{" | "}" | ";");
        if punct {
            if let Some(st) = cur.take() {
                out.push(st);
            }
            continue;
        }
        if !t.quoted && t.text.starts_with('#') {
            continue;
        }
        match &mut cur {
            Some(st) => st.args.push(t),
            None => {
                cur = Some(Statement {
                    name: t.text.to_string(),
                    name_line: t.line,
                    args: Vec::new(),
                })
            }
        }
    }
    out.extend(cur);
    out
}

/// Whether a value is only nginx variables (and separators): it names a secret, it is none.
fn only_variables(v: &str) -> bool {
    static VARS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"^(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|[\s:,;/\-])*$").expect("regex")
    });
    !v.is_empty() && VARS.is_match(v)
}

/// The redactor of one bundle: its key and the ledger of what it replaced.
pub struct Redactor {
    key: Vec<u8>,
    ledger: BTreeMap<(String, &'static str), Redaction>,
}

impl Redactor {
    /// A redactor with a fresh random key.
    pub fn new() -> anyhow::Result<Redactor> {
        let mut key = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut key)?;
        Ok(Redactor::with_key(key))
    }

    /// A redactor with a given key (tests: stable pseudonyms).
    pub fn with_key(key: Vec<u8>) -> Redactor {
        Redactor {
            key,
            ledger: BTreeMap::new(),
        }
    }

    /// What was redacted, file by file.
    pub fn ledger(&self) -> Vec<Redaction> {
        self.ledger.values().cloned().collect()
    }

    /// The pseudonym of a secret: stable within this bundle.
    pub fn pseudonym(&self, secret: &[u8]) -> String {
        let hex = PKey::hmac(&self.key)
            .and_then(|k| {
                let mut s = Signer::new(MessageDigest::sha256(), &k)?;
                s.update(secret)?;
                s.sign_to_vec()
            })
            .map(|mac| mac.iter().take(6).map(|b| format!("{b:02x}")).collect())
            .unwrap_or_else(|_| "000000000000".to_string());
        format!("{PSEUDONYM_PREFIX}{hex}")
    }

    fn note(&mut self, file: &str, line: u32, what: &'static str, why: &str) {
        let r = self
            .ledger
            .entry((file.to_string(), what))
            .or_insert_with(|| Redaction {
                file: file.to_string(),
                what,
                why: why.to_string(),
                count: 0,
                lines: Vec::new(),
            });
        r.count += 1;
        if r.lines.len() < MAX_LINES && !r.lines.contains(&line) {
            r.lines.push(line);
        }
    }

    /// A config file (one section of `nginx -T`): directive-aware, then the patterns of any
    /// text. Line numbers are kept.
    pub fn config(&mut self, file: &str, text: &[u8]) -> Vec<u8> {
        let src = String::from_utf8_lossy(text).into_owned();
        let lexed = lex(&src);
        // (line, the value as the lexer read it, replacement, what, why)
        let mut edits: Vec<(u32, String, String, &'static str, String)> = Vec::new();
        let mut lua: Vec<(u32, String)> = Vec::new();
        for st in statements(&lexed.tokens) {
            let name = st.name.as_str();
            if PAIR_DIRECTIVES.contains(&name) && st.args.len() >= 2 {
                let header = st.args[0].text.as_ref();
                let value = st.args[1];
                if is_secret_name(header)
                    && !only_variables(&value.text)
                    && !value.text.starts_with(PSEUDONYM_PREFIX)
                {
                    let p = self.pseudonym(value.text.as_bytes());
                    edits.push((
                        value.line,
                        value.text.to_string(),
                        p,
                        "header value",
                        format!("{name} {header}: a credential-like header or parameter"),
                    ));
                }
            } else if name == "set" && st.args.len() >= 2 && is_secret_name(&st.args[0].text) {
                let value = st.args[1];
                if !only_variables(&value.text) {
                    let p = self.pseudonym(value.text.as_bytes());
                    edits.push((
                        value.line,
                        value.text.to_string(),
                        p,
                        "variable value",
                        format!("set {}: a credential-like variable", st.args[0].text),
                    ));
                }
            } else if SECRET_DIRECTIVES.contains(&name) {
                for a in &st.args {
                    let p = self.pseudonym(a.text.as_bytes());
                    edits.push((
                        a.line,
                        a.text.to_string(),
                        p,
                        "secret",
                        format!("{name}: its argument is a secret"),
                    ));
                }
            } else if is_lua_block(name) {
                if let Some(body) = st.args.last() {
                    lua.push((st.name_line, body.text.to_string()));
                }
            } else if name.ends_with("_by_lua") {
                if let Some(code) = st.args.last() {
                    let digest = sha256_hex(code.text.as_bytes());
                    edits.push((
                        code.line,
                        code.text.to_string(),
                        format!("-- Lua code redacted by nginx-medic: sha256 {digest}"),
                        "lua code",
                        format!("{name}: code may hold credentials; its SHA-256 is kept"),
                    ));
                }
            }
        }
        let mut out = src;
        for (line, body) in lua {
            out = self.replace_lua_body(file, out, line, &body);
        }
        for (line, value, replacement, what, why) in edits {
            out = replace_on_line(&out, line, &value, &replacement);
            self.note(file, line, what, &why);
        }
        self.text(file, out.as_bytes())
    }

    /// Replaces a Lua body found after `line` by its SHA-256, keeping its newlines.
    fn replace_lua_body(&mut self, file: &str, src: String, line: u32, body: &str) -> String {
        let from = line_start(&src, line);
        let Some(at) = src[from..].find(body).map(|i| from + i) else {
            return src;
        };
        let newlines = body.matches('\n').count();
        let digest = sha256_hex(body.as_bytes());
        let mut repl = format!(" -- Lua code redacted by nginx-medic: sha256 {digest}");
        repl.push_str(&"\n".repeat(newlines.max(1)));
        if newlines == 0 {
            // A one-line body: the comment must not swallow the closing brace.
            repl = format!(" --[[ Lua code redacted by nginx-medic: sha256 {digest} ]] ");
        }
        self.note(
            file,
            line,
            "lua code",
            "*_by_lua_block: code may hold credentials; its SHA-256 is kept",
        );
        format!("{}{}{}", &src[..at], repl, &src[at + body.len()..])
    }

    /// Any text (a log, a unit file, a command's answer): the patterns, line by line. PEM
    /// private key blocks are tracked across lines.
    pub fn text(&mut self, file: &str, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut lines = LineRedactor::default();
        for (n, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
            let redacted = lines.line(self, file, n as u32 + 1, line);
            out.extend_from_slice(&redacted);
        }
        out
    }

    /// A JSON document: every string value is redacted as text, and a string under a
    /// credential-like key is replaced whole.
    pub fn json(&mut self, file: &str, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => {
                let r = self.text(file, s.as_bytes());
                if r != s.as_bytes() {
                    *s = String::from_utf8_lossy(&r).into_owned();
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|v| self.json(file, v)),
            serde_json::Value::Object(o) => {
                for (k, v) in o.iter_mut() {
                    let keyish = k.len() <= 64
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.$[]".contains(c));
                    if keyish && is_secret_name(k) {
                        if let serde_json::Value::String(s) = v {
                            if !s.is_empty() && !s.starts_with(PSEUDONYM_PREFIX) {
                                *s = self.pseudonym(s.as_bytes());
                                self.note(file, 0, "json value", "a credential-like key");
                            }
                            continue;
                        }
                    }
                    self.json(file, v);
                }
            }
            _ => {}
        }
    }
}

/// The line-by-line state: inside a PEM private key block or not.
#[derive(Default)]
pub struct LineRedactor {
    in_pem: bool,
}

static PEM_BEGIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----").expect("regex"));
static PEM_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-----END [A-Z0-9 ]*PRIVATE KEY-----").expect("regex"));
static PREFILTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)token|secret|pass|pwd|key|auth|cookie|credential|session|sig|code|sid|jwt|otp|pin|bearer|basic|digest|@",
    )
    .expect("regex")
});
/// An `Authorization` value without its header name (an access log with `$http_authorization`
/// in its `log_format`, an application's journal line).
static AUTH_SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:bearer|basic|digest|token)\s+([A-Za-z0-9._~+/=\-]{8,})").expect("regex")
});
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s:@"'<>]+:[^/\s@"'<>]+)@"#).expect("regex")
});
static QUERY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([?&;])([A-Za-z0-9_.\-\[\]%]+)=([^&\s"'#;<>]+)"#).expect("regex")
});
static ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(\$?\b[A-Za-z_][A-Za-z0-9_.\-\[\]]*)(\s*=\s*)"#).expect("regex")
});
static COLON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[\s,;{"])([A-Za-z][A-Za-z0-9_\-]*)(\s*:\s*)"#).expect("regex")
});
static JSON_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""([A-Za-z0-9_.\-$\[\]]{1,64})"\s*:\s*"((?:[^"\\]|\\.)*)""#).expect("regex")
});

impl LineRedactor {
    /// One line (with its newline, if any).
    pub fn line(&mut self, r: &mut Redactor, file: &str, n: u32, line: &[u8]) -> Vec<u8> {
        if self.in_pem {
            if PEM_END.is_match(line) {
                self.in_pem = false;
                return line.to_vec();
            }
            r.note(file, n, "private key", "a PEM private key block");
            let nl = if line.ends_with(b"\n") { "\n" } else { "" };
            return format!("{}{nl}", r.pseudonym(line.trim_ascii())).into_bytes();
        }
        if let Some(m) = PEM_BEGIN.find(line) {
            // The rest of this line after the marker may hold key material (a one-line key).
            let tail = &line[m.end()..];
            if let Some(end) = PEM_END.find(tail) {
                let body = &tail[..end.start()];
                let mut out = line[..m.end()].to_vec();
                if !body.trim_ascii().is_empty() {
                    out.extend_from_slice(r.pseudonym(body).as_bytes());
                    r.note(file, n, "private key", "a PEM private key block");
                }
                out.extend_from_slice(&tail[end.start()..]);
                return out;
            }
            self.in_pem = true;
            let mut out = line[..m.end()].to_vec();
            if !tail.trim_ascii().is_empty() {
                out.extend_from_slice(r.pseudonym(tail.trim_ascii()).as_bytes());
                r.note(file, n, "private key", "a PEM private key block");
            }
            if line.ends_with(b"\n") {
                out.push(b'\n');
            }
            return out;
        }
        patterns(r, file, n, line)
    }
}

/// The single-line patterns, most specific first.
fn patterns(r: &mut Redactor, file: &str, n: u32, line: &[u8]) -> Vec<u8> {
    // Fast path: a line with no `@` and no word any credential-like name contains (every
    // part and whole name of [`is_secret_name`] holds one of these) has nothing to redact.
    // Most log lines are such lines; the patterns below cost ten times more.
    if !PREFILTER.is_match(line) {
        return line.to_vec();
    }
    let mut cur = line.to_vec();
    if URL_USERINFO.is_match(&cur) {
        let mut notes = 0;
        cur = URL_USERINFO
            .replace_all(&cur, |c: &Captures| {
                notes += 1;
                let mut v = c[1].to_vec();
                v.extend_from_slice(r.pseudonym(&c[2]).as_bytes());
                v.push(b'@');
                v
            })
            .into_owned();
        for _ in 0..notes {
            r.note(file, n, "url credentials", "user:password in a URL");
        }
    }
    if AUTH_SCHEME.is_match(&cur) {
        let mut out = Vec::with_capacity(cur.len());
        let mut last = 0;
        for c in AUTH_SCHEME.captures_iter(&cur) {
            let v = c.get(1).expect("credential group");
            if v.as_bytes().starts_with(PSEUDONYM_PREFIX.as_bytes()) {
                continue;
            }
            out.extend_from_slice(&cur[last..v.start()]);
            out.extend_from_slice(r.pseudonym(v.as_bytes()).as_bytes());
            last = v.end();
            r.note(
                file,
                n,
                "credential",
                "an Authorization scheme's credential",
            );
        }
        out.extend_from_slice(&cur[last..]);
        cur = out;
    }
    cur = replace_values(r, file, n, &cur, &QUERY, 2, 3, "query value");
    cur = replace_json_pairs(r, file, n, &cur);
    cur = replace_after(r, file, n, &cur, &ASSIGN, "assignment value");
    cur = replace_after(r, file, n, &cur, &COLON, "header value");
    cur
}

/// Replaces group `value` of every match whose group `name` is credential-like.
#[allow(clippy::too_many_arguments)]
fn replace_values(
    r: &mut Redactor,
    file: &str,
    n: u32,
    line: &[u8],
    re: &Regex,
    name: usize,
    value: usize,
    what: &'static str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut last = 0;
    for c in re.captures_iter(line) {
        let key = String::from_utf8_lossy(&c[name]);
        let v = c.get(value).expect("value group");
        if !is_secret_name(&key) || v.as_bytes().starts_with(PSEUDONYM_PREFIX.as_bytes()) {
            continue;
        }
        out.extend_from_slice(&line[last..v.start()]);
        out.extend_from_slice(r.pseudonym(v.as_bytes()).as_bytes());
        last = v.end();
        r.note(file, n, what, &format!("{key}: a credential-like name"));
    }
    out.extend_from_slice(&line[last..]);
    out
}

fn replace_json_pairs(r: &mut Redactor, file: &str, n: u32, line: &[u8]) -> Vec<u8> {
    replace_values(r, file, n, line, &JSON_PAIR, 1, 2, "json value")
}

/// `NAME=value` / `NAME: value`: the value after the match, up to the end of the value
/// (a quoted string, or up to a space, quote, `;`, `,`, `&`).
fn replace_after(
    r: &mut Redactor,
    file: &str,
    n: u32,
    line: &[u8],
    re: &Regex,
    what: &'static str,
) -> Vec<u8> {
    let colon = what == "header value";
    let mut out = Vec::with_capacity(line.len());
    let mut last = 0;
    for c in re.captures_iter(line) {
        let key = String::from_utf8_lossy(&c[1]).into_owned();
        let sep = c.get(2).expect("separator");
        if sep.start() < last || !is_secret_name(&key) {
            continue;
        }
        let rest = &line[sep.end()..];
        let (start, len) = match rest.first() {
            Some(q @ (b'"' | b'\'')) => {
                let close = rest[1..]
                    .iter()
                    .position(|b| b == q)
                    .unwrap_or(rest.len() - 1);
                (1, close)
            }
            _ => {
                // A header value runs to the end of the line or a quote; other values end at a
                // separator.
                let stop: &[u8] = if colon { b"\"\r\n" } else { b" \t\"';,&\r\n" };
                (
                    0,
                    rest.iter()
                        .position(|b| stop.contains(b))
                        .unwrap_or(rest.len()),
                )
            }
        };
        let value = &rest[start..start + len];
        let value_trim = value.trim_ascii_end();
        if value_trim.is_empty()
            || value_trim.starts_with(PSEUDONYM_PREFIX.as_bytes())
            || value_trim.starts_with(b"$")
            || (colon && value_trim.starts_with(b"//"))
        {
            continue;
        }
        let at = sep.end() + start;
        out.extend_from_slice(&line[last..at]);
        out.extend_from_slice(r.pseudonym(value_trim).as_bytes());
        last = at + value_trim.len();
        r.note(file, n, what, &format!("{key}: a credential-like name"));
    }
    out.extend_from_slice(&line[last..]);
    out
}

/// Replaces the first `value` on line `line` (1-based) of `src`, after the line's first
/// non-blank word; when the value is not found verbatim (escapes in a quoted string), the
/// line's arguments are replaced from that word to the `;`.
fn replace_on_line(src: &str, line: u32, value: &str, replacement: &str) -> String {
    let start = line_start(src, line);
    let end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    let text = &src[start..end];
    let indent = text.len() - text.trim_start().len();
    let word_end = text[indent..]
        .find(char::is_whitespace)
        .map_or(text.len(), |i| indent + i);
    let new_line = match text[word_end..].find(value) {
        Some(i) if !value.is_empty() => {
            let at = word_end + i;
            format!(
                "{}{}{}",
                &text[..at],
                replacement,
                &text[at + value.len()..]
            )
        }
        _ => {
            let semi = text.rfind(';').unwrap_or(text.len());
            format!("{} \"{replacement}\"{}", &text[..word_end], &text[semi..])
        }
    };
    format!("{}{}{}", &src[..start], new_line, &src[end..])
}

fn line_start(src: &str, line: u32) -> usize {
    if line <= 1 {
        return 0;
    }
    src.match_indices('\n')
        .nth(line as usize - 2)
        .map_or(src.len(), |(i, _)| i + 1)
}

/// SHA-256 as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    openssl::sha::sha256(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor::with_key(b"test key".to_vec())
    }

    fn config(text: &str) -> String {
        String::from_utf8(r().config("nginx.conf", text.as_bytes())).unwrap()
    }

    fn text(text: &str) -> String {
        String::from_utf8(r().text("error.log", text.as_bytes())).unwrap()
    }

    #[test]
    fn credential_headers_are_redacted_variables_kept() {
        let out = config(concat!(
            "location / {\n",
            "    proxy_set_header Authorization \"Basic dXNlcjpzM2NyZXQ=\";\n",
            "    proxy_set_header X-Api-Key abc123secret;\n",
            "    proxy_set_header Cookie $http_cookie;\n",
            "    proxy_set_header Host $host;\n",
            "    fastcgi_param DB_PASSWORD hunter2;\n",
            "    add_header X-Frame-Options DENY;\n",
            "    proxy_pass http://127.0.0.1:3000;\n",
            "}\n",
        ));
        assert!(!out.contains("dXNlcjpzM2NyZXQ="), "{out}");
        assert!(!out.contains("abc123secret"), "{out}");
        assert!(!out.contains("hunter2"), "{out}");
        assert!(
            out.contains("proxy_set_header Cookie $http_cookie;"),
            "{out}"
        );
        assert!(out.contains("proxy_set_header Host $host;"), "{out}");
        assert!(out.contains("add_header X-Frame-Options DENY;"), "{out}");
        assert!(out.contains("proxy_pass http://127.0.0.1:3000;"), "{out}");
        assert_eq!(out.lines().count(), 9);
    }

    #[test]
    fn same_secret_same_pseudonym_and_lines_kept() {
        let mut red = r();
        let a = red.config("a.conf", b"proxy_set_header X-Token s3cr3t;\n");
        let b = red.text("error.log", b"GET /x?token=s3cr3t HTTP/1.1\n");
        let p = red.pseudonym(b"s3cr3t");
        assert!(String::from_utf8_lossy(&a).contains(&p));
        assert!(String::from_utf8_lossy(&b).contains(&p));
        let other = Redactor::with_key(b"other".to_vec()).pseudonym(b"s3cr3t");
        assert_ne!(p, other, "another bundle, another pseudonym");
    }

    #[test]
    fn lua_bodies_are_hashed_keeping_lines() {
        let src = "server {\n    content_by_lua_block {\n        local key = \"sk_live_123\"\n        ngx.say(key)\n    }\n    listen 80;\n}\n";
        let out = config(src);
        assert!(!out.contains("sk_live_123"), "{out}");
        assert!(out.contains("sha256 "), "{out}");
        assert_eq!(out.lines().count(), src.lines().count(), "{out}");
        assert_eq!(
            out.lines().position(|l| l.contains("listen 80;")),
            src.lines().position(|l| l.contains("listen 80;"))
        );
        let one = config("access_by_lua_block { return ngx.exit(403) }\nlisten 80;\n");
        assert!(!one.contains("ngx.exit"), "{one}");
        assert!(one.contains("listen 80;"), "{one}");
    }

    #[test]
    fn pem_blocks_urls_queries_and_assignments() {
        let out = text(concat!(
            "-----BEGIN PRIVATE KEY-----\n",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
            "-----END PRIVATE KEY-----\n",
            "upstream: \"http://admin:pa55word@10.0.0.1/\", request: \"GET /cb?code=xyz&x=1&access_token=tok1 HTTP/1.1\"\n",
            "Environment=API_TOKEN=tok2 PORT=3000 NODE_ENV=production\n",
            "env[DB_PASSWORD] = tok3\n",
            "client sent invalid header line: \"Authorization: Bearer tok4\"\n",
            "{\"name\":\"api\",\"SECRET_KEY\":\"tok5\",\"PORT\":\"3000\"}\n",
            "10.0.0.1 - - [20/Nov/2026:14:00:01 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"curl\" \"Bearer tok6.abcdefgh\"\n",
        ));
        for s in [
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
            "pa55word",
            "xyz",
            "tok1",
            "tok2",
            "tok3",
            "tok4",
            "tok5",
            "tok6",
        ] {
            assert!(!out.contains(s), "{s} in {out}");
        }
        for kept in [
            "PORT=3000",
            "NODE_ENV=production",
            "x=1",
            "\"PORT\":\"3000\"",
            "-----BEGIN PRIVATE KEY-----",
        ] {
            assert!(out.contains(kept), "{kept} missing in {out}");
        }
        assert_eq!(out.lines().count(), 9);
    }

    #[test]
    fn nginx_failure_lines_are_untouched() {
        let line = "2026/11/20 14:00:01 [error] 123#123: *5 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: _, request: \"GET /api HTTP/1.1\", upstream: \"http://127.0.0.1:3000/api\", host: \"localhost\"\n";
        assert_eq!(text(line), line);
        let access = "127.0.0.1 - - [20/Nov/2026:14:00:01 +0000] \"GET /?page=2 HTTP/1.1\" 502 157 \"-\" \"curl/7.88\" rt=0.001 uct=\"-\" urt=\"0.000\" ua=\"127.0.0.1:3000\"\n";
        assert_eq!(text(access), access);
    }

    #[test]
    fn the_fast_path_sees_every_credential_like_name() {
        for name in PARTS.iter().chain(WHOLE).chain(&["my_key", "x-key"]) {
            assert!(is_secret_name(name), "{name}");
            assert!(PREFILTER.is_match(name.as_bytes()), "{name}");
            assert!(PREFILTER.is_match(name.to_uppercase().as_bytes()), "{name}");
        }
    }

    #[test]
    fn key_files_are_named() {
        let sections = vec![(
            "/etc/nginx/nginx.conf".to_string(),
            b"ssl_certificate_key /etc/ssl/k.pem;\nauth_basic_user_file /etc/nginx/htpasswd;\nssl_certificate /etc/ssl/c.pem;\n".to_vec(),
        )];
        assert_eq!(
            key_file_paths(&sections),
            ["/etc/ssl/k.pem", "/etc/nginx/htpasswd"]
        );
    }
}
