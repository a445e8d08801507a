//! Editing one config file in place, the way nginx-lint's `--fix` does: an edit replaces a byte
//! range of the original text, and every byte outside the ranges (comments, indentation, blank
//! lines) stays as it was. A fix then changes what it means to change and nothing else, so the
//! diff a user reviews is the fix.
//!
//! ```
//! use medic_parse::config::edit::{apply, EditableFile};
//!
//! let f = EditableFile::parse(b"location / {\n    limit_req zone=one; # api\n}\n").unwrap();
//! let d = f.find(2, "limit_req").unwrap();
//! let edits = [
//!     f.append_args(&d, &["burst=20"]),
//!     f.set_in_block(&d, "limit_req_status", &["429"]),
//! ];
//! assert_eq!(
//!     apply(f.text(), &edits).unwrap(),
//!     "location / {\n    limit_req zone=one burst=20; # api\n    limit_req_status 429;\n}\n"
//! );
//! ```
//!
//! Offsets are those of the decoded text the lexer reads ([`super::lexer::decode`]). Decoding
//! turns invalid UTF-8 into U+FFFD and `\r\n` into `\n`, so for such a file the offsets are not
//! those of its bytes, and writing the decoded text back would change bytes no edit touched:
//! [`EditableFile::parse`] refuses those files rather than rewrite them.

use std::borrow::Cow;
use std::ops::Range;

use super::lexer::{is_lua_block, is_py_space_char};
use super::parser::{parse_bytes, Options};
use super::{Directive, Text};

/// Why a file cannot be edited, or an edit cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The lexer would read U+FFFD for these bytes: an offset into its text is not one into
    /// the file.
    #[error(
        "not valid UTF-8 at byte {offset}: the file cannot be edited without changing other bytes"
    )]
    NotUtf8 { offset: usize },
    /// The lexer reads `\r\n` and `\r` as `\n`: offsets after the first one would be off.
    #[error("carriage return (\\r) on line {line}: files with CR line ends are not edited")]
    CarriageReturn { line: u32 },
    /// A file nginx would not read: an edit placed by a guessed structure could land anywhere.
    #[error("syntax error{}: {message}", line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    Syntax { line: Option<u32>, message: String },
    /// Two edits change the same bytes: applying both has no single meaning.
    #[error("edits overlap: bytes {}..{} and {}..{}", first.start, first.end, second.start, second.end)]
    Overlap {
        first: Range<usize>,
        second: Range<usize>,
    },
    /// The tree keeps a directive's span in 32 bits ([`Directive::span`]): past that, the
    /// offsets an edit is placed by would be wrong.
    #[error("the file is {len} bytes: files over 4 GiB are not edited")]
    TooBig { len: usize },
    /// An edit's range is past the end of the text or splits a character.
    #[error("edit range {}..{} is not within the {len} bytes of the text or splits a character", range.start, range.end)]
    OutOfText { range: Range<usize>, len: usize },
    /// [`EditableFile::set_arg`] of an argument the directive does not have.
    #[error("\"{name}\" on line {line} has {count} arguments, no argument {index}")]
    NoSuchArg {
        name: String,
        line: u32,
        index: usize,
        count: usize,
    },
}

/// Replace `range` of the original text with `text`; an empty range inserts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

/// Applies `edits` to `original`. They may come in any order; insertions at the same point are
/// made in the order given. Edits whose ranges share bytes are refused: there is no order in
/// which both mean what their author meant.
pub fn apply(original: &str, edits: &[Edit]) -> Result<String, EditError> {
    for e in edits {
        let r = &e.range;
        if r.start > r.end
            || r.end > original.len()
            || !original.is_char_boundary(r.start)
            || !original.is_char_boundary(r.end)
        {
            return Err(EditError::OutOfText {
                range: r.clone(),
                len: original.len(),
            });
        }
    }
    let mut order: Vec<&Edit> = edits.iter().collect();
    // A stable sort keeps same-point insertions in the caller's order; an insertion sorts before
    // a replacement starting at the same byte (its end is smaller), so it lands before it.
    order.sort_by_key(|e| (e.range.start, e.range.end));
    for w in order.windows(2) {
        if w[1].range.start < w[0].range.end {
            return Err(EditError::Overlap {
                first: w[0].range.clone(),
                second: w[1].range.clone(),
            });
        }
    }
    let added: usize = order.iter().map(|e| e.text.len()).sum();
    let mut out = String::with_capacity(original.len() + added);
    let mut at = 0;
    for e in order {
        out.push_str(&original[at..e.range.start]);
        out.push_str(&e.text);
        at = e.range.end;
    }
    out.push_str(&original[at..]);
    Ok(out)
}

