//! Tokens to directives, following includes: crossplane 0.5.8's `parser.parse()`, with nginx
//! as the judge where crossplane is wrong (REPORT.md §3).
//!
//! Kept from crossplane, because that is what `crossplane parse` prints and what a user of
//! its JSON expects:
//! * a directive that fails the context check is dropped from the tree, and if it had a
//!   block, the block's contents are read at the same level (crossplane `_parse` `continue`s);
//! * comments found between arguments follow the directive even without `comments`;
//! * includes are listed once per file, in first-included order, and a file included from two
//!   contexts is parsed in the first one.
//!
//! Changed, nginx being the judge (the differential test lists each file this changes):
//! * a directive cut off by `}` (`foo bar }`) that crossplane does not check is an error
//!   (`unexpected "}"`, `ngx_conf_read_token()` in `src/core/ngx_conf_file.c`) and the `}`
//!   closes the block; crossplane silently swallows the `}` (bug 1);
//! * a directive cut off by the end of the file is `unexpected end of file, expecting ";" or
//!   "}"` at the last line, not crossplane's empty message with no line (bug 3);
//! * on a syntax error the file keeps the directives read before it; crossplane drops the
//!   whole file's tree. nginx stops at the first syntax error, so do we (per file);
//! * every `*_by_lua_block` is a Lua block (bug 2, see [`super::lexer::is_lua_block`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use super::analyzer::{analyze_in, context_mask, enter_block};
use super::fs::{
    errno_text, glob, has_magic, py_dirname, py_join, py_repr, to_path, DiskFs, FileSystem,
};
use super::lexer::{decode_vec, lex, LexError, Lexed, Token};
use super::{Config, ConfigError, ConfigErrorKind, ConfigFile, Directive, Extra, FileId, Text};

/// How relative `include` paths are resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum IncludeRoot {
    /// Against the directory of the main file. This is what crossplane does, and what nginx
    /// does too: its conf prefix is the directory of the `-c` file (`ngx_process_options()` in
    /// `src/core/nginx.c`), and `include` resolves against it (`ngx_conf_full_name()`).
    #[default]
    MainFileDir,
    /// Against this directory (nginx's `-p PREFIX` with a relative `-c`, or a copied config
    /// whose includes name the original place).
    Dir(String),
}

/// Whose wording and include semantics to follow where crossplane and nginx differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    /// `crossplane parse` byte for byte: a missing include is Python's
    /// `[Errno 2] No such file or directory: 'PATH'`; include cycles are harmless (each file is
    /// parsed once) and not reported.
    #[default]
    Crossplane,
    /// nginx's wording (`open() "PATH" failed (2: No such file or directory)`), and an include
    /// that would recurse forever is an error and is left out of [`Directive::includes`], so the
    /// include graph a consumer walks has no cycle.
    Nginx,
}

/// What to parse and check. The default is `crossplane parse FILE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Do not follow includes (`--single-file`); `include` directives get no `includes`.
    pub single_file: bool,
    /// Keep `#` comments as directives named `#` (`--include-comments`).
    pub comments: bool,
    /// crossplane's context check (`"X" directive is not allowed here`).
    pub check_ctx: bool,
    /// crossplane's argument-count check.
    pub check_args: bool,
    pub include_root: IncludeRoot,
    pub flavor: Flavor,
    /// Keep each argument's byte span ([`Directive::arg_spans`]): the editor needs them, the
    /// rest of the engine does not (a directive's own `span` is always kept).
    pub spans: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            single_file: false,
            comments: false,
            check_ctx: true,
            check_args: true,
            include_root: IncludeRoot::MainFileDir,
            flavor: Flavor::Crossplane,
            spans: false,
        }
    }
}

impl Options {
    /// `crossplane.parse(check_ctx=False, check_args=False)`: only syntax.
    pub fn syntax_only() -> Self {
        Options {
            check_ctx: false,
            check_args: false,
            ..Options::default()
        }
    }

    /// What the effective model wants: includes followed, nginx's wording, no cycles.
    pub fn nginx() -> Self {
        Options {
            flavor: Flavor::Nginx,
            ..Options::default()
        }
    }
}

/// Parses the config whose main file is `path`, from disk.
pub fn parse_file(path: impl AsRef<Path>, opts: &Options) -> Config {
    let p = path.as_ref().to_string_lossy().into_owned();
    parse_with(&DiskFs::default(), &p, opts)
}

