//! The config lexer: crossplane 0.5.8's tokenisation (`crossplane/lexer.py`,
//! `crossplane/ext/lua.py`), character for character, so the JSON it feeds is identical.
//!
//! nginx's own tokeniser is `ngx_conf_read_token()` in `src/core/ngx_conf_file.c`; crossplane
//! differs from it in corners (a `}` glued to a word ends the word; a quote inside a word is a
//! plain character; text glued after a closing quote starts a new word where nginx says
//! `unexpected "x"`). Those corners are what `crossplane parse` prints, so they are kept.
//! Where crossplane is plainly wrong and nginx is the judge (the list of `*_by_lua_block`
//! directives, REPORT.md §3 bug 2) we follow nginx.
//!
//! Input is the text as crossplane reads it: decoded with U+FFFD replacement and universal
//! newlines (see [`decode`]).

use std::borrow::Cow;
use std::ops::Range;

use super::ast::Text;

/// One token: a word, a quoted string, `{`, `}`, `;` or a `#comment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Inline up to 24 bytes: most tokens of a config cost no allocation.
    pub text: Text,
    pub line: u32,
    /// Came from quotes (or is a Lua block body): never a brace, `;` or comment.
    pub quoted: bool,
    /// Where the token is in the text given to [`lex`], in bytes: a word's `src[span]` is its
    /// text; a quoted token's covers its quotes; a Lua body's is the text between its braces,
    /// and the `;` that follows it is the closing `}`. Lets an editor replace a token without
    /// touching the bytes around it (`config::edit`).
    pub span: Range<usize>,
    /// `b'{'`, `b'}'` or `b';'` when the token is that character unquoted; else 0. Set once
    /// here: the parser asks it of every token.
    pub punct: u8,
}

/// Why the token stream stopped before the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub message: String,
    pub line: u32,
}

/// The tokens of one file, and the syntax error that cut them short, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    pub error: Option<LexError>,
    /// The line the file ends on (1 + number of newlines): where nginx reports "unexpected
    /// end of file".
    pub eof_line: u32,
}

/// Decodes a config file the way crossplane opens it (`io.open(..., encoding='utf-8',
/// errors='replace')`): invalid UTF-8 becomes U+FFFD (Rust's lossy decoding replaces the same
/// maximal subparts as Python), and universal newlines turn `\r\n` and a lone `\r` into `\n`.
/// A UTF-8 BOM is kept: crossplane keeps it (`utf-8`, not `utf-8-sig`), and so does nginx,
/// which then reports `unknown directive "\xEF\xBB\xBFuser"`.
pub fn decode(bytes: &[u8]) -> String {
    decode_vec(bytes.to_vec())
}

/// [`decode`] of an owned buffer: no copy when it is valid UTF-8 without `\r`.
pub fn decode_vec(bytes: Vec<u8>) -> String {
    let bytes: Cow<'_, [u8]> = if memchr::memchr(b'\r', &bytes).is_none() {
        match String::from_utf8(bytes) {
            Ok(s) => return s,
            Err(e) => return String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    } else {
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\r' {
                out.push(b'\n');
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            } else {
                out.push(bytes[i]);
            }
            i += 1;
        }
        Cow::Owned(out)
    };
    match String::from_utf8_lossy(&bytes) {
        Cow::Borrowed(s) => s.to_owned(),
        Cow::Owned(s) => s,
    }
}

/// The bytes as they are when decoding would not change them (valid UTF-8 without `\r`, the
/// common case), so that no `String` is made: [`decode_vec`] otherwise. SIMD validation: the
/// standard library's was 2% of `config parse`.
pub fn as_decoded(bytes: &[u8]) -> Option<&str> {
    if memchr::memchr(b'\r', bytes).is_some() {
        return None;
    }
    simdutf8::basic::from_utf8(bytes).ok()
}