/// One file's text and its directives with their spans, ready for [`Edit`]s.
#[derive(Clone, Debug)]
pub struct EditableFile {
    text: String,
    directives: Vec<Directive>,
}

/// A directive of an [`EditableFile`], with the block it is in.
#[derive(Clone, Copy, Debug)]
pub struct DirectiveRef<'a> {
    directive: &'a Directive,
    siblings: &'a [Directive],
    parent: Option<&'a Directive>,
}

impl<'a> DirectiveRef<'a> {
    pub fn directive(&self) -> &'a Directive {
        self.directive
    }
    pub fn name(&self) -> &'a str {
        &self.directive.name
    }
    /// Unquoted, as [`Directive::args`].
    pub fn args(&self) -> &'a [Text] {
        &self.directive.args
    }
    /// 1-based line of the name.
    pub fn line(&self) -> u32 {
        self.directive.line
    }
    /// From the name to the end of the `;` or of the block's `}`.
    pub fn span(&self) -> Range<usize> {
        self.directive.span()
    }
    /// One per argument, quotes included.
    pub fn arg_spans(&self) -> &'a [Range<usize>] {
        self.directive.arg_spans()
    }
    /// The directives of the block this one is in (the file's top level for a fragment),
    /// itself included; not those nested deeper.
    pub fn siblings(&self) -> &'a [Directive] {
        self.siblings
    }
    /// The block directive this one is in; `None` at the top level of the file.
    pub fn parent(&self) -> Option<&'a Directive> {
        self.parent
    }
}

