//! The HTML incident report (`diagnose --format html`, `logs --format html`): one
//! self-contained page on stdout, to attach to a ticket or print.
//!
//! Self-contained and inert: no scripts, no fonts, no network references (evidence links are
//! in-page `#anchors`); the timeline is an SVG drawn here. A Content-Security-Policy meta
//! element allows nothing but the one inline `<style>`, by its SHA-256, so a string from a log
//! that slipped past [`esc`] still could not run or load anything. Colours come from classes
//! in that stylesheet: a `style=` attribute would be blocked.
//!
//! Every string from logs, configs and probes goes through [`esc`], in text and attributes.
//!
//! ```
//! use nginx_medic::report::html::esc;
//! assert_eq!(esc(r#""><img src=x onerror=alert(1)>"#), "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use medic_parse::time::LogTime;

mod diagnose;
mod events;
mod logs;
mod timeline;

pub use diagnose::write as diagnose;
pub use events::{Events, Marker, MarkerKind};
pub use logs::{timeline as logs_timeline, write as logs};
pub use timeline::{Series, Timeline};

/// The page's only stylesheet; its hash goes into the Content-Security-Policy.
const CSS: &str = include_str!("html/style.css");

/// Escapes text for HTML text and (double- or single-quoted) attribute values. C0 control
/// characters other than tab and newline (a log can hold anything) become U+FFFD.
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| {
        matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'') || (b < 0x20 && b != b'\t' && b != b'\n')
    }) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `'sha256-BASE64'` of a `<style>` element's text, as CSP `style-src` takes it.
fn csp_hash(css: &str) -> String {
    format!(
        "'sha256-{}'",
        openssl::base64::encode_block(&openssl::sha::sha256(css.as_bytes()))
    )
}

/// The page around `body`: doctype, the CSP, the title, the stylesheet.
fn page(title: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + CSS.len() + 512);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src {}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"nginx-medic {}\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        csp_hash(CSS),
        env!("CARGO_PKG_VERSION"),
        esc(title),
    );
    s
}

/// `2026-11-20 14:32:10`.
fn when(t: LogTime) -> String {
    let (y, mo, d, h, mi, s) = t.to_civil();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `from 2026-11-20 14:32:10 to 14:35:22` (the date once when both are on the same day).
fn span(a: LogTime, b: LogTime) -> String {
    if a == b {
        return format!("at {}", when(a));
    }
    let (wa, wb) = (when(a), when(b));
    if wa[..10] == wb[..10] {
        format!("from {wa} to {}", &wb[11..])
    } else {
        format!("from {wa} to {wb}")
    }
}

/// `1 request` / `2 requests`.
fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Text cut to `max` characters, with ` …` when cut.
fn cut(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((i, _)) => Cow::Owned(format!("{} …", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        assert_eq!(
            esc("</script><svg onload=alert(1)>"),
            "&lt;/script&gt;&lt;svg onload=alert(1)&gt;"
        );
        assert_eq!(esc("a'b\"c&d"), "a&#39;b&quot;c&amp;d");
        assert_eq!(esc("bell\x07 tab\t"), "bell\u{FFFD} tab\t");
        assert!(matches!(esc("plain text"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_csp_names_the_stylesheet_hash() {
        let p = page("t", "");
        // SHA-256 of "" is well known; of the sheet, checked against the page itself.
        assert_eq!(
            csp_hash(""),
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
        );
        let css = &p[p.find("<style>").unwrap() + 7..p.find("</style>").unwrap()];
        assert!(p.contains(&format!("style-src {}", csp_hash(css))));
        assert!(!p.contains("<script"));
    }

    #[test]
    fn spans_and_cuts() {
        let t = |s: &str| LogTime::parse_iso(s.as_bytes()).unwrap();
        assert_eq!(
            span(t("2026-11-20T14:32:10"), t("2026-11-20T14:35:22")),
            "from 2026-11-20 14:32:10 to 14:35:22"
        );
        assert_eq!(cut("abcdef", 3), "abc …");
        assert_eq!(cut("abc", 3), "abc");
    }
}