/// Python's `str.isspace()`: Unicode White_Space plus the separators U+001C..U+001F.
pub(crate) fn is_py_space_char(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Whether a directive name takes a raw Lua body. lua-nginx-module and stream-lua-nginx-module
/// register every `*_by_lua_block` directive with the same block reader
/// (`ngx_http_lua_conf_lua_block_parse()`), so the suffix is the rule; crossplane's 13-name
/// list misses `server_rewrite_`, `exit_worker_`, `ssl_client_hello_`, `preread_`,
/// `proxy_ssl_verify_`, ... (REPORT.md §3 bug 2).
pub fn is_lua_block(name: &str) -> bool {
    name.len() > "_by_lua_block".len() && name.ends_with("_by_lua_block")
}

/// A character of crossplane's stream: one char, or a backslash and the char after it
/// (`_iterescape`). `line` is the line *after* the unit, as `_iterlinecount` counts it.
#[derive(Clone, Copy, Debug)]
struct Unit {
    start: usize,
    end: usize,
    line: u32,
}

struct Units<'a> {
    s: &'a str,
    pos: usize,
    line: u32,
}

impl<'a> Units<'a> {
    fn new(s: &'a str) -> Self {
        Units { s, pos: 0, line: 1 }
    }

    fn next(&mut self) -> Option<Unit> {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let first = *bytes.get(start)?;
        let mut end = start + utf8_len(first);
        if first == b'\\' {
            // A trailing lone backslash is dropped: `next(chars)` raises StopIteration, which
            // `fix_pep_479` turns into the end of the stream.
            let Some(&second) = bytes.get(end) else {
                self.pos = bytes.len();
                return None;
            };
            end += utf8_len(second);
        }
        let end = end.min(bytes.len());
        self.pos = end;
        if bytes[end - 1] == b'\n' {
            self.line += 1;
        }
        Some(Unit {
            start,
            end,
            line: self.line,
        })
    }

    /// Skips spaces, tabs and newlines (single-byte space units) at once.
    fn skip_ascii_space(&mut self) {
        let b = self.s.as_bytes();
        while let Some(&c) = b.get(self.pos) {
            match c {
                b'\n' => self.line += 1,
                b' ' | b'\t' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f => {}
                _ => break,
            }
            self.pos += 1;
        }
    }