impl EditableFile {
    /// Parses one file on its own: includes are not followed, and neither contexts nor argument
    /// counts are checked, since the file may be a fragment included from anywhere. Refuses
    /// files the lexer would read differently from their bytes (invalid UTF-8, any `\r`) and
    /// files with a syntax error.
    pub fn parse(bytes: &[u8]) -> Result<EditableFile, EditError> {
        if u32::try_from(bytes.len()).is_err() {
            return Err(EditError::TooBig { len: bytes.len() });
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                return Err(EditError::NotUtf8 {
                    offset: e.valid_up_to(),
                })
            }
        };
        if let Some(cr) = memchr::memchr(b'\r', bytes) {
            let line = 1 + memchr::memchr_iter(b'\n', &bytes[..cr]).count() as u32;
            return Err(EditError::CarriageReturn { line });
        }
        let opts = Options {
            single_file: true,
            spans: true,
            ..Options::syntax_only()
        };
        let mut config = parse_bytes("fragment.conf", bytes, &opts);
        let Some(file) = config.files.pop() else {
            return Err(EditError::Syntax {
                line: None,
                message: "the parser returned no file".into(),
            });
        };
        // Only syntax errors are possible with these options; any error means the tree may not
        // be the whole file.
        if let Some(e) = file.errors.into_iter().next() {
            return Err(EditError::Syntax {
                line: e.line,
                message: e.message,
            });
        }
        let mut directives = file.parsed;
        // A comment between arguments comes out as a `#` directive after its directive; it is
        // text to keep, not a directive to edit or count as a sibling.
        drop_comments(&mut directives);
        Ok(EditableFile {
            text: text.to_owned(),
            directives,
        })
    }

    /// The file's text, byte for byte.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The top-level directives, blocks nested in them.
    pub fn directives(&self) -> &[Directive] {
        &self.directives
    }

    /// Every directive at every depth, in the order of the text.
    pub fn walk(&self) -> Vec<DirectiveRef<'_>> {
        fn go<'a>(
            block: &'a [Directive],
            parent: Option<&'a Directive>,
            out: &mut Vec<DirectiveRef<'a>>,
        ) {
            for d in block {
                out.push(DirectiveRef {
                    directive: d,
                    siblings: block,
                    parent,
                });
                if let Some(inner) = &d.block {
                    go(inner, Some(d), out);
                }
            }
        }
        let mut out = Vec::new();
        go(&self.directives, None, &mut out);
        out
    }

    /// The directive named `name` whose name is on 1-based `line`, at any depth; the first one
    /// if the line has several.
    pub fn find(&self, line: u32, name: &str) -> Option<DirectiveRef<'_>> {
        self.walk()
            .into_iter()
            .find(|d| d.line() == line && d.name() == name)
    }

    /// Replaces argument `index` (0-based) of `d` with `value`, quoted if it needs to be (see
    /// [`quote_arg`]). A Lua block's body is replaced as is, between its braces.
    pub fn set_arg(
        &self,
        d: &DirectiveRef<'_>,
        index: usize,
        value: &str,
    ) -> Result<Edit, EditError> {
        let Some(range) = d.arg_spans().get(index) else {
            return Err(EditError::NoSuchArg {
                name: d.name().to_owned(),
                line: d.line(),
                index,
                count: d.args().len(),
            });
        };
        let lua_body = is_lua_block(d.name()) && index + 1 == d.args().len();
        // `"left"-quote` is two arguments to crossplane (text after a closing quote starts a
        // new word), and would become one if the first lost its quotes. (After a bare word,
        // what follows is the same word: an `if`'s `)`.)
        let glued = self.text[range.clone()].starts_with(['"', '\''])
            && self.text[range.end..]
                .chars()
                .next()
                .is_some_and(|c| !is_py_space_char(c) && !matches!(c, ';' | '{' | '}'));
        let text = if lua_body {
            value.to_owned()
        } else if glued {
            double_quote(value)
        } else {
            quote_arg(value).into_owned()
        };
        Ok(Edit {
            range: range.clone(),
            text,
        })
    }

    /// Adds `args` after the last argument of `d` (after its name if it has none):
    /// `limit_req zone=one;` becomes `limit_req zone=one burst=20;`.
    pub fn append_args(&self, d: &DirectiveRef<'_>, args: &[&str]) -> Edit {
        let at = self.args_end(d.directive);
        let mut text = String::new();
        for a in args {
            text.push(' ');
            text.push_str(&quote_arg(a));
        }
        Edit {
            range: at..at,
            text,
        }
    }

    /// Makes `name args;` hold in the block of `near`: if a directive `name` is among `near`'s
    /// siblings (the same block, not deeper), its arguments become `args`; otherwise a new line
    /// `name args;` goes right after `near` (after a comment ending its line), indented like
    /// `near`'s line.
    pub fn set_in_block(&self, near: &DirectiveRef<'_>, name: &str, args: &[&str]) -> Edit {
        let joined = args
            .iter()
            .map(|a| quote_arg(a))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(s) = near.siblings().iter().find(|s| s.name == name) {
            let end = self.args_end(s);
            let (start, text) = match s.arg_spans().first() {
                // The spacing before the first argument is the author's; keep it.
                Some(first) if !joined.is_empty() => (first.start, joined),
                // No arguments left: from the end of the name, so it reads `name;`.
                Some(_) => (self.name_end(s), joined),
                None if joined.is_empty() => (end, joined),
                None => (end, format!(" {joined}")),
            };
            return Edit {
                range: start..end,
                text,
            };
        }
        let b = self.text.as_bytes();
        let after = near.directive.span().end;
        let eol = memchr::memchr(b'\n', &b[after..]).map_or(b.len(), |n| after + n);
        let rest = self.text[after..eol].trim_start_matches([' ', '\t']);
        // Only a comment or blank left on the line: the new line goes after it. Something else
        // (`a; b;`): right after the `;`, so the new directive still follows `near`.
        let at = if rest.is_empty() || rest.starts_with('#') {
            eol
        } else {
            after
        };
        let line_start =
            memchr::memrchr(b'\n', &b[..near.directive.span().start]).map_or(0, |n| n + 1);
        let indent_len = b[line_start..]
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        let indent = &self.text[line_start..line_start + indent_len];
        let directive = if joined.is_empty() {
            format!("{name};")
        } else {
            format!("{name} {joined};")
        };
        Edit {
            range: at..at,
            text: format!("\n{indent}{directive}"),
        }
    }

    /// Where the last argument of `d` ends, or its name if it has none.
    fn args_end(&self, d: &Directive) -> usize {
        match d.arg_spans().last() {
            Some(s) => s.end,
            None => self.name_end(d),
        }
    }

    /// Where the name of `d` ends. The name is a word unless someone quoted it; a quoted name
    /// ends at its closing quote, which the lexer puts before the first space.
    fn name_end(&self, d: &Directive) -> usize {
        let start = d.span().start;
        if self.text[start..].starts_with(d.name.as_str()) {
            return start + d.name.len();
        }
        let rest = &self.text[start..d.span().end];
        let len = rest
            .char_indices()
            .skip(1)
            .find(|&(_, c)| is_py_space_char(c) || matches!(c, ';' | '{'))
            .map_or(rest.len(), |(i, _)| i);
        start + len
    }
}

fn drop_comments(block: &mut Vec<Directive>) {
    block.retain(|d| d.comment().is_none());
    block.iter_mut().for_each(drop_nested_comments);
}

