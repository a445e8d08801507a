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

use foldhash::{HashMap as FastMap, HashMapExt, HashSet as FastSet};
use std::ops::Range;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use super::analyzer::{analyze_known, context_mask, enter_block, known, Known};
use super::crossplane::{FileJson, JsonArena, JsonBody, JsonPayload, JsonStyle, WrittenBody};
use super::fs::{
    errno_text, glob, has_magic, py_dirname, py_join, py_repr, to_path, DiskFs, FileSystem,
};
use super::lexer::{as_decoded, decode_vec, lex_into, LexError, Lexeme, Lexemes};
use super::{
    Config, ConfigError, ConfigErrorKind, ConfigFile, Directive, Extra, FileId, Name, Text, ThinVec,
};

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
/// Files are parsed on as many threads as there are cores (two at most), each file whole on one
/// thread; the result does not depend on the timing (see [`parse_each`]).
pub fn parse_with(fs: &dyn FileSystem, main: &str, opts: &Options) -> Config {
    parse_each(fs, main, opts, |_, _| {}).0
}

/// [`parse_with`], handing each file to `each` as soon as it is complete, with its id, and
/// returning what `each` made of each file, in file order. A file is complete once parsed and
/// its includes numbered: later files add nothing to it. A caller that needs each file only
/// once can drop its tree there, so the memory of one file's tree is reused for the next (a
/// whole 5,000-server tree is 20 MB, and faulting in fresh pages was half the parse's time);
/// `config parse` builds no tree at all ([`parse_to_json`]).
/// With [`Flavor::Nginx`], include cycles are broken afterwards in the trees left in place.
///
/// Files are numbered as crossplane numbers them: in the order their includes are read, each
/// file's includes before those of the files after it. A file is parsed on whichever thread is
/// free (up to two: the machines this runs on are small, and a third thread only waits) as
/// soon as an earlier file names it; the paths its includes name become ids when every file
/// before it has been numbered ([`PlanState::number`]). Parsing a file depends only on its bytes
/// and the context of its first include, so the threads' timing changes nothing. `each` runs
/// on the thread that numbered the file.
pub fn parse_each<T: Send>(
    fs: &dyn FileSystem,
    main: &str,
    opts: &Options,
    each: impl Fn(FileId, &mut ConfigFile) -> T + Sync,
) -> (Config, Vec<T>) {
    let (config, made, _) = parse_on(threads(), fs, main, opts, None, |id, f, _| each(id, f));
    (config, made)
}

/// crossplane's JSON of the config, to print with [`JsonPayload::write`], and the config's
/// files with their errors but without their directives. In the compact style, each file's
/// JSON is written as it is parsed, with no tree in between (`config parse`: the tree and its
/// walk cost a fifth of the time).
pub fn parse_to_json(
    fs: &dyn FileSystem,
    main: &str,
    opts: &Options,
    style: JsonStyle,
) -> (Config, JsonPayload) {
    parse_to_json_on(threads(), fs, main, opts, style)
}

/// [`parse_to_json`] on `threads` threads.
fn parse_to_json_on(
    threads: usize,
    fs: &dyn FileSystem,
    main: &str,
    opts: &Options,
    style: JsonStyle,
) -> (Config, JsonPayload) {
    // The indented style, argument spans and the cycles `Flavor::Nginx` breaks need the tree.
    let direct = style.indent.is_none()
        && !opts.spans
        && opts.flavor == Flavor::Crossplane
        && style.single_file == opts.single_file;
    let mut payload = JsonPayload::new(style);
    let (config, jsons) = if direct {
        let (config, jsons, arenas) = parse_on(
            threads,
            fs,
            main,
            opts,
            Some(opts.single_file),
            |_, f, body| FileJson::from_body(f, body.unwrap_or_default()),
        );
        payload.set_arenas(arenas);
        (config, jsons)
    } else {
        let (config, jsons, _) = parse_on(threads, fs, main, opts, None, |_, f, _| {
            let json = FileJson::new(f, style);
            // The tree is dropped on the thread that made it, while the other parses.
            f.parsed = Vec::new();
            json
        });
        (config, jsons)
    };
    for (f, j) in config.files.iter().zip(jsons) {
        payload.push_json(f, j);
    }
    (config, payload)
}

/// Threads to parse on: as many as there are cores, two at most.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// [`parse_each`] on `threads` threads; `json`: see [`Job::json`]. Also returns the JSON
/// arenas of the threads, by slot ([`JsonArena`]).
fn parse_on<T: Send>(
    threads: usize,
    fs: &dyn FileSystem,
    main: &str,
    opts: &Options,
    json: Option<bool>,
    each: impl Fn(FileId, &mut ConfigFile, Option<WrittenBody>) -> T + Sync,
) -> (Config, Vec<T>, Vec<Vec<String>>) {
    let config_dir = match &opts.include_root {
        IncludeRoot::MainFileDir => py_dirname(main).to_owned(),
        IncludeRoot::Dir(d) => d.clone(),
    };
    let job = Job {
        fs,
        opts,
        config_dir: &config_dir,
        json,
    };
    let plan = Plan::new(main);
    let arenas = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads.max(1))
            .map(|slot| {
                let (plan, job, each) = (&plan, &job, &each);
                medic_thread::spawn_scoped(scope, "parse", move || plan.work(slot, job, each))
            })
            .collect();
        let mut arenas = vec![plan.work(0, &job, &each)];
        for t in others {
            arenas.push(match t {
                Ok(t) => medic_thread::join(t).unwrap_or_else(|e| std::panic::resume_unwind(e)),
                // A thread that could not be started wrote nothing: the others parsed its part.
                Err(_) => Vec::new(),
            });
        }
        arenas
    });
    let st = plan.state.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut files = Vec::with_capacity(st.done.len());
    let mut made = Vec::with_capacity(st.done.len());
    let mut includes = Vec::with_capacity(st.done.len());
    for (file, m, inc) in st.done.into_iter().flatten() {
        files.push(file);
        made.push(m);
        includes.push(inc);
    }
    let mut config = Config { files };
    if opts.flavor == Flavor::Nginx && !opts.single_file {
        break_cycles(&mut config, &includes);
    }
    (config, made, arenas)
}