    fn text(&self, u: Unit) -> &'a str {
        self.s.get(u.start..u.end).unwrap_or("")
    }

    fn is(&self, u: Unit, c: u8) -> bool {
        u.end - u.start == 1 && self.s.as_bytes()[u.start] == c
    }

    fn is_space(&self, u: Unit) -> bool {
        let b = self.s.as_bytes()[u.start];
        if b < 0x80 {
            return u.end - u.start == 1 && is_py_space_char(b as char);
        }
        let t = self.text(u);
        let mut cs = t.chars();
        matches!((cs.next(), cs.next()), (Some(c), None) if is_py_space_char(c))
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// A token as the parser reads it: where its text is, not a copy of it. Nearly every token is
/// a run of the file's text, so the lexer copies nothing; only a quoted string with an escaped
/// quote in it is written out, into [`Lexemes::unescaped`]. (Each token was a `Text` of its
/// own: that copy was a tenth of `config parse`'s instructions, for text the parser then
/// copied again into the tree or escaped into JSON.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lexeme {
    /// `src[text]`, `unescaped[text]` or the punctuation itself: see [`Lexeme::is_at`].
    text: Range<usize>,
    is_at: TextIs,
    pub(crate) line: u32,
    /// As [`Token::quoted`].
    pub(crate) quoted: bool,
    /// As [`Token::punct`].
    pub(crate) punct: u8,
    /// As [`Token::span`].
    pub(crate) span: Range<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextIs {
    InSource,
    Unescaped,
    /// `{`, `}` or `;` (whose span may be elsewhere: the `;` that ends a Lua block is its `}`).
    Punct,
}

impl Lexeme {
    /// An unquoted `{`, `}` or `;`.
    pub(crate) fn is_punct(&self, c: u8) -> bool {
        self.punct == c
    }
}

/// The tokens of one file as [`Lexeme`]s, and the text of those that are not in the file.
/// Kept from file to file by a parse, so that their memory is reused.
#[derive(Debug, Default)]
pub(crate) struct Lexemes {
    pub(crate) list: Vec<Lexeme>,
    unescaped: String,
}

impl Lexemes {
    /// The text of `t`, a token of `src`.
    pub(crate) fn text<'a>(&'a self, src: &'a str, t: &Lexeme) -> &'a str {
        match t.is_at {
            TextIs::InSource => src.get(t.text.clone()).unwrap_or(""),
            TextIs::Unescaped => self.unescaped.get(t.text.clone()).unwrap_or(""),
            TextIs::Punct => match t.punct {
                b'{' => "{",
                b'}' => "}",
                _ => ";",
            },
        }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.unescaped.clear();
    }

    /// A token whose text is `src[text]`.
    fn push(&mut self, src: &str, text: Range<usize>, line: u32, quoted: bool, span: Range<usize>) {
        let punct = match src.as_bytes().get(text.clone()) {
            Some([c @ (b'{' | b'}' | b';')]) if !quoted => *c,
            _ => 0,
        };
        self.list.push(Lexeme {
            text,
            is_at: TextIs::InSource,
            line,
            quoted,
            punct,
            span,
        });
    }

    /// A quoted token whose text is `unescaped[text]`.
    fn push_unescaped(&mut self, text: Range<usize>, line: u32, span: Range<usize>) {
        self.list.push(Lexeme {
            text,
            is_at: TextIs::Unescaped,
            line,
            quoted: true,
            punct: 0,
            span,
        });
    }

    /// A `{`, `}` or `;`: `c`, or for the `;` that ends a Lua block, the `}` at `at`.
    fn push_punct(&mut self, c: u8, line: u32, at: usize) {
        self.list.push(Lexeme {
            text: 0..0,
            is_at: TextIs::Punct,
            line,
            quoted: false,
            punct: c,
            span: at..at + 1,
        });
    }
}

/// Tokenises one file, then checks brace balance as `_balance_braces` does.
pub fn lex(src: &str) -> Lexed {
    let mut lexemes = Lexemes::default();
    let (error, eof_line) = lex_into(src, &mut lexemes);
    let tokens = lexemes
        .list
        .iter()
        .map(|t| Token {
            text: Text::new(lexemes.text(src, t)),
            line: t.line,
            quoted: t.quoted,
            span: t.span.clone(),
            punct: t.punct,
        })
        .collect();
    Lexed {
        tokens,
        error,
        eof_line,
    }
}

/// [`lex`] into `out` (cleared first), as [`Lexeme`]s of `src`. Returns the error and the
/// number of the last line.
pub(crate) fn lex_into(src: &str, out: &mut Lexemes) -> (Option<LexError>, u32) {
    let eof_line = 1 + memchr::memchr_iter(b'\n', src.as_bytes()).count() as u32;
    // About one token per 10 bytes in real configs: sized up front, the vector is not copied
    // over and over while it grows (a tenth of `config lint`'s instructions went to that).
    out.clear();
    out.list.reserve(src.len() / 8 + 16);
    let lua_error = lex_raw(src, out);
    // `_balance_braces`: a `}` too many stops the stream before it; a missing `}` is reported
    // once every token has been read, at the line of the last token (crossplane) -- we use the
    // line nginx reports, the end of the file.
    let mut depth: i64 = 0;
    for (i, t) in out.list.iter().enumerate() {
        if t.is_punct(b'}') {
            depth -= 1;
        } else if t.is_punct(b'{') {
            depth += 1;
        }
        if depth < 0 {
            let line = t.line;
            out.list.truncate(i);
            let error = LexError {
                message: "unexpected \"}\"".into(),
                line,
            };
            return (Some(error), eof_line);
        }
    }
    let error = match lua_error {
        Some(e) => Some(e),
        None if depth > 0 => Some(LexError {
            message: "unexpected end of file, expecting \"}\"".into(),
            line: eof_line,
        }),
        None => None,
    };
    (error, eof_line)
}

/// The bytes a plain word goes on with: printable ASCII that no rule of [`lex_raw`] looks at.
/// `$` is not one, for the `${` rule. A table, since this is the lexer's inner loop over most
/// of a config's bytes (a chain of comparisons per byte was a third of the lexer's time).
const PLAIN_WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = b'!';
    while c < 0x7f {
        t[c as usize] = !matches!(c, b'{' | b'}' | b';' | b'"' | b'\'' | b'\\' | b'$');
        c += 1;
    }
    t
};