/// Parses one in-memory file (its includes are not followed unless `fs` has them: use
/// [`parse_with`] with a [`super::MemFs`] for several).
pub fn parse_bytes(name: &str, bytes: &[u8], opts: &Options) -> Config {
    let mut fs = super::MemFs::default();
    fs.insert(name, bytes.to_vec());
    parse_with(&fs, name, opts)
}

/// Parses the config whose main file is `main`, reading files through `fs`.
///
/// Files are read and lexed ahead on a helper thread as soon as an `include` names them, while
/// this thread parses them in crossplane's order; the result does not depend on the timing.
pub fn parse_with(fs: &dyn FileSystem, main: &str, opts: &Options) -> Config {
    parse_each(fs, main, opts, |_| {})
}

/// [`parse_with`], handing each file to `parsed` as soon as it is complete, in crossplane's
/// order. A file is complete once parsed: later files add nothing to it. `config parse` prints
/// each file and drops its tree there, so the memory of one file's tree is reused for the next
/// (a whole 5,000-server tree is 20 MB, and faulting in fresh pages was half its time). With
/// [`Flavor::Nginx`], include cycles are broken afterwards in the trees left in place.
pub fn parse_each(
    fs: &dyn FileSystem,
    main: &str,
    opts: &Options,
    mut parsed: impl FnMut(&mut ConfigFile),
) -> Config {
    let ahead = LexAhead::default();
    let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
    let files = std::thread::scope(|scope| {
        if helpers {
            scope.spawn(|| ahead.work(fs));
        }
        let mut s = Session {
            fs,
            opts,
            config_dir: match &opts.include_root {
                IncludeRoot::MainFileDir => py_dirname(main).to_owned(),
                IncludeRoot::Dir(d) => d.clone(),
            },
            files: Vec::new(),
            ctxs: Vec::new(),
            index: HashMap::new(),
            opened: HashSet::new(),
            ahead: &ahead,
        };
        s.add_file(main, Vec::new());
        let mut i = 0;
        while i < s.files.len() {
            s.parse_one(i);
            parsed(&mut s.files[i]);
            i += 1;
        }
        ahead.finish();
        s.files
    });
    let mut config = Config { files };
    if opts.flavor == Flavor::Nginx && !opts.single_file {
        break_cycles(&mut config);
    }
    config
}

/// A file read and lexed, or why it could not be read.
type Lexing = Result<Lexed, std::io::Error>;

fn read_and_lex(fs: &dyn FileSystem, path: &str) -> Lexing {
    let bytes = fs.read(path)?;
    Ok(lex(&decode_vec(bytes)))
}

/// Files waiting to be lexed, and files lexed, shared with the helper thread.
#[derive(Default)]
struct LexAhead {
    state: Mutex<AheadState>,
    changed: Condvar,
}

#[derive(Default)]
struct AheadState {
    queue: VecDeque<(FileId, String)>,
    done: HashMap<FileId, Lexing>,
    finished: bool,
}

impl LexAhead {
    const AHEAD: usize = 4;