/// What every file's parse reads and nothing changes.
struct Job<'a> {
    fs: &'a dyn FileSystem,
    opts: &'a Options,
    config_dir: &'a str,
    /// Write each file's crossplane JSON as it is parsed, with no tree (`Some(single_file)`).
    json: Option<bool>,
}

impl Job<'_> {
    fn open_error(&self, path: &str, e: &std::io::Error) -> String {
        let (code, text) = errno_text(e);
        match self.opts.flavor {
            Flavor::Crossplane => format!("[Errno {code}] {text}: {}", py_repr(path)),
            // ngx_conf_parse(): ngx_open_file_n " \"%s\" failed", with the errno appended.
            Flavor::Nginx => format!("open() \"{path}\" failed ({code}: {text})"),
        }
    }

    /// Reads, lexes and parses file `id` in context `ctx`. Its include directives hold
    /// indices into the returned list of the files they name, numbered later.
    fn parse(&self, id: FileId, path: &str, ctx: &[String], scratch: &mut Scratch) -> Parsed {
        let mut file = ConfigFile {
            path: to_path(path),
            ..ConfigFile::default()
        };
        let Scratch {
            opened,
            bytes,
            tokens,
            arena,
            stack,
        } = scratch;
        let read = self.fs.read_into(path, bytes);
        // The tokens borrow their text from the file's: as read, or decoded when that changes it.
        let decoded: String;
        let src = match read {
            Ok(()) => match as_decoded(bytes) {
                Some(text) => text,
                None => {
                    decoded = decode_vec(std::mem::take(bytes));
                    &decoded
                }
            },
            Err(e) => {
                file.errors.push(ConfigError {
                    file: to_path(path),
                    line: None,
                    message: self.open_error(path, &e),
                    kind: ConfigErrorKind::Io,
                });
                return Parsed {
                    file,
                    named: Vec::new(),
                    json: self.json.map(|_| WrittenBody::default()),
                };
            }
        };
        let (lex_error, eof_line) = lex_into(src, tokens);
        let lex_error = lex_error.as_ref();
        let (stop, errors, named, json) = match self.json {
            Some(single) => {
                let body = JsonBody::new(std::mem::take(arena), single);
                let mut p = self.parser(body, path, opened, src, tokens, lex_error);
                let stop = p.block(ctx, false);
                let (back, written) = p.sink.finish();
                *arena = back;
                (stop, p.errors, p.named, Some(written))
            }
            None => {
                let tree = TreeSink {
                    file: u32::try_from(id).unwrap_or(u32::MAX),
                    stack: std::mem::take(stack),
                    open: Vec::new(),
                };
                let mut p = self.parser(tree, path, opened, src, tokens, lex_error);
                let stop = p.block(ctx, false);
                // At its exact size: the stack grew by doubling, and kept as the file's list it
                // left about half of 500 such lists unused (2 MB of a 5,000-server config).
                file.parsed = p.sink.stack.drain(..).collect();
                *stack = std::mem::take(&mut p.sink.stack);
                (stop, p.errors, p.named, None)
            }
        };
        let mut errors = errors;
        match stop {
            None => {}
            Some(Stop::EofInDirective) => errors.push(ConfigError {
                file: to_path(path),
                line: Some(eof_line),
                message: "unexpected end of file, expecting \";\" or \"}\"".into(),
                kind: ConfigErrorKind::Syntax,
            }),
            Some(Stop::Fatal(e)) => errors.push(ConfigError {
                file: to_path(path),
                line: Some(e.line),
                message: e.message,
                kind: ConfigErrorKind::Syntax,
            }),
        }
        file.errors = errors;
        Parsed { file, named, json }
    }
}

impl<'j> Job<'j> {
    fn parser<'a, S: Sink>(
        &'a self,
        sink: S,
        path: &'a str,
        opened: &'a mut OpenCache,
        src: &'a str,
        lexemes: &'a Lexemes,
        lex_error: Option<&'a LexError>,
    ) -> FileParser<'a, 'j, S> {
        FileParser {
            job: self,
            opened,
            named: Vec::new(),
            named_index: FastMap::new(),
            path,
            src,
            lexemes,
            toks: lexemes.list.iter(),
            last_line: 0,
            lex_error,
            errors: Vec::new(),
            depth: 0,
            last_end: 0,
            sink,
            args: Vec::new(),
        }
    }
}

/// Non-glob include paths a thread has already found openable: a config includes the same
/// snippet from every server.
type OpenCache = FastSet<String>;

/// What a thread keeps from one file to the next. The buffers are reused: a buffer of each
/// file's size and a list of its tokens, taken new for each of 500 files, spread over as many
/// of the allocator's size classes, each faulted in fresh (a tenth of `config parse`'s time
/// went to the kernel zeroing pages).
struct Scratch {
    opened: OpenCache,
    bytes: Vec<u8>,
    tokens: Lexemes,
    /// Where the thread writes its files' JSON, when the job writes JSON.
    arena: JsonArena,
    /// The [`TreeSink`]'s stack, empty between files.
    stack: Vec<Directive>,
}