fn drop_nested_comments(d: &mut Directive) {
    if let Some(b) = &mut d.block {
        b.retain(|d| d.comment().is_none());
        b.iter_mut().for_each(drop_nested_comments);
    }
}

/// `value` as an argument nginx reads back as `value`: bare when it can be, else in double
/// quotes with `"` and `\` escaped (`ngx_conf_read_token()` in `src/core/ngx_conf_file.c`
/// unescapes `\"` and `\\`). Quoted when empty, or with whitespace, `;`, `{`, `}`, `#`, a
/// quote, or a backslash nginx would unescape in a bare word (before `"`, `'`, `\`, `t`, `r`,
/// `n`, or last); a regex's `\.` stays bare.
pub fn quote_arg(value: &str) -> Cow<'_, str> {
    let b = value.as_bytes();
    let unescaped_backslash = b.iter().enumerate().any(|(i, &c)| {
        c == b'\\'
            && matches!(
                b.get(i + 1),
                None | Some(b'"' | b'\'' | b'\\' | b't' | b'r' | b'n')
            )
    });
    let needs_quotes = value.is_empty()
        || unescaped_backslash
        || value
            .chars()
            .any(|c| is_py_space_char(c) || matches!(c, ';' | '{' | '}' | '#' | '"' | '\''));
    if needs_quotes {
        Cow::Owned(double_quote(value))
    } else {
        Cow::Borrowed(value)
    }
}