    fn lock(&self) -> std::sync::MutexGuard<'_, AheadState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, id: FileId, path: &str) {
        self.lock().queue.push_back((id, path.to_owned()));
        self.changed.notify_all();
    }

    fn finish(&self) {
        self.lock().finished = true;
        self.changed.notify_all();
    }

    /// The helper thread: lex queued files until told to stop.
    fn work(&self, fs: &dyn FileSystem) {
        loop {
            let (id, path) = {
                let mut st = self.lock();
                loop {
                    if st.finished {
                        return;
                    }
                    // A few files ahead keeps both threads busy; more only costs memory.
                    if st.done.len() < Self::AHEAD {
                        if let Some(job) = st.queue.pop_front() {
                            break job;
                        }
                    }
                    st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            // A panic here would leave the parser waiting for this file forever.
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_and_lex(fs, &path)))
                    .unwrap_or_else(|_| Err(std::io::Error::other("internal error while lexing")));
            self.lock().done.insert(id, r);
            self.changed.notify_all();
        }
    }

    /// File `id`'s tokens: lexed ahead, or lexed here if the helper has not started on it.
    fn take(&self, fs: &dyn FileSystem, id: FileId, path: &str) -> Lexing {
        let mut st = self.lock();
        loop {
            if let Some(r) = st.done.remove(&id) {
                drop(st);
                self.changed.notify_all();
                return r;
            }
            if let Some(pos) = st.queue.iter().position(|(j, _)| *j == id) {
                st.queue.remove(pos);
                drop(st);
                return read_and_lex(fs, path);
            }
            if st.finished {
                drop(st);
                return read_and_lex(fs, path);
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct Session<'a> {
    fs: &'a dyn FileSystem,
    opts: &'a Options,
    config_dir: String,
    files: Vec<ConfigFile>,
    /// The block context each file is parsed in (that of its first `include`).
    ctxs: Vec<Vec<String>>,
    index: HashMap<String, FileId>,
    /// Non-glob includes already found openable.
    opened: HashSet<String>,
    ahead: &'a LexAhead,
}

/// Why a file's token stream ended early.
enum Stop {
    /// The stream ran out in the middle of a directive.
    EofInDirective,
    Fatal(LexError),
}

impl Session<'_> {
    fn add_file(&mut self, path: &str, ctx: Vec<String>) -> FileId {
        if let Some(&id) = self.index.get(path) {
            return id;
        }
        let id = self.files.len();
        self.files.push(ConfigFile {
            path: to_path(path),
            ..ConfigFile::default()
        });
        self.ctxs.push(ctx);
        self.index.insert(path.to_owned(), id);
        self.ahead.push(id, path);
        id
    }

    fn open_error(&self, path: &str, e: &std::io::Error) -> String {
        let (code, text) = errno_text(e);
        match self.opts.flavor {
            Flavor::Crossplane => format!("[Errno {code}] {text}: {}", py_repr(path)),
            // ngx_conf_parse(): ngx_open_file_n " \"%s\" failed", with the errno appended.
            Flavor::Nginx => format!("open() \"{path}\" failed ({code}: {text})"),
        }
    }

    fn parse_one(&mut self, id: FileId) {
        let path = self.files[id].path.to_string_lossy().into_owned();
        let lexed = match self.ahead.take(self.fs, id, &path) {
            Ok(l) => l,
            Err(e) => {
                let message = self.open_error(&path, &e);
                self.files[id].errors.push(ConfigError {
                    file: to_path(&path),
                    line: None,
                    message,
                    kind: ConfigErrorKind::Io,
                });
                return;
            }
        };
        let ctx = self.ctxs[id].clone();
        let mut p = FileParser {
            s: self,
            file: id,
            path: &path,
            toks: lexed.tokens,
            pos: 0,
            lex_error: lexed.error.as_ref(),
            errors: Vec::new(),
            depth: 0,
            last_end: 0,
            stack: Vec::new(),
            args: Vec::new(),
        };
        let (parsed, stop) = p.block(&ctx, false);
        let mut errors = std::mem::take(&mut p.errors);
        match stop {
            None => {}
            Some(Stop::EofInDirective) => errors.push(ConfigError {
                file: to_path(&path),
                line: Some(lexed.eof_line),
                message: "unexpected end of file, expecting \";\" or \"}\"".into(),
                kind: ConfigErrorKind::Syntax,
            }),
            Some(Stop::Fatal(e)) => errors.push(ConfigError {
                file: to_path(&path),
                line: Some(e.line),
                message: e.message,
                kind: ConfigErrorKind::Syntax,
            }),
        }
        let f = &mut self.files[id];
        f.parsed = parsed;
        f.errors.extend(errors);
    }
}

struct FileParser<'a, 's> {
    s: &'a mut Session<'s>,
    file: FileId,
    path: &'a str,
    /// The file's tokens, each taken (moved out) as it is read.
    toks: Vec<Token>,
    pos: usize,
    lex_error: Option<&'a LexError>,
    errors: Vec<ConfigError>,
    depth: u32,
    /// The end of the last token read: after a block, its `}`, where the block's span ends.
    last_end: usize,
    /// The directives of the blocks being read, innermost last: a block is moved out of it
    /// once complete, into a `Vec` allocated once at its final size (growing one `Vec` per
    /// block left a third of the tree's memory unused).
    stack: Vec<Directive>,
    /// The arguments of the directive being read, likewise.
    args: Vec<Text>,
}

impl FileParser<'_, '_> {
    /// The next token; `Err(None)` at a clean end of the stream.
    fn next(&mut self) -> Result<Token, Option<Stop>> {
        match self.toks.get_mut(self.pos) {
            Some(t) => {
                self.pos += 1;
                let text = std::mem::take(&mut t.text);
                self.last_end = t.span.end;
                Ok(Token {
                    text,
                    line: t.line,
                    quoted: t.quoted,
                    span: t.span.clone(),
                })
            }
            None => Err(self.lex_error.map(|e| Stop::Fatal(e.clone()))),
        }
    }

    fn error(&mut self, line: u32, message: String, kind: ConfigErrorKind) {
        self.errors.push(ConfigError {
            file: to_path(self.path),
            line: Some(line),
            message,
            kind,
        });
    }

    /// crossplane's `_parse`: the directives of one block, up to its `}`.
    fn block(&mut self, ctx: &[String], consume: bool) -> (Vec<Directive>, Option<Stop>) {
        self.depth += 1;
        let base = self.stack.len();
        let stop = self.block_inner(ctx, consume);
        self.depth -= 1;
        (self.stack.drain(base..).collect(), stop)
    }

    /// A block nested deeper than this is an error: the recursion (ours, and nginx's
    /// `ngx_conf_parse()`) must not exhaust the stack. Real configs nest less than 10 deep.
    const MAX_DEPTH: u32 = 200;

    fn block_inner(&mut self, ctx: &[String], consume: bool) -> Option<Stop> {
        if self.depth > Self::MAX_DEPTH {
            let line = self
                .toks
                .get(self.pos.saturating_sub(1))
                .map_or(0, |t| t.line);
            let message = format!("blocks nested deeper than {}", Self::MAX_DEPTH);
            return Some(Stop::Fatal(LexError { message, line }));
        }
        // Every directive of the block is checked against the same context.
        let ctx_mask = context_mask(ctx);
        loop {
            let tok = match self.next() {
                Ok(t) => t,
                Err(stop) => return stop,
            };
            if tok.is_punct("}") {
                break;
            }
            if consume {
                if tok.is_punct("{") {
                    if let (_, Some(stop)) = self.block(ctx, true) {
                        return Some(stop);
                    }
                }
                continue;
            }
            if !tok.quoted && tok.text.starts_with('#') {
                if self.s.opts.comments {
                    self.stack
                        .push(comment(&tok.text[1..], tok.line, self.file, tok.span));
                }
                continue;
            }

            let mut args = std::mem::take(&mut self.args);
            args.clear();
            // Kept only when asked (`Options::spans`: the editor): a span per argument of every
            // directive is a sixth of a big config's parsed size.
            let spans_on = self.s.opts.spans;
            let mut arg_spans = Vec::new();
            let mut last_arg_end = None;
            let mut comments_in_args = Vec::new();
            let term = loop {
                let t = match self.next() {
                    Ok(t) => t,
                    Err(None) => return Some(Stop::EofInDirective),
                    Err(stop) => return stop,
                };
                if !t.quoted && matches!(&*t.text, "{" | ";" | "}") {
                    break t;
                }
                if !t.quoted && t.text.starts_with('#') {
                    comments_in_args.push((t.text[1..].to_owned(), t.span));
                } else {
                    args.push(t.text);
                    last_arg_end = Some(t.span.end);
                    if spans_on {
                        arg_spans.push((t.span, t.quoted));
                    }
                }
            };
            let name = tok.text;
            if name == "if" {
                prepare_if_args(&mut args, &mut arg_spans);
            }
            let opts = self.s.opts;
            if let Err(rej) = analyze_in(
                &name,
                &args,
                &term.text,
                ctx_mask,
                opts.check_ctx,
                opts.check_args,
            ) {
                let not_terminated = rej.not_terminated();
                self.error(tok.line, rej.message, rej.kind);
                if not_terminated {
                    if term.text == "}" {
                        break;
                    }
                    if let (_, Some(stop)) = self.block(ctx, true) {
                        return Some(stop);
                    }
                }
                continue;
            }

            let mut d = Directive {
                name,
                args: take_exact(&mut args).into_boxed_slice(),
                line: tok.line,
                file: self.file,
                span: tok.span.start..term.span.end,
                ..Directive::default()
            };
            self.args = args;
            if spans_on {
                d.extra_mut().arg_spans = arg_spans.into_iter().map(|(s, _)| s).collect();
            }
            if !opts.single_file && d.name == "include" {
                self.include(&mut d, ctx);
            }
            let mut closed_by_brace = false;
            if term.text == "{" {
                let inner = enter_block(ctx, &d.name);
                let (block, stop) = self.block(&inner, false);
                d.block = Some(block.into_boxed_slice());
                d.span.end = self.last_end;
                if stop.is_some() {
                    self.stack.push(d);
                    return stop;
                }
            } else if term.text == "}" {
                // `foo bar }`: nginx's ngx_conf_read_token() stops at `}` with words pending.
                // The `}` is the enclosing block's, not this directive's.
                d.span.end = d
                    .arg_spans()
                    .last()
                    .map(|s| s.end)
                    .or(last_arg_end)
                    .unwrap_or(tok.span.end);
                self.error(
                    term.line,
                    "unexpected \"}\"".into(),
                    ConfigErrorKind::Syntax,
                );
                closed_by_brace = true;
            }
            let line = d.line;
            self.stack.push(d);
            for (c, span) in comments_in_args {
                self.stack.push(comment(&c, line, self.file, span));
            }
            if closed_by_brace {
                break;
            }
        }
        None
    }

    fn include(&mut self, d: &mut Directive, ctx: &[String]) {
        let Some(arg) = d.args.first().cloned() else {
            // crossplane raises IndexError here (an `include;` where it checks nothing).
            let msg = "invalid number of arguments in \"include\" directive".to_owned();
            self.error(d.line, msg, ConfigErrorKind::Args);
            return;
        };
        let pattern = if arg.starts_with('/') {
            arg.to_string()
        } else {
            py_join(&self.s.config_dir, &arg)
        };
        let names = if has_magic(&pattern) {
            // nginx globs too (ngx_open_glob()); a pattern matching nothing is fine.
            let mut g = glob(self.s.fs, &pattern);
            g.sort();
            g
        } else {
            // Opened once per path: a config includes the same snippet from every server.
            let known = self.s.opened.contains(&pattern);
            match if known {
                Ok(())
            } else {
                self.s.fs.check_open(&pattern)
            } {
                Ok(()) => {
                    self.s.opened.insert(pattern.clone());
                    vec![pattern]
                }
                Err(e) => {
                    let msg = self.s.open_error(&pattern, &e);
                    self.error(d.line, msg, ConfigErrorKind::Include);
                    vec![]
                }
            }
        };
        let includes = names
            .iter()
            .map(|n| self.s.add_file(n, ctx.to_vec()))
            .collect();
        d.extra_mut().includes = includes;
    }
}

/// Moves `v`'s items into a `Vec` of exactly their number, keeping `v`'s buffer for reuse.
fn take_exact<T>(v: &mut Vec<T>) -> Vec<T> {
    let mut exact = Vec::with_capacity(v.len());
    exact.append(v);
    exact
}

fn comment(text: &str, line: u32, file: FileId, span: Range<usize>) -> Directive {
    Directive {
        name: "#".into(),
        line,
        file,
        span,
        extra: Some(Box::new(Extra {
            comment: Some(text.to_owned()),
            ..Extra::default()
        })),
        ..Directive::default()
    }
}

/// `_prepare_if_args`: strips the parentheses of `if ( ... )`. `spans` (with whether each
/// argument was quoted) follow: a bare word's text is its source, so the span of what is left
/// is the old one less the bytes cut; a quoted argument keeps its whole span, quotes and all,
/// as no byte range holds its text without them.
fn prepare_if_args(args: &mut Vec<Text>, spans: &mut Vec<(Range<usize>, bool)>) {
    let (Some(first), Some(last)) = (args.first(), args.last()) else {
        return;
    };
    if !(first.starts_with('(') && last.ends_with(')')) {
        return;
    }
    let is_space = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    let len0 = args[0].len();
    args[0] = Text::new(args[0][1..].trim_start_matches(is_space));
    if let Some((s, false)) = spans.first_mut() {
        s.start += len0 - args[0].len();
    }
    let n = args.len() - 1;
    let l = &args[n];
    let len_n = l.len();
    args[n] = Text::new(l[..l.len() - 1].trim_end_matches(is_space));
    if let Some((s, false)) = spans.last_mut() {
        // With one argument, `s.start` has moved already; the end is still the old one.
        s.end -= len_n - args[n].len();
        s.end = s.end.max(s.start);
    }
    let start = usize::from(args[0].is_empty());
    let end = args.len() - usize::from(args[n].is_empty());
    if start >= end {
        args.clear();
        spans.clear();
    } else {
        args.truncate(end);
        args.drain(..start);
        if !spans.is_empty() {
            spans.truncate(end);
            spans.drain(..start);
        }
    }
}

/// nginx expands includes in place, depth first; an include that reaches a file already being
/// expanded would recurse forever. Report it where the recursion starts and cut that edge.
fn break_cycles(config: &mut Config) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let n = config.files.len();
    let mut mark = vec![Mark::New; n];
    // (file, path in its tree to the include directive, position in that include's list)
    fn visit(config: &mut Config, mark: &mut [Mark], f: FileId, depth: u32) {
        if depth > 256 {
            return;
        }
        mark[f] = Mark::Open;
        let mut parsed = std::mem::take(&mut config.files[f].parsed);
        let mut errors = Vec::new();
        walk(config, mark, &mut parsed, f, depth, &mut errors);
        config.files[f].parsed = parsed;
        config.files[f].errors.extend(errors);
        mark[f] = Mark::Done;
    }
    fn walk(
        config: &mut Config,
        mark: &mut [Mark],
        block: &mut [Directive],
        f: FileId,
        depth: u32,
        errors: &mut Vec<ConfigError>,
    ) {
        for d in block.iter_mut() {
            let mut keep = Vec::with_capacity(d.includes().len());
            for &inc in d.includes() {
                match mark.get(inc).copied() {
                    Some(Mark::Open) => errors.push(ConfigError {
                        file: config.files[f].path.clone(),
                        line: Some(d.line),
                        message: format!(
                            "include cycle: \"{}\" is already being included",
                            config.files[inc].path.display()
                        ),
                        kind: ConfigErrorKind::Include,
                    }),
                    Some(Mark::New) => {
                        visit(config, mark, inc, depth + 1);
                        keep.push(inc);
                    }
                    _ => keep.push(inc),
                }
            }
            if let Some(e) = d.extra.as_mut() {
                e.includes = keep;
            }
            if let Some(b) = d.block.as_mut() {
                walk(config, mark, b, f, depth, errors);
            }
        }
    }
    if n > 0 {
        visit(config, &mut mark, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemFs;

    fn names(ds: &[Directive]) -> Vec<&str> {
        ds.iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn blocks_args_and_lines() {
        let c = parse_bytes(
            "n.conf",
            b"events {}\nhttp {\n  server { listen 80; }\n}\n",
            &Options::default(),
        );
        let f = &c.files[0];
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(names(&f.parsed), ["events", "http"]);
        let server = &f.parsed[1].block.as_ref().unwrap()[0];
        assert_eq!(server.line, 3);
        assert_eq!(server.block.as_ref().unwrap()[0].args[..], ["80"]);
    }

    #[test]
    fn spans_of_directives_and_arguments() {
        let src = "http {\n  server { listen 80 \"x y\"; }\n} # end\nif ($a = b) { }\n";
        let opts = Options {
            spans: true,
            ..Options::syntax_only()
        };
        let c = parse_bytes("n.conf", src.as_bytes(), &opts);
        let f = &c.files[0];
        let text = |r: &Range<usize>| &src[r.clone()];
        assert_eq!(text(&f.parsed[0].span), &src[..src.find(" #").unwrap()]);
        let server = &f.parsed[0].block.as_ref().unwrap()[0];
        assert_eq!(text(&server.span), "server { listen 80 \"x y\"; }");
        let listen = &server.block.as_ref().unwrap()[0];
        assert_eq!(text(&listen.span), "listen 80 \"x y\";");
        let args: Vec<_> = listen.arg_spans().iter().map(text).collect();
        assert_eq!(args, ["80", "\"x y\""]);
        let args: Vec<_> = f.parsed[1].arg_spans().iter().map(text).collect();
        assert_eq!((f.parsed[1].args.len(), args), (3, vec!["$a", "=", "b"]));
    }

    #[test]
    fn context_failures_are_dropped_like_crossplane() {
        let c = parse_bytes("n.conf", b"http { events { } }\n", &Options::default());
        let f = &c.files[0];
        assert_eq!(
            f.errors[0].message,
            "\"events\" directive is not allowed here"
        );
        assert_eq!(f.errors[0].kind, ConfigErrorKind::Context);
        assert!(f.parsed[0].block.as_ref().unwrap().is_empty());
        let c = parse_bytes("n.conf", b"http { events { } }\n", &Options::syntax_only());
        assert!(c.files[0].errors.is_empty());
    }

    #[test]
    fn missing_semicolon_before_brace_is_an_error() {
        let c = parse_bytes(
            "n.conf",
            b"http {\n foo bar\n}\nevents {}\n",
            &Options::default(),
        );
        let f = &c.files[0];
        assert_eq!(f.errors[0].message, "unexpected \"}\"");
        assert_eq!(f.errors[0].line, Some(3));
        assert_eq!(names(&f.parsed), ["http", "events"]);
    }

    #[test]
    fn eof_inside_a_directive_keeps_the_tree() {
        let c = parse_bytes(
            "n.conf",
            b"user x;\nworker_processes 1",
            &Options::default(),
        );
        let f = &c.files[0];
        assert_eq!(names(&f.parsed), ["user"]);
        assert_eq!(
            f.errors[0].message,
            "unexpected end of file, expecting \";\" or \"}\""
        );
        assert_eq!(f.errors[0].line, Some(2));
    }

    #[test]
    fn several_errors_are_reported() {
        let c = parse_bytes(
            "n.conf",
            b"user a b c;\nhttp { listen 80; gzip maybe; }\n",
            &Options::default(),
        );
        assert_eq!(c.errors().count(), 3);
    }

    #[test]
    fn if_parentheses() {
        let mut a: Vec<Text> = vec!["($a".into(), "=".into(), "b)".into()];
        let mut s = vec![(0..3, false), (4..5, false), (6..8, false)];
        prepare_if_args(&mut a, &mut s);
        assert_eq!(a, ["$a", "=", "b"]);
        assert_eq!(s, [(1..3, false), (4..5, false), (6..7, false)]);
        let mut a: Vec<Text> = vec!["(".into(), "$a".into(), ")".into()];
        let mut s = vec![(0..1, false), (2..4, false), (5..6, false)];
        prepare_if_args(&mut a, &mut s);
        assert_eq!(a, ["$a"]);
        assert_eq!(s, [(2..4, false)]);
        let mut a: Vec<Text> = vec!["()".into()];
        let mut s = vec![(0..2, false)];
        prepare_if_args(&mut a, &mut s);
        assert!(a.is_empty() && s.is_empty());
        // One argument: both ends cut from the same span.
        let mut a: Vec<Text> = vec!["( $a )".into()];
        let mut s = vec![(10..16, false)];
        prepare_if_args(&mut a, &mut s);
        assert_eq!((a, s), (vec![Text::new("$a")], vec![(12..14, false)]));
    }

    #[test]
    fn includes_globs_missing_and_cycles() {
        let mut fs = MemFs::default();
        fs.insert(
            "/c/nginx.conf",
            "http { include conf.d/*.conf; include missing.conf; }\n",
        );
        fs.insert("/c/conf.d/a.conf", "server { include nginx.conf; }\n");
        let c = parse_with(&fs, "/c/nginx.conf", &Options::default());
        assert_eq!(c.files.len(), 2);
        assert_eq!(
            c.files[1].parsed[0].block.as_ref().unwrap()[0].includes(),
            [0]
        );
        let e: Vec<_> = c.errors().map(|e| e.message.as_str()).collect();
        assert_eq!(
            e,
            ["[Errno 2] No such file or directory: '/c/missing.conf'"]
        );
        let c = parse_with(&fs, "/c/nginx.conf", &Options::nginx());
        let e: Vec<_> = c.errors().map(|e| e.message.as_str()).collect();
        assert_eq!(
            e,
            [
                "open() \"/c/missing.conf\" failed (2: No such file or directory)",
                "include cycle: \"/c/nginx.conf\" is already being included"
            ]
        );
        assert!(c.files[1].parsed[0].block.as_ref().unwrap()[0]
            .includes()
            .is_empty());
    }
}