/// A file parsed, and the files its includes name (path, and the context of that include), in
/// the order they are named: local indices until [`PlanState::number`] makes them ids.
struct Parsed {
    file: ConfigFile,
    named: Vec<(String, Vec<String>)>,
    /// The file's JSON, when the job writes JSON rather than a tree ([`Job::json`]).
    json: Option<WrittenBody>,
}

/// A file numbered: its id, the file, the ids of the files it names (by local index), its JSON.
type Numbered = (FileId, ConfigFile, Vec<FileId>, Option<WrittenBody>);

/// The files found so far and how far the threads are, shared by them.
struct Plan<T> {
    state: Mutex<PlanState<T>>,
    changed: Condvar,
}

struct PlanState<T> {
    /// Every file found, by id: its path and the context of its first include.
    paths: Vec<(String, Vec<String>)>,
    index: FastMap<String, FileId>,
    /// The next file to hand to a thread.
    next_parse: FileId,
    /// The next file to number: those before it are numbered.
    next_number: FileId,
    /// Files parsed but not numbered: a file before them is still being parsed.
    waiting: FastMap<FileId, Parsed>,
    /// Files being parsed.
    busy: usize,
    /// Threads waiting for a file to parse: only they need waking (a wake-up is a system call).
    idle: usize,
    /// Each file once `each` is done with it, what it made, and the files its includes pulled
    /// in (each include directive's, in the order of the tree, repeats kept).
    done: Vec<Option<(ConfigFile, T, Vec<FileId>)>>,
    /// A thread panicked: the others stop rather than wait for its file.
    failed: bool,
}

impl<T> Plan<T> {
    fn new(main: &str) -> Plan<T> {
        let mut st = PlanState {
            paths: Vec::new(),
            index: FastMap::new(),
            next_parse: 0,
            next_number: 0,
            waiting: FastMap::new(),
            busy: 0,
            idle: 0,
            done: Vec::new(),
            failed: false,
        };
        st.add(main, Vec::new());
        Plan {
            state: Mutex::new(st),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlanState<T>> {
        medic_thread::lock(&self.state)
    }

    /// One thread's loop: parse the next file found, number what can be, repeat until every
    /// file is parsed and numbered. Returns the buffers of the thread's JSON arena, `slot`.
    fn work(
        &self,
        slot: usize,
        job: &Job<'_>,
        each: &(impl Fn(FileId, &mut ConfigFile, Option<WrittenBody>) -> T + Sync),
    ) -> Vec<String> {
        // Tells the other threads to stop waiting if this one panics.
        struct Failed<'p, T>(&'p Plan<T>);
        impl<T> Drop for Failed<'_, T> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.lock().failed = true;
                    self.0.changed.notify_all();
                }
            }
        }
        let _failed = Failed(self);
        let mut scratch = Scratch {
            opened: OpenCache::default(),
            bytes: Vec::new(),
            tokens: Lexemes::default(),
            arena: JsonArena::new(slot),
            stack: Vec::new(),
        };
        let mut st = self.lock();
        // Whether this thread has polled for work since it last found some.
        let mut polled = false;
        loop {
            if st.failed {
                return Vec::new();
            }
            if st.next_parse < st.paths.len() {
                polled = false;
                let id = st.next_parse;
                st.next_parse += 1;
                st.busy += 1;
                let (path, ctx) = st.paths[id].clone();
                drop(st);
                let parsed = job.parse(id, &path, &ctx, &mut scratch);
                st = self.lock();
                st.busy -= 1;
                st.waiting.insert(id, parsed);
                let numbered = st.number();
                // New files to parse, or the last one numbered.
                if st.idle > 0 {
                    self.changed.notify_all();
                }
                drop(st);
                for (id, mut file, ids, mut json) in numbered {
                    let mut includes = Vec::new();
                    if !ids.is_empty() {
                        number_includes(&mut file.parsed, &ids, &mut includes);
                        if let Some(body) = json.as_mut() {
                            body.number(&ids);
                        }
                    }
                    let made = each(id, &mut file, json);
                    self.lock().done[id] = Some((file, made, includes));
                }
                st = self.lock();
            } else if st.busy == 0 {
                // Every file found is parsed and numbered: nothing can add more.
                return scratch.arena.chunks;
            } else if !polled {
                // Polled before sleeping: the other thread's file is usually done within
                // microseconds, and a sleeping thread is woken late ([`medic_thread::POLL_WAIT`]).
                drop(st);
                medic_thread::poll(|| {
                    let st = self.lock();
                    st.failed || st.next_parse < st.paths.len() || st.busy == 0
                });
                polled = true;
                st = self.lock();
            } else {
                st.idle += 1;
                st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
                st.idle -= 1;
                polled = false;
            }
        }
    }
}

impl<T> PlanState<T> {
    fn add(&mut self, path: &str, ctx: Vec<String>) -> FileId {
        if let Some(&id) = self.index.get(path) {
            return id;
        }
        let id = self.paths.len();
        self.paths.push((path.to_owned(), ctx));
        self.index.insert(path.to_owned(), id);
        self.done.push(None);
        id
    }

    /// Numbers the files named by the parsed files that have no file before them left to
    /// parse, in file order, and returns those files with the ids of the files they name
    /// (for [`number_includes`], outside the lock).
    fn number(&mut self) -> Vec<Numbered> {
        let mut numbered = Vec::new();
        while let Some(Parsed { file, named, json }) = self.waiting.remove(&self.next_number) {
            let ids = named
                .into_iter()
                .map(|(path, ctx)| self.add(&path, ctx))
                .collect();
            numbered.push((self.next_number, file, ids, json));
            self.next_number += 1;
        }
        numbered
    }
}