/// `value` in double quotes, `"` and `\` escaped.
fn double_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The edit and the text it makes, for a snapshot.
    fn show(f: &EditableFile, edits: &[Edit]) -> String {
        let mut s = String::new();
        for e in edits {
            s.push_str(&format!("{:?} <- {:?}\n", e.range, e.text));
        }
        s.push_str("---\n");
        s.push_str(&apply(f.text(), edits).unwrap());
        s
    }

    fn file(s: &str) -> EditableFile {
        EditableFile::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn set_in_block_inserts_with_spaces() {
        let f = file(
            "server {\n    listen 80;\n    location / {\n        proxy_pass http://b;\n    }\n}\n",
        );
        let d = f.find(4, "proxy_pass").unwrap();
        insta::assert_snapshot!(show(
            &f,
            &[f.set_in_block(&d, "proxy_read_timeout", &["60s"])]
        ));
    }

    #[test]
    fn set_in_block_inserts_with_tabs_after_a_comment() {
        let f = file("server {\n\tlocation / {\n\t\tproxy_pass http://b; # backend\n\t}\n}\n");
        let d = f.find(3, "proxy_pass").unwrap();
        insta::assert_snapshot!(show(
            &f,
            &[f.set_in_block(&d, "proxy_read_timeout", &["60s"])]
        ));
    }

    #[test]
    fn set_in_block_replaces_a_sibling() {
        let f = file(
            "location / {\n    proxy_pass http://b;\n    proxy_read_timeout  5s  10s; # short\n}\n",
        );
        let d = f.find(2, "proxy_pass").unwrap();
        insta::assert_snapshot!(show(
            &f,
            &[f.set_in_block(&d, "proxy_read_timeout", &["60s"])]
        ));
    }

    #[test]
    fn set_in_block_ignores_a_directive_nested_deeper() {
        // The `proxy_read_timeout` in the nested location is not a sibling: a new one goes in
        // the server.
        let f = file(
            "server {\n  proxy_pass http://b;\n  location /x {\n    proxy_read_timeout 1s;\n  }\n}\n",
        );
        let d = f.find(2, "proxy_pass").unwrap();
        insta::assert_snapshot!(show(
            &f,
            &[f.set_in_block(&d, "proxy_read_timeout", &["60s"])]
        ));
    }

    #[test]
    fn set_in_block_at_the_top_of_a_fragment() {
        let f = file("# included from a location\nfastcgi_pass unix:/run/php.sock;\ninclude fastcgi_params;\n");
        let d = f.find(2, "fastcgi_pass").unwrap();
        insta::assert_snapshot!(show(
            &f,
            &[
                f.set_in_block(&d, "fastcgi_read_timeout", &["300s"]),
                f.set_in_block(&d, "include", &["snippets/fastcgi-php.conf"]),
            ]
        ));
    }

    #[test]
    fn append_args_after_the_last() {
        let f = file("limit_req zone=one;\nlimit_req_status;\n");
        let a = f.find(1, "limit_req").unwrap();
        let b = f.find(2, "limit_req_status").unwrap();
        insta::assert_snapshot!(show(
            &f,
            &[
                f.append_args(&a, &["burst=20", "nodelay"]),
                f.append_args(&b, &["429"])
            ]
        ));
    }

    #[test]
    fn set_arg_quotes_when_needed() {
        let f = file("a b \"c d\" 'e' f;\n");
        let d = f.find(1, "a").unwrap();
        let edits = [
            f.set_arg(&d, 0, "x y").unwrap(),
            f.set_arg(&d, 1, "plain").unwrap(),
            f.set_arg(&d, 2, "say \"hi\\\"").unwrap(),
            f.set_arg(&d, 3, "").unwrap(),
        ];
        insta::assert_snapshot!(show(&f, &edits));
        assert_eq!(quote_arg("~\\.php$"), "~\\.php$");
        assert_eq!(quote_arg("a;b"), "\"a;b\"");
        assert_eq!(quote_arg("${x}"), "\"${x}\"");
        assert_eq!(quote_arg("a\\n"), "\"a\\\\n\"");
        assert!(matches!(
            f.set_arg(&d, 9, "x"),
            Err(EditError::NoSuchArg {
                index: 9,
                count: 4,
                ..
            })
        ));
        // crossplane reads `"l"-q` as two words: the replacement keeps its quotes.
        let g = file("a \"l\"-q;\n");
        let d = g.find(1, "a").unwrap();
        let e = g.set_arg(&d, 0, "X").unwrap();
        assert_eq!(apply(g.text(), &[e]).unwrap(), "a \"X\"-q;\n");
        // What the lexer reads back is the value, when it has no backslash.
        let edited = file(&apply(f.text(), &edits[..2]).unwrap());
        assert_eq!(edited.directives()[0].args[..], ["x y", "plain", "e", "f"]);
    }

    #[test]
    fn set_arg_of_an_if_and_a_lua_body() {
        let f = file("if ($a = b) { }\ncontent_by_lua_block { ngx.say(1) }\n");
        let i = f.find(1, "if").unwrap();
        let l = f.find(2, "content_by_lua_block").unwrap();
        let edits = [
            f.set_arg(&i, 0, "$x").unwrap(),
            f.set_arg(&i, 2, "c").unwrap(),
            f.set_arg(&l, 0, " ngx.exit(404) ").unwrap(),
        ];
        assert_eq!(
            apply(f.text(), &edits).unwrap(),
            "if ($x = c) { }\ncontent_by_lua_block { ngx.exit(404) }\n"
        );
    }

    #[test]
    fn apply_orders_and_refuses_overlaps() {
        let e = |r: Range<usize>, t: &str| Edit {
            range: r,
            text: t.into(),
        };
        assert_eq!(
            apply(
                "abcdef",
                &[e(4..5, "E"), e(1..1, "1"), e(1..1, "2"), e(1..3, "")]
            )
            .unwrap(),
            "a12dEf"
        );
        assert_eq!(apply("abc", &[]).unwrap(), "abc");
        assert_eq!(
            apply("abcdef", &[e(1..4, "x"), e(3..5, "y")]),
            Err(EditError::Overlap {
                first: 1..4,
                second: 3..5
            })
        );
        assert!(matches!(
            apply("abcdef", &[e(1..4, "x"), e(2..2, "y")]),
            Err(EditError::Overlap { .. })
        ));
        assert!(matches!(
            apply("é", &[e(1..1, "x")]),
            Err(EditError::OutOfText { .. })
        ));
        assert!(matches!(
            apply("abc", &[e(2..9, "x")]),
            Err(EditError::OutOfText { .. })
        ));
    }

    #[test]
    fn refuses_what_it_cannot_edit_byte_for_byte() {
        let err = |b: &[u8]| EditableFile::parse(b).unwrap_err();
        assert_eq!(
            err(b"user nginx;\r\nworker_processes 1;\r\n"),
            EditError::CarriageReturn { line: 1 }
        );
        insta::assert_snapshot!(err(b"a;\nb;\rc;\n").to_string(), @r"carriage return (\r) on line 2: files with CR line ends are not edited");
        assert_eq!(err(b"a;\nb \xff;\n"), EditError::NotUtf8 { offset: 5 });
        assert_eq!(
            err(b"http {\n  server {\n}\n"),
            EditError::Syntax {
                line: Some(4),
                message: "unexpected end of file, expecting \"}\"".into()
            }
        );
        assert_eq!(
            err(b"a b\n}\n").to_string(),
            "syntax error on line 2: unexpected \"}\""
        );
    }

    #[test]
    fn comments_between_arguments_are_not_directives() {
        let f = file("a b # c\n d;\ne;\n");
        let names: Vec<_> = f.walk().iter().map(|d| d.name()).collect();
        assert_eq!(names, ["a", "e"]);
    }
}