/// Where a plain word that starts at `pos` ends, if the byte after it ends a word in every
/// rule of [`lex_raw`]: an ASCII space or `{`, `}`, `;`. A word does not start with `#` (a
/// comment).
fn plain_word_end(b: &[u8], pos: usize) -> Option<usize> {
    let first = *b.get(pos)?;
    if !PLAIN_WORD[usize::from(first)] || first == b'#' {
        return None;
    }
    let end = b[pos..]
        .iter()
        .position(|&c| !PLAIN_WORD[usize::from(c)])
        .map(|n| pos + n)?;
    matches!(
        b[end],
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f | b'{' | b'}' | b';'
    )
    .then_some(end)
}

/// `_lex_file_object`. Returns the Lua lexer's error if it raised one.
fn lex_raw(src: &str, out: &mut Lexemes) -> Option<LexError> {
    let b = src.as_bytes();
    let mut it = Units::new(src);
    // A word being read: crossplane appends every unit to it until one ends it, and units are
    // contiguous, so the word is `src[token_start..u.start]` at the unit `u` that ends it.
    let mut in_token = false;
    let mut token_line = 0u32;
    let mut token_start = 0usize;
    let mut next_token_is_directive = true;

    // `None` from `it.next()` inside a loop is crossplane's StopIteration: the generator ends
    // and whatever token was being built is lost.
    macro_rules! next_or_end {
        () => {
            match it.next() {
                Some(u) => u,
                None => return None,
            }
        };
    }

    // Fast path: a plain word ended by a space, `{`, `}` or `;` is pushed as it is, and its end
    // left to the rules below. Anything else (a quote, `$`, `\\`, a byte that is not ASCII,
    // the end of the file, a Lua block's name) goes through them unit by unit.
    macro_rules! plain_word_at {
        ($start:expr) => {
            let start = $start;
            if let Some(end) = plain_word_end(b, start) {
                if !(next_token_is_directive && is_lua_block(&src[start..end])) {
                    out.push(src, start..end, it.line, false, start..end);
                    it.pos = end;
                    next_token_is_directive = false;
                    continue;
                }
            }
        };
    }

    loop {
        if !in_token {
            // Spaces between tokens end nothing: skipped as the rule below would.
            it.skip_ascii_space();
            plain_word_at!(it.pos);
        }
        let Some(mut u) = it.next() else {
            break;
        };
        if it.is_space(u) {
            if in_token {
                in_token = false;
                let word = token_start..u.start;
                let lua = next_token_is_directive && is_lua_block(&src[word.clone()]);
                let takes_arg = &src[word.clone()] == "set_by_lua_block";
                out.push(src, word.clone(), token_line, false, word);
                if lua {
                    if let Err(e) = lex_lua(&mut it, takes_arg, out) {
                        return Some(e);
                    }
                    next_token_is_directive = true;
                } else {
                    next_token_is_directive = false;
                }
            }
            while it.is_space(u) {
                it.skip_ascii_space();
                u = next_or_end!();
            }
            // A one-byte unit: nothing counted a line, the word can start over at it.
            if u.end - u.start == 1 {
                plain_word_at!(u.start);
            }
        }

        if !in_token && it.is(u, b'#') {
            // The comment runs to the first newline. A newline escaped by an odd run of
            // backslashes is one unit with the last backslash, which the comment then loses.
            let line = u.line;
            let Some(nl) = memchr::memchr(b'\n', &b[u.start..]).map(|n| u.start + n) else {
                return None; // cut by EOF: crossplane drops it
            };
            let run = b[u.start..nl]
                .iter()
                .rev()
                .take_while(|&&c| c == b'\\')
                .count();
            let end = if run % 2 == 1 { nl - 1 } else { nl };
            out.push(src, u.start..end, line, false, u.start..end);
            it.pos = nl + 1;
            it.line = line + 1;
            continue;
        }

        if !in_token {
            token_line = u.line;
            token_start = u.start;
        }

        // `${var}`: the braces belong to the word.
        if in_token && b[u.start - 1] == b'$' && it.is(u, b'{') {
            next_token_is_directive = false;
            // Every unit up to one after a `}` (or a space) joins the word.
            while b[u.start - 1] != b'}' && !it.is_space(u) {
                u = next_or_end!();
            }
        }

        if it.is(u, b'"') || it.is(u, b'\'') {
            if in_token {
                continue;
            }
            let q = b[u.start];
            let body_start = u.end;
            // The text is the source between the quotes, unless a quote in it is escaped: from
            // the first such, it is copied into `unescaped`, each escaped quote without its
            // backslash. `copied` is where it starts there; `uncopied` where the source not
            // yet copied starts.
            let mut copied: Option<usize> = None;
            let mut uncopied = body_start;
            loop {
                // Past everything up to the next quote, backslash or newline at once.
                it.pos +=
                    memchr::memchr3(q, b'\\', b'\n', &b[it.pos..]).unwrap_or(b.len() - it.pos);
                u = next_or_end!();
                if it.is(u, q) {
                    break;
                }
                // Only an escaped quote of the same kind loses its backslash.
                if u.end - u.start == 2 && b[u.start] == b'\\' && b[u.start + 1] == q {
                    let start = *copied.get_or_insert(out.unescaped.len());
                    debug_assert!(start <= out.unescaped.len());
                    out.unescaped.push_str(&src[uncopied..u.start]);
                    out.unescaped.push(char::from(q));
                    uncopied = u.end;
                }
            }
            let span = token_start..u.end;
            let (lua, takes_arg) = match copied {
                None => {
                    let text = &src[body_start..u.start];
                    let lua = next_token_is_directive && is_lua_block(text);
                    out.push(src, body_start..u.start, token_line, true, span);
                    (lua, text == "set_by_lua_block")
                }
                Some(start) => {
                    out.unescaped.push_str(&src[uncopied..u.start]);
                    let text = &out.unescaped[start..];
                    let lua = next_token_is_directive && is_lua_block(text);
                    let takes_arg = text == "set_by_lua_block";
                    out.push_unescaped(start..out.unescaped.len(), token_line, span);
                    (lua, takes_arg)
                }
            };
            if lua {
                if let Err(e) = lex_lua(&mut it, takes_arg, out) {
                    return Some(e);
                }
                next_token_is_directive = true;
            } else {
                next_token_is_directive = false;
            }
            continue;
        }

        if it.is(u, b'{') || it.is(u, b'}') || it.is(u, b';') {
            if in_token {
                in_token = false;
                let word = token_start..u.start;
                // `content_by_lua_block{`: nginx ends the word at `{` and lua-nginx-module
                // then reads the body as Lua; crossplane only looks for Lua after whitespace.
                let text = &src[word.clone()];
                let lua = next_token_is_directive
                    && it.is(u, b'{')
                    && is_lua_block(text)
                    && text != "set_by_lua_block";
                out.push(src, word.clone(), token_line, false, word);
                if lua {
                    if let Err(e) = scan_lua_body(&mut it, u.line, out) {
                        return Some(e);
                    }
                    next_token_is_directive = true;
                    continue;
                }
            }
            out.push_punct(b[u.start], u.line, u.start);
            next_token_is_directive = true;
            continue;
        }

        // The unit is part of the word. Fast path: so is the rest of a plain word (printable
        // ASCII that no rule above looks at). `$` stops it, for the `${` rule; so do quotes,
        // braces, `;`, `\\`.
        in_token = true;
        it.pos += b[it.pos..]
            .iter()
            .position(|&c| !PLAIN_WORD[usize::from(c)])
            .unwrap_or(b.len() - it.pos);
    }
    None
}