/// Turns the local indices in the include directives of `block` into ids, and lists them in
/// the order of the tree in `includes`.
fn number_includes(block: &mut [Directive], ids: &[FileId], includes: &mut Vec<FileId>) {
    for d in block {
        if let Some(e) = d.extra.as_mut() {
            for i in &mut e.includes {
                *i = ids[*i];
                includes.push(*i);
            }
        }
        if let Some(b) = d.block.as_mut() {
            number_includes(b, ids, includes);
        }
    }
}

/// Why a file's token stream ended early.
enum Stop {
    /// The stream ran out in the middle of a directive.
    EofInDirective,
    Fatal(LexError),
}

struct FileParser<'a, 'j, S> {
    job: &'a Job<'j>,
    opened: &'a mut OpenCache,
    /// The files this file's includes name, in order (see [`Parsed`]), each once...
    named: Vec<(String, Vec<String>)>,
    /// ...found by path: a file includes the same snippet from each of its servers.
    named_index: FastMap<String, usize>,
    path: &'a str,
    /// The file's text, and its tokens...
    src: &'a str,
    lexemes: &'a Lexemes,
    /// ...read one after the other.
    toks: std::slice::Iter<'a, Lexeme>,
    /// The line of the last token read.
    last_line: u32,
    lex_error: Option<&'a LexError>,
    errors: Vec<ConfigError>,
    depth: u32,
    /// The end of the last token read: after a block, its `}`, where the block's span ends.
    last_end: usize,
    /// Where the directives go.
    sink: S,
    /// The arguments of the directive being read: one buffer, reused.
    args: Vec<&'a str>,
}

/// Where a file's parse puts its directives, in the order they are read: a tree
/// ([`TreeSink`]), or crossplane's JSON straight away ([`JsonBody`], for `config parse`).
trait Sink {
    /// A directive without a block.
    fn directive(&mut self, d: Parts<'_>, args: &[&str]);
    /// A directive with a block: the block's directives follow, then [`Sink::close`].
    fn open(&mut self, d: Parts<'_>, args: &[&str]);
    /// The end of the block opened last; `end` is where its `}` (or the stream) ended.
    fn close(&mut self, end: usize);
    fn comment(&mut self, text: &str, line: u32, span: Range<usize>);
}

/// A directive but its arguments.
struct Parts<'a> {
    name: &'a str,
    /// The directive as crossplane's table has it, when it does: its [`Name`] is shared.
    known: Option<&'static Known>,
    line: u32,
    span: Range<usize>,
    /// Kept only when asked ([`Options::spans`]).
    arg_spans: Vec<Range<usize>>,
    /// Local indices of the files an `include` names ([`Parsed::named`]).
    includes: Option<Vec<usize>>,
}

/// Builds the tree.
struct TreeSink {
    /// [`Directive::file`](field@Directive::file).
    file: u32,
    /// The directives of the blocks being read, innermost last: a block is moved out of it
    /// once complete, into a `Vec` allocated once at its final size (growing one `Vec` per
    /// block left a third of the tree's memory unused).
    stack: Vec<Directive>,
    /// The directives whose blocks are being read, with where their blocks start in `stack`.
    open: Vec<(Directive, usize)>,
}

impl TreeSink {
    fn make(&self, d: Parts<'_>, args: &[&str]) -> Directive {
        let mut made = Directive {
            name: d
                .known
                .map_or_else(|| Name::from(d.name), |k| k.name.clone()),
            args: args.iter().map(|a| Text::new(a)).collect(),
            line: d.line,
            file: self.file,
            span: Directive::offset(d.span.start)..Directive::offset(d.span.end),
            ..Directive::default()
        };
        if !d.arg_spans.is_empty() {
            made.extra_mut().arg_spans = d.arg_spans.into();
        }
        if let Some(includes) = d.includes {
            made.extra_mut().includes = includes.into();
        }
        made
    }
}

impl Sink for TreeSink {
    fn directive(&mut self, d: Parts<'_>, args: &[&str]) {
        let d = self.make(d, args);
        self.stack.push(d);
    }

    fn open(&mut self, d: Parts<'_>, args: &[&str]) {
        let d = self.make(d, args);
        self.open.push((d, self.stack.len()));
    }

    fn close(&mut self, end: usize) {
        if let Some((mut d, base)) = self.open.pop() {
            d.block = Some(self.stack.drain(base..).collect());
            d.span.end = Directive::offset(end);
            self.stack.push(d);
        }
    }

    fn comment(&mut self, text: &str, line: u32, span: Range<usize>) {
        self.stack.push(comment(text, line, self.file, span));
    }
}

impl Sink for JsonBody {
    fn directive(&mut self, d: Parts<'_>, args: &[&str]) {
        JsonBody::directive(self, d.name, d.line, args, d.includes, false);
    }

    fn open(&mut self, d: Parts<'_>, args: &[&str]) {
        JsonBody::directive(self, d.name, d.line, args, d.includes, true);
    }

    fn close(&mut self, _end: usize) {
        JsonBody::close(self);
    }

