//! The parsed configuration: files of directives, as nginx (and crossplane) see them.
//!
//! Strings are UTF-8 with invalid bytes replaced by U+FFFD, as crossplane reads files
//! (`errors='replace'`), so the crossplane JSON is byte-identical; the model works on the same
//! strings. Arguments are given unquoted, with escapes as nginx leaves them (crossplane's form).

use std::ops::Range;
use std::path::PathBuf;

/// Index of a file in [`Config::files`].
pub type FileId = usize;

/// Text of a directive name or argument: most are under 24 bytes and live inline, so a tree
/// of 100,000s of arguments is not 100,000s of heap allocations.
pub use compact_str::CompactString as Text;

/// One directive: `name args... ;` or `name args... { block }`.
///
/// Kept small (a big config holds 100,000s): what only a few directives have lives in
/// [`Directive::extra`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Directive {
    pub name: Text,
    /// A boxed slice, not a `Vec`: the tree is never grown after the parse, and the capacity
    /// word of 100,000s of `Vec`s was memory for nothing.
    pub args: Box<[Text]>,
    /// 1-based line of the directive's name.
    pub line: u32,
    /// The file it is written in.
    pub file: FileId,
    /// `Some` for block directives (`http`, `server`, `location`, `upstream`, `if`, `map`, ...),
    /// possibly empty; `None` for simple ones. `*_by_lua_block` bodies are one argument instead.
    pub block: Option<Box<[Directive]>>,
    /// Bytes of the file's decoded text (see [`super::lexer::decode`]) from the first byte of
    /// the name to the end of its `;`, or of its block's `}` (a Lua block's too). For a comment,
    /// the comment. Not in the crossplane JSON; `config::edit` replaces text by these.
    pub span: Range<usize>,
    /// `includes`, `comment` and `arg_spans`, when there is one: read them through
    /// [`Directive::includes`], [`Directive::comment`], [`Directive::arg_spans`].
    pub extra: Option<Box<Extra>>,
}

/// The parts of a [`Directive`] that few directives have.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Extra {
    /// For `include`: the files it pulled in, in order.
    pub includes: Vec<FileId>,
    /// For a `#` comment kept with `--include-comments` (then `name` is `#`).
    pub comment: Option<String>,
    /// One per argument of [`Directive::args`], quotes included (an `if`'s without the
    /// parentheses its first and last arguments lose); a Lua body's is the text inside its
    /// braces. Empty unless the parse was asked for them (`Options::spans`, the editor's).
    pub arg_spans: Vec<Range<usize>>,
}

impl Directive {
    /// For `include`: the files it pulled in, in order.
    pub fn includes(&self) -> &[FileId] {
        self.extra.as_ref().map_or(&[], |e| &e.includes)
    }

    /// For a `#` comment kept with `--include-comments` (then `name` is `#`).
    pub fn comment(&self) -> Option<&str> {
        self.extra.as_ref()?.comment.as_deref()
    }

    /// The byte span of each argument (see [`Extra::arg_spans`]); empty unless asked for.
    pub fn arg_spans(&self) -> &[Range<usize>] {
        self.extra.as_ref().map_or(&[], |e| &e.arg_spans)
    }

    /// [`Directive::extra`], made when first needed.
    pub fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
}

/// A problem found while reading or checking the config, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// `None` when the position is unknown (crossplane reports some EOF errors so).
    pub line: Option<u32>,
    /// The message without the ` in FILE:LINE` tail; nginx's wording where nginx has one.
    pub message: String,
    /// What went wrong, so a consumer can e.g. ignore context errors of a fragment.
    pub kind: ConfigErrorKind,
}

/// The class of a [`ConfigError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// Tokens that do not form a config: unbalanced braces, end of file inside a directive,
    /// a `*_by_lua_block` without its `{`. nginx stops at the first one, so do we (per file).
    Syntax,
    /// `"X" directive is not allowed here` (crossplane's context table).
    Context,
    /// `invalid number of arguments in "X" directive`, `directive "X" is not terminated by ";"`,
    /// `directive "X" has no opening "{"`, `invalid value "v" in "X" directive, it must be "on" or "off"`.
    Args,
    /// An `include` that could not be opened, or an include cycle.
    Include,
    /// The file itself could not be read.
    Io,
}

impl ConfigError {
    /// Whether crossplane prints this error with its ` in FILE:LINE` tail: its own parser
    /// errors do, Python's `OSError`s (missing includes, unreadable files) do not.
    pub fn crossplane_tail(&self) -> bool {
        !matches!(self.kind, ConfigErrorKind::Include | ConfigErrorKind::Io)
    }
}

/// One file of the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub errors: Vec<ConfigError>,
    pub parsed: Vec<Directive>,
}

/// The whole configuration: the main file first, then every included file in the order first
/// included (crossplane's order).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Config {
    pub files: Vec<ConfigFile>,
}

impl Config {
    /// Every error of every file, in file order.
    pub fn errors(&self) -> impl Iterator<Item = &ConfigError> {
        self.files.iter().flat_map(|f| f.errors.iter())
    }

    /// `PATH:LINE` of a directive, for evidence.
    pub fn location(&self, d: &Directive) -> String {
        match self.files.get(d.file) {
            Some(f) => format!("{}:{}", f.path.display(), d.line),
            None => format!("?:{}", d.line),
        }
    }
}