/// `LuaBlockPlugin.lex`: the body between the braces becomes one quoted token followed by a
/// `;`, on the line of the closing brace. `set_by_lua_block` (`takes_arg`) first takes one
/// bare argument.
fn lex_lua(it: &mut Units<'_>, takes_arg: bool, out: &mut Lexemes) -> Result<(), LexError> {
    macro_rules! next_or_end {
        () => {
            match it.next() {
                Some(u) => u,
                None => return Ok(()),
            }
        };
    }
    if takes_arg {
        // Every unit read from its first is part of the argument, as in `lex_raw`.
        let mut arg_start = None;
        while let Some(mut u) = it.next() {
            if it.is_space(u) {
                if let Some(start) = arg_start {
                    out.push(it.s, start..u.start, u.line, false, start..u.start);
                    break;
                }
                while it.is_space(u) {
                    u = next_or_end!();
                }
            }
            arg_start.get_or_insert(u.start);
        }
    }

    let mut u = next_or_end!();
    while it.is_space(u) {
        u = next_or_end!();
    }
    if !it.is(u, b'{') {
        return Err(LexError {
            message: "expected { to start Lua block".into(),
            line: u.line,
        });
    }
    scan_lua_body(it, u.line, out)
}

/// Finds the `}` that closes a Lua block the way lua-nginx-module does
/// (`ngx_http_lua_conf_read_lua_token()` in `src/ngx_http_lua_directive.c`): braces count
/// except inside `"..."`/`'...'` strings (with backslash escapes), `--` line comments, and Lua
/// long brackets `[==[ ... ]==]` / `--[[ ... ]]`. crossplane knows no long brackets and reads
/// `--[[` as a line comment, so it cuts some valid blocks short and accepts unterminated ones
/// (REPORT.md §3 bug 4); where the two agree the body is the same text.
fn scan_lua_body(it: &mut Units<'_>, open_line: u32, out: &mut Lexemes) -> Result<(), LexError> {
    let s = it.s;
    let b = s.as_bytes();
    let start = it.pos;
    let line_at = |i: usize| it.line + memchr::memchr_iter(b'\n', &b[start..i]).count() as u32;
    let eof = || LexError {
        message: "unexpected end of file, expecting terminating characters for lua code block"
            .into(),
        line: open_line,
    };
    // `[`, `=`*level, `[` at `i`: the level.
    let long_open = |i: usize| -> Option<usize> {
        if b.get(i) != Some(&b'[') {
            return None;
        }
        let eq = b[i + 1..].iter().take_while(|&&c| c == b'=').count();
        (b.get(i + 1 + eq) == Some(&b'[')).then_some(eq)
    };
    let mut depth = 1u32;
    let mut i = start;
    loop {
        let Some(&c) = b.get(i) else {
            return Err(eof());
        };
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                if let Some(level) = long_open(i + 2) {
                    i = close_long(b, i + 2, level)
                        .ok_or_else(|| missing_long(line_at(i), level))?;
                } else {
                    i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
                }
            }
            b'[' => match long_open(i) {
                Some(level) => {
                    i = close_long(b, i, level).ok_or_else(|| missing_long(line_at(i), level))?;
                }
                None => i += 1,
            },
            b'"' | b'\'' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(eof()),
                        Some(b'\\') => i += 2,
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'{' => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    let line = line_at(i);
                    out.push(s, start..i, line, true, start..i);
                    out.push_punct(b';', line, i);
                    it.pos = i + 1;
                    it.line = line;
                    return Ok(());
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// The end of the long bracket opened at `i` (`[` + `=`*level + `[`), past its `]=*]`.
fn close_long(b: &[u8], i: usize, level: usize) -> Option<usize> {
    let body = i + level + 2;
    let mut close = Vec::with_capacity(level + 2);
    close.push(b']');
    close.resize(level + 1, b'=');
    close.push(b']');
    memchr::memmem::find(b.get(body..)?, &close).map(|n| body + n + close.len())
}

fn missing_long(line: u32, level: usize) -> LexError {
    LexError {
        message: format!(
            "Lua code block missing the closing long bracket \"]{}]\", the inlined Lua code may be too long",
            "=".repeat(level)
        ),
        line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<(String, u32, bool)> {
        lex(s)
            .tokens
            .into_iter()
            .map(|t| (t.text.to_string(), t.line, t.quoted))
            .collect()
    }

    fn words(s: &str) -> Vec<String> {
        lex(s)
            .tokens
            .into_iter()
            .map(|t| t.text.to_string())
            .collect()
    }

    #[test]
    fn words_braces_and_semicolons() {
        assert_eq!(
            words("http {\n  a b;c;\n}\n"),
            ["http", "{", "a", "b", ";", "c", ";", "}"]
        );
        assert_eq!(toks("a\n  b;\n")[1], ("b".to_string(), 2, false));
    }

    #[test]
    fn comments_glued_to_braces_and_words() {
        assert_eq!(words("http {#c\n}\n"), ["http", "{", "#c", "}"]);
        // `#` inside a word is part of it (ngx_conf_read_token does the same).
        assert_eq!(words("a b#c;\n"), ["a", "b#c", ";"]);
        // A comment cut by EOF without a newline is lost, as in crossplane.
        assert_eq!(words("a;#x"), ["a", ";"]);
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            toks(r#"a "b\"c" 'd\'e' "f\'g";"#)[1],
            ("b\"c".into(), 1, true)
        );
        assert_eq!(words(r#"a 'd\'e' "f\'g";"#), ["a", "d'e", "f\\'g", ";"]);
        assert_eq!(
            words("a \"left\"-q in\"-\"q;"),
            ["a", "left", "-q", "in\"-\"q", ";"]
        );
        assert_eq!(words("a \"\";"), ["a", "", ";"]);
        assert_eq!(words("a \"x;{}#\";"), ["a", "x;{}#", ";"]);
        // Each unescaped text is its own, wherever in the file and however many there are.
        let src = r#"a "x\"y" b 'p\'q\'r' "\"" '\'' c "d\\" "s\"_by_lua_block";"#;
        assert_eq!(
            words(src),
            [
                "a",
                "x\"y",
                "b",
                "p'q'r",
                "\"",
                "'",
                "c",
                "d\\\\",
                "s\"_by_lua_block",
                ";"
            ]
        );
        let spans: Vec<&str> = lex(src)
            .tokens
            .iter()
            .map(|t| &src[t.span.clone()])
            .collect();
        assert_eq!(spans[1], r#""x\"y""#);
        assert_eq!(spans[3], r#"'p\'q\'r'"#);
        // A Lua block named in quotes with an escape is still one.
        assert_eq!(
            words(r#"x;"a\"_by_lua_block" { } y;"#),
            ["x", ";", "a\"_by_lua_block", " ", ";", "y", ";"]
        );
    }

    #[test]
    fn variables_with_braces_and_regexes() {
        assert_eq!(words("a /$1/${arg_v}.pb;"), ["a", "/$1/${arg_v}.pb", ";"]);
        assert_eq!(
            words("location ~\\.(js)$ {"),
            ["location", "~\\.(js)$", "{"]
        );
    }

    #[test]
    fn lua_blocks_are_one_token() {
        let t = toks("content_by_lua_block {\n ngx.say(\"}\") -- }\n}\nx;");
        assert_eq!(t[1], ("\n ngx.say(\"}\") -- }\n".into(), 3, true));
        assert_eq!(t[2].0, ";");
        assert_eq!(t[3].0, "x");
        // Names crossplane does not know are Lua too.
        assert_eq!(
            words("server_rewrite_by_lua_block { if a then end }")[1],
            " if a then end "
        );
        assert_eq!(
            words("set_by_lua_block $v { return 1 }"),
            ["set_by_lua_block", "$v", " return 1 ", ";"]
        );
        let e = lex("content_by_lua_block x").error.unwrap();
        assert_eq!(e.message, "expected { to start Lua block");
        // Long brackets hide braces and quotes (lua-nginx-module), `--[[` is not a line comment.
        let t = words("content_by_lua_block {\n --[[ } ' \n ]] local s = [==[ { ]] ]==] }\nx;");
        assert_eq!(t[1], "\n --[[ } ' \n ]] local s = [==[ { ]] ]==] ");
        assert_eq!(t[3], "x");
        assert_eq!(
            words("content_by_lua_block{ a() }\nx;"),
            ["content_by_lua_block", " a() ", ";", "x", ";"]
        );
        let e = lex("content_by_lua_block {\n ngx.say(--[[hello)\n}\n")
            .error
            .unwrap();
        assert!(
            e.message
                .starts_with("Lua code block missing the closing long bracket \"]]\""),
            "{e:?}"
        );
        let e = lex("content_by_lua_block {\n ngx.say('x')\n")
            .error
            .unwrap();
        assert_eq!(
            (e.message.as_str(), e.line),
            (
                "unexpected end of file, expecting terminating characters for lua code block",
                1
            )
        );
    }

    #[test]
    fn spans_cover_the_source_of_each_token() {
        let src = "a  \"b c\" 'd'x ${v}w;# c\nx_by_lua_block { y }\nset_by_lua_block $r {z}\n";
        let lexed = lex(src);
        let spans: Vec<(&str, &str)> = lexed
            .tokens
            .iter()
            .map(|t| (&*t.text, &src[t.span.clone()]))
            .collect();
        assert_eq!(
            spans,
            [
                ("a", "a"),
                ("b c", "\"b c\""),
                ("d", "'d'"),
                ("x", "x"),
                ("${v}w", "${v}w"),
                (";", ";"),
                ("# c", "# c"),
                ("x_by_lua_block", "x_by_lua_block"),
                (" y ", " y "),
                // The `;` a Lua block ends with is its `}`.
                (";", "}"),
                ("set_by_lua_block", "set_by_lua_block"),
                ("$r", "$r"),
                ("z", "z"),
                (";", "}"),
            ]
        );
    }

    #[test]
    fn braces_balance() {
        let l = lex("a {\n}\n}\nb;");
        assert_eq!(
            l.error.unwrap(),
            LexError {
                message: "unexpected \"}\"".into(),
                line: 3
            }
        );
        assert_eq!(l.tokens.len(), 3);
        let l = lex("a {\nb;\n");
        assert_eq!(l.error.unwrap().line, 3);
    }

    #[test]
    fn decoding_like_python() {
        assert_eq!(decode(b"a\r\nb\rc\n"), "a\nb\nc\n");
        assert_eq!(decode(b"M\xf6lln"), "M\u{fffd}lln");
        assert_eq!(decode(b"\xef\xbb\xbfuser"), "\u{feff}user");
        // Text that decoding leaves alone is used as it is; the rest is decoded.
        for bytes in [
            &b"a\r\nb"[..],
            b"M\xf6lln",
            b"\xef\xbb\xbfuser",
            b"caf\xc3\xa9;",
            b"",
        ] {
            match as_decoded(bytes) {
                Some(text) => assert_eq!(text, decode(bytes), "{bytes:?}"),
                None => assert!(decode(bytes).as_bytes() != bytes, "{bytes:?}"),
            }
        }
        assert_eq!(as_decoded(b"caf\xc3\xa9;"), Some("café;"));
        // NBSP separates words for crossplane (Python's isspace).
        assert_eq!(words("a\u{a0}b;"), ["a", "b", ";"]);
        // A trailing backslash vanishes; the last word without a terminator is lost.
        assert_eq!(words("a b\\"), ["a"]);
    }
}