    fn comment(&mut self, text: &str, line: u32, _span: Range<usize>) {
        JsonBody::comment(self, text, line);
    }
}

impl<'a, S: Sink> FileParser<'a, '_, S> {
    /// The text of a token of this file.
    fn text(&self, t: &Lexeme) -> &'a str {
        self.lexemes.text(self.src, t)
    }

    /// The next token; `Err(None)` at a clean end of the stream.
    fn next(&mut self) -> Result<&'a Lexeme, Option<Stop>> {
        match self.toks.next() {
            Some(t) => {
                self.last_end = t.span.end;
                self.last_line = t.line;
                Ok(t)
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

    /// crossplane's `_parse`: the directives of one block, up to its `}`, into the sink.
    fn block(&mut self, ctx: &[String], consume: bool) -> Option<Stop> {
        self.depth += 1;
        let stop = self.block_inner(ctx, consume);
        self.depth -= 1;
        stop
    }

    /// A block nested deeper than this is an error: the recursion (ours, and nginx's
    /// `ngx_conf_parse()`) must not exhaust the stack. Real configs nest less than 10 deep.
    const MAX_DEPTH: u32 = 200;

    fn block_inner(&mut self, ctx: &[String], consume: bool) -> Option<Stop> {
        if self.depth > Self::MAX_DEPTH {
            let line = self.last_line;
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
            if tok.is_punct(b'}') {
                break;
            }
            if consume {
                if tok.is_punct(b'{') {
                    if let Some(stop) = self.block(ctx, true) {
                        return Some(stop);
                    }
                }
                continue;
            }
            let name = self.text(tok);
            if !tok.quoted && name.starts_with('#') {
                if self.job.opts.comments {
                    self.sink.comment(&name[1..], tok.line, tok.span.clone());
                }
                continue;
            }

            let mut args = std::mem::take(&mut self.args);
            args.clear();
            // Kept only when asked (`Options::spans`: the editor): a span per argument of every
            // directive is a sixth of a big config's parsed size.
            let spans_on = self.job.opts.spans;
            let mut arg_spans = Vec::new();
            let mut last_arg_end = None;
            let mut comments_in_args = Vec::new();
            let term = loop {
                let t = match self.next() {
                    Ok(t) => t,
                    Err(None) => return Some(Stop::EofInDirective),
                    Err(stop) => return stop,
                };
                if t.punct != 0 {
                    break t;
                }
                let text = self.text(t);
                if !t.quoted && text.starts_with('#') {
                    comments_in_args.push((&text[1..], t.span.clone()));
                } else {
                    args.push(text);
                    last_arg_end = Some(t.span.end);
                    if spans_on {
                        arg_spans.push((t.span.clone(), t.quoted));
                    }
                }
            };
            if name == "if" {
                prepare_if_args(&mut args, &mut arg_spans);
            }
            let opts = self.job.opts;
            let known = known(name);
            if let Err(rej) = analyze_known(
                name,
                known,
                &args,
                self.text(term),
                ctx_mask,
                opts.check_ctx,
                opts.check_args,
            ) {
                let not_terminated = rej.not_terminated();
                self.error(tok.line, rej.message, rej.kind);
                if not_terminated {
                    if term.is_punct(b'}') {
                        break;
                    }
                    if let Some(stop) = self.block(ctx, true) {
                        return Some(stop);
                    }
                }
                continue;
            }

            let includes = if !opts.single_file && name == "include" {
                self.include(&args, tok.line, ctx)
            } else {
                None
            };
            let mut d = Parts {
                name,
                known,
                line: tok.line,
                span: tok.span.start..term.span.end,
                arg_spans: if spans_on {
                    arg_spans.iter().map(|(s, _)| s.clone()).collect()
                } else {
                    Vec::new()
                },
                includes,
            };
            let line = d.line;
            let mut closed_by_brace = false;
            if term.is_punct(b'{') {
                let inner = enter_block(ctx, d.name);
                self.sink.open(d, &args);
                self.args = args;
                let stop = self.block(&inner, false);
                self.sink.close(self.last_end);
                if stop.is_some() {
                    return stop;
                }
            } else {
                if term.is_punct(b'}') {
                    // `foo bar }`: nginx's ngx_conf_read_token() stops at `}` with words
                    // pending. The `}` is the enclosing block's, not this directive's.
                    d.span.end = d
                        .arg_spans
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
                self.sink.directive(d, &args);
                self.args = args;
            }
            for (c, span) in comments_in_args {
                self.sink.comment(c, line, span);
            }
            if closed_by_brace {
                break;
            }
        }
        None
    }

    /// Finds the files an `include` names: their local indices ([`Parsed::named`]), or `None`
    /// when it has no argument.
    fn include(&mut self, args: &[&str], line: u32, ctx: &[String]) -> Option<Vec<usize>> {
        let Some(arg) = args.first() else {
            // crossplane raises IndexError here (an `include;` where it checks nothing).
            let msg = "invalid number of arguments in \"include\" directive".to_owned();
            self.error(line, msg, ConfigErrorKind::Args);
            return None;
        };
        let pattern = if arg.starts_with('/') {
            arg.to_string()
        } else {
            py_join(self.job.config_dir, arg)
        };
        let names = if has_magic(&pattern) {
            // nginx globs too (ngx_open_glob()); a pattern matching nothing is fine.
            let mut g = glob(self.job.fs, &pattern);
            g.sort();
            g
        } else {
            // Opened once per path: a config includes the same snippet from every server.
            let known = self.opened.contains(&pattern);
            match if known {
                Ok(())
            } else {
                self.job.fs.check_open(&pattern)
            } {
                Ok(()) => {
                    self.opened.insert(pattern.clone());
                    vec![pattern]
                }
                Err(e) => {
                    let msg = self.job.open_error(&pattern, &e);
                    self.error(line, msg, ConfigErrorKind::Include);
                    vec![]
                }
            }
        };
        let mut local = Vec::with_capacity(names.len());
        for name in names {
            // A path named again keeps its first context, as numbering would.
            let i = match self.named_index.get(&name) {
                Some(&i) => i,
                None => {
                    let i = self.named.len();
                    self.named_index.insert(name.clone(), i);
                    self.named.push((name, ctx.to_vec()));
                    i
                }
            };
            local.push(i);
        }
        Some(local)
    }
}

fn comment(text: &str, line: u32, file: u32, span: Range<usize>) -> Directive {
    Directive {
        name: arcstr::literal!("#"),
        line,
        file,
        span: Directive::offset(span.start)..Directive::offset(span.end),
        extra: Some(Box::new(Extra {
            comment: Some(text.into()),
            ..Extra::default()
        })),
        ..Directive::default()
    }
}

/// `_prepare_if_args`: strips the parentheses of `if ( ... )`. `spans` (with whether each
/// argument was quoted) follow: a bare word's text is its source, so the span of what is left
/// is the old one less the bytes cut; a quoted argument keeps its whole span, quotes and all,
/// as no byte range holds its text without them.
fn prepare_if_args(args: &mut Vec<&str>, spans: &mut Vec<(Range<usize>, bool)>) {
    let (Some(first), Some(last)) = (args.first(), args.last()) else {
        return;
    };
    if !(first.starts_with('(') && last.ends_with(')')) {
        return;
    }
    let is_space = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    let len0 = args[0].len();
    args[0] = args[0][1..].trim_start_matches(is_space);
    if let Some((s, false)) = spans.first_mut() {
        s.start += len0 - args[0].len();
    }
    let n = args.len() - 1;
    let l = &args[n];
    let len_n = l.len();
    args[n] = l[..l.len() - 1].trim_end_matches(is_space);
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
///
/// `includes[f]` lists what file `f`'s include directives pulled in, in the order of its tree:
/// the depth-first walk follows those lists, and only a file with an edge to cut has its tree
/// walked again (walking every tree was a tenth of reading a 500-file config, all of it after
/// the parse threads had finished).
fn break_cycles(config: &mut Config, includes: &[Vec<FileId>]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    /// The edges to cut: file, and the positions in its list of the edges that close a cycle.
    type Cuts = Vec<(FileId, Vec<usize>)>;
    fn visit(includes: &[Vec<FileId>], mark: &mut [Mark], f: FileId, depth: u32, cuts: &mut Cuts) {
        if depth > 256 {
            return;
        }
        mark[f] = Mark::Open;
        let mut closing = Vec::new();
        for (k, &inc) in includes
            .get(f)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .enumerate()
        {
            match mark.get(inc).copied() {
                Some(Mark::Open) => closing.push(k),
                Some(Mark::New) => visit(includes, mark, inc, depth + 1, cuts),
                _ => {}
            }
        }
        if !closing.is_empty() {
            cuts.push((f, closing));
        }
        mark[f] = Mark::Done;
    }
    /// Cuts the edges at `closing` (positions among the block's include edges, counted by
    /// `seen`), with an error for each at its directive.
    fn cut(
        block: &mut [Directive],
        closing: &[usize],
        seen: &mut usize,
        paths: &[std::path::PathBuf],
        file: &std::path::Path,
        errors: &mut Vec<ConfigError>,
    ) {
        for d in block.iter_mut() {
            if let Some(e) = d.extra.as_mut() {
                let mut keep = ThinVec::with_capacity(e.includes.len());
                for &inc in &e.includes {
                    if closing.contains(seen) {
                        errors.push(ConfigError {
                            file: file.to_path_buf(),
                            line: Some(d.line),
                            message: format!(
                                "include cycle: \"{}\" is already being included",
                                paths[inc].display()
                            ),
                            kind: ConfigErrorKind::Include,
                        });
                    } else {
                        keep.push(inc);
                    }
                    *seen += 1;
                }
                e.includes = keep;
            }
            if let Some(b) = d.block.as_mut() {
                cut(b, closing, seen, paths, file, errors);
            }
        }
    }
    let n = config.files.len();
    if n == 0 {
        return;
    }
    let mut mark = vec![Mark::New; n];
    let mut cuts = Cuts::new();
    visit(includes, &mut mark, 0, 0, &mut cuts);
    let paths: Vec<std::path::PathBuf> = if cuts.is_empty() {
        Vec::new()
    } else {
        config.files.iter().map(|f| f.path.clone()).collect()
    };
    for (f, closing) in cuts {
        let file = &mut config.files[f];
        let mut errors = Vec::new();
        cut(
            &mut file.parsed,
            &closing,
            &mut 0,
            &paths,
            &file.path,
            &mut errors,
        );
        file.errors.extend(errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{to_json, MemFs};

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

    /// The names crossplane's table knows are one shared, uncounted string per process, in
    /// checked contexts and others (inside `map`) alike; other names are kept as written.
    #[test]
    fn known_names_are_shared() {
        let c = parse_bytes(
            "n.conf",
            b"http {\n  map $a $b { listen 1; my.host 2; }\n  server { listen 80; more_set_headers x; }\n}\n",
            &Options::default(),
        );
        let f = &c.files[0];
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        let http = f.parsed[0].block.as_ref().unwrap();
        let (map, server) = (
            http[0].block.as_ref().unwrap(),
            http[1].block.as_ref().unwrap(),
        );
        assert_eq!(names(map), ["listen", "my.host"]);
        assert_eq!(names(server), ["listen", "more_set_headers"]);
        assert!(Name::ptr_eq(&map[0].name, &server[0].name));
        assert!(Name::is_static(&server[0].name) && Name::is_static(&f.parsed[0].name));
        assert!(!Name::is_static(&map[1].name) && !Name::is_static(&server[1].name));
        let again = parse_bytes("m.conf", b"listen 80;", &Options::syntax_only());
        assert!(Name::ptr_eq(
            &again.files[0].parsed[0].name,
            &server[0].name
        ));
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
        assert_eq!(text(&f.parsed[0].span()), &src[..src.find(" #").unwrap()]);
        let server = &f.parsed[0].block.as_ref().unwrap()[0];
        assert_eq!(text(&server.span()), "server { listen 80 \"x y\"; }");
        let listen = &server.block.as_ref().unwrap()[0];
        assert_eq!(text(&listen.span()), "listen 80 \"x y\";");
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
        let mut a = vec!["($a", "=", "b)"];
        let mut s = vec![(0..3, false), (4..5, false), (6..8, false)];
        prepare_if_args(&mut a, &mut s);
        assert_eq!(a, ["$a", "=", "b"]);
        assert_eq!(s, [(1..3, false), (4..5, false), (6..7, false)]);
        let mut a = vec!["(", "$a", ")"];
        let mut s = vec![(0..1, false), (2..4, false), (5..6, false)];
        prepare_if_args(&mut a, &mut s);
        assert_eq!(a, ["$a"]);
        assert_eq!(s, [(2..4, false)]);
        let mut a = vec!["()"];
        let mut s = vec![(0..2, false)];
        prepare_if_args(&mut a, &mut s);
        assert!(a.is_empty() && s.is_empty());
        // One argument: both ends cut from the same span.
        let mut a = vec!["( $a )"];
        let mut s = vec![(10..16, false)];
        prepare_if_args(&mut a, &mut s);
        assert_eq!((a, s), (vec!["$a"], vec![(12..14, false)]));
    }

    /// The compact JSON `config parse` prints for `/c/nginx.conf`, written while parsing on
    /// `threads` threads.
    fn json_while_parsing(threads: usize, fs: &dyn FileSystem, opts: &Options) -> String {
        let (_, payload) =
            parse_to_json_on(threads, fs, "/c/nginx.conf", opts, JsonStyle::default());
        let mut out = Vec::new();
        payload.write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Files whose JSON fills several of a thread's arena buffers, and crosses from one to the
    /// next mid-file, with include holes on both sides of each crossing: the JSON written while
    /// parsing is the tree's, on one thread and on two.
    #[test]
    fn json_across_arena_buffers_is_the_trees() {
        let mut fs = MemFs::default();
        let mut main = String::from("events {}\nhttp {\n");
        for f in 0..6 {
            main.push_str(&format!("include /c/big{f}.conf;\n"));
            let mut big = String::new();
            // About 400 kB of JSON a file: three files fill a buffer.
            for i in 0..4000 {
                big.push_str(&format!(
                    "server {{ listen {i}; server_name s{i}.example \"q\\\"{i}\"; }}\n"
                ));
                if i % 700 == f {
                    big.push_str(&format!("include /c/snip{}.conf;\n", i % 3));
                }
            }
            fs.insert(format!("/c/big{f}.conf"), big);
        }
        main.push_str("}\n");
        fs.insert("/c/nginx.conf", main);
        for k in 0..3 {
            fs.insert(format!("/c/snip{k}.conf"), format!("root /srv/{k};\n"));
        }
        let opts = Options::default();
        let tree_json = to_json(
            &parse_with(&fs, "/c/nginx.conf", &opts),
            JsonStyle::default(),
        );
        assert!(
            tree_json.len() > 2 * JsonArena::CHUNK,
            "{}",
            tree_json.len()
        );
        for threads in [1, 2] {
            assert!(
                json_while_parsing(threads, &fs, &opts) == tree_json,
                "{threads} threads: the JSON differs"
            );
        }
    }

    /// A file system whose reads of some files take a while, so that the files after them
    /// are parsed first and wait to be numbered.
    struct SlowFs {
        fs: MemFs,
        slow: Vec<&'static str>,
    }

    impl FileSystem for SlowFs {
        fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
            if self.slow.iter().any(|s| path.ends_with(s)) {
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
            self.fs.read(path)
        }
        fn check_open(&self, path: &str) -> std::io::Result<()> {
            self.fs.check_open(path)
        }
        fn exists(&self, path: &str) -> bool {
            self.fs.exists(path)
        }
        fn is_dir(&self, path: &str) -> bool {
            self.fs.is_dir(path)
        }
        fn list_dir(&self, path: &str) -> std::io::Result<Vec<String>> {
            self.fs.list_dir(path)
        }
    }

    #[test]
    fn files_are_numbered_in_include_order_whatever_thread_parses_them() {
        let mut fs = MemFs::default();
        fs.insert(
            "/c/nginx.conf",
            "events {}\nhttp {\n include sites/*.conf;\n include late.conf;\n}\n",
        );
        // a.conf is slow: b.conf and c.conf are parsed before it and name files of their own,
        // which must still be numbered after the ones a.conf names.
        fs.insert(
            "/c/sites/a.conf",
            "server { include snip/a1.conf; include snip/shared.conf; }\n",
        );
        fs.insert(
            "/c/sites/b.conf",
            "server { include snip/shared.conf; include snip/b1.conf; location / { include snip/b2.conf; } }\n",
        );
        fs.insert(
            "/c/sites/c.conf",
            "server { include snip/*.conf; include missing.conf; include sites/a.conf; }\n",
        );
        fs.insert("/c/snip/a1.conf", "include snip/deep.conf;\n");
        fs.insert("/c/snip/shared.conf", "proxy_read_timeout 5s;\n");
        fs.insert("/c/snip/b1.conf", "listen 80;\nserver_name b;\n");
        fs.insert("/c/snip/b2.conf", "proxy_pass http://x;\n");
        fs.insert("/c/snip/deep.conf", "gzip on;\n");
        fs.insert("/c/late.conf", "server { listen 81 }\n");
        let slow = SlowFs {
            fs,
            slow: vec!["/sites/a.conf", "/snip/a1.conf"],
        };
        let names = |c: &Config| -> Vec<String> {
            c.files
                .iter()
                .map(|f| f.path.to_string_lossy().replace("/c/", ""))
                .collect()
        };
        for opts in [Options::default(), Options::nginx()] {
            let (one, made1, _) = parse_on(1, &slow, "/c/nginx.conf", &opts, None, |id, f, _| {
                (id, f.parsed.len())
            });
            let (two, made2, _) = parse_on(2, &slow, "/c/nginx.conf", &opts, None, |id, f, _| {
                (id, f.parsed.len())
            });
            // The JSON written as the files are parsed, on one thread and on two, is the
            // JSON of the tree: the include ids filled in right whatever finished first.
            let tree_json = to_json(&one, JsonStyle::default());
            if opts.flavor == Flavor::Crossplane {
                for threads in [1, 2] {
                    assert_eq!(
                        json_while_parsing(threads, &slow, &opts),
                        tree_json,
                        "{threads}"
                    );
                }
            }
            assert_eq!(
                names(&one),
                [
                    "nginx.conf",
                    "sites/a.conf",
                    "sites/b.conf",
                    "sites/c.conf",
                    "late.conf",
                    "snip/a1.conf",
                    "snip/shared.conf",
                    "snip/b1.conf",
                    "snip/b2.conf",
                    "snip/deep.conf",
                ]
            );
            assert_eq!(format!("{one:?}"), format!("{two:?}"));
            assert_eq!(made1, made2);
            assert_eq!(
                made1.iter().map(|m| m.0).collect::<Vec<_>>(),
                (0..10).collect::<Vec<_>>()
            );
            let c_server = &two.files[3].parsed[0].block.as_ref().unwrap();
            // snip/*.conf sorted: a1, b1, b2, deep, shared; then nothing for missing.conf.
            assert_eq!(c_server[0].includes(), [5, 7, 8, 9, 6]);
            assert_eq!(c_server[2].includes(), [1]);
            // The late file's syntax error is its own.
            assert_eq!(
                two.files[4].errors[0].message,
                "directive \"listen\" is not terminated by \";\""
            );
        }
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

    /// The walk the include lists replaced: every tree, in full. Kept as the reference.
    fn break_cycles_by_walking(config: &mut Config) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
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
                let mut keep = Vec::new();
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
                    e.includes = keep.into();
                }
                if let Some(b) = d.block.as_mut() {
                    walk(config, mark, b, f, depth, errors);
                }
            }
        }
        if !config.files.is_empty() {
            let mut mark = vec![Mark::New; config.files.len()];
            visit(config, &mut mark, 0, 0);
        }
    }

    /// Random include graphs (cycles through one file or many, a file included twice by one
    /// directive, includes nested in blocks, chains deeper than the walk's limit): the lists
    /// cut the same edges, with the same errors, as walking every tree.
    #[test]
    fn cycles_cut_from_the_include_lists_as_by_walking_the_trees() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let include = |line: u32, to: Vec<FileId>| Directive {
            name: "include".into(),
            args: crate::config::Args::One("x.conf".into()),
            line,
            extra: Some(Box::new(crate::config::ast::Extra {
                includes: to.into(),
                ..Default::default()
            })),
            ..Directive::default()
        };
        let mut cut_some = 0;
        for round in 0..300 {
            let n = if round % 50 == 0 { 300 } else { 1 + next(8) };
            let files = (0..n)
                .map(|f| {
                    let mut parsed = Vec::new();
                    for k in 0..next(4) {
                        let to: Vec<FileId> = (0..1 + next(3)).map(|_| next(n)).collect();
                        let d = include(k as u32 + 1, to);
                        if next(2) == 0 {
                            parsed.push(Directive {
                                name: "server".into(),
                                line: k as u32 + 1,
                                block: Some(thin_vec::thin_vec![
                                    include(k as u32 + 2, vec![next(n)]),
                                    d
                                ]),
                                ..Directive::default()
                            });
                        } else {
                            parsed.push(d);
                        }
                    }
                    // A chain through every file, deeper than the walk goes.
                    if n == 300 && f + 1 < n {
                        parsed.push(include(99, vec![f + 1]));
                    }
                    ConfigFile {
                        path: format!("/c/{f}.conf").into(),
                        parsed,
                        ..ConfigFile::default()
                    }
                })
                .collect();
            let config = Config { files };
            let mut walked = config.clone();
            break_cycles_by_walking(&mut walked);
            let mut listed = config.clone();
            let identity: Vec<FileId> = (0..n).collect();
            let includes: Vec<Vec<FileId>> = listed
                .files
                .iter_mut()
                .map(|f| {
                    let mut list = Vec::new();
                    number_includes(&mut f.parsed, &identity, &mut list);
                    list
                })
                .collect();
            break_cycles(&mut listed, &includes);
            assert_eq!(listed, walked, "round {round}");
            cut_some += usize::from(listed.errors().next().is_some());
        }
        assert!(cut_some > 100, "{cut_some} rounds with a cycle");
    }
}
