//! The parsed configuration: files of directives, as nginx (and crossplane) see them.
//!
//! Strings are UTF-8 with invalid bytes replaced by U+FFFD, as crossplane reads files
//! (`errors='replace'`), so the crossplane JSON is byte-identical; the model works on the same
//! strings. Arguments are given unquoted, with escapes as nginx leaves them (crossplane's form).

use std::ops::Range;
use std::path::PathBuf;

/// The directives of a block: one pointer, its length and capacity beside the elements.
pub use thin_vec::ThinVec;

/// Index of a file in [`Config::files`].
pub type FileId = usize;

/// Text of a directive name or argument: most are under 24 bytes and live inline, so a tree
/// of 100,000s of arguments is not 100,000s of heap allocations.
pub use compact_str::CompactString as Text;

/// A directive's name: one pointer, where a [`Text`] took three. The names crossplane's table
/// knows are made once per process and shared by every directive that has them, without a
/// count to keep ([`arcstr::ArcStr::leak`]); other names (a `map`'s keys, third-party modules'
/// directives) are allocated each.
pub type Name = arcstr::ArcStr;

/// One directive: `name args... ;` or `name args... { block }`.
///
/// Kept small (a big config holds 100,000s): what only a few directives have lives in
/// [`Directive::extra`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Directive {
    pub name: Name,
    /// Read as a slice (`&d.args[..]`, `d.args.first()`); see [`Args`] for how it is kept.
    pub args: Args,
    /// 1-based line of the directive's name.
    pub line: u32,
    /// The file it is written in: its [`FileId`] in 32 bits, read through
    /// [`Directive::file_id`] (with the span's, 16 bytes less in each of 100,000s).
    pub file: u32,
    /// `Some` for block directives (`http`, `server`, `location`, `upstream`, `if`, `map`, ...),
    /// possibly empty; `None` for simple ones. `*_by_lua_block` bodies are one argument instead.
    pub block: Option<ThinVec<Directive>>,
    /// Bytes of the file's decoded text (see [`super::lexer::decode`]) from the first byte of
    /// the name to the end of its `;`, or of its block's `}` (a Lua block's too). For a comment,
    /// the comment. Not in the crossplane JSON; `config::edit` replaces text by these. Read
    /// through [`Directive::span`]; offsets past 4 GiB are kept as `u32::MAX`, and the editor
    /// refuses such files.
    pub span: Range<u32>,
    /// `includes`, `comment` and `arg_spans`, when there is one: read them through
    /// [`Directive::includes`], [`Directive::comment`], [`Directive::arg_spans`].
    pub extra: Option<Box<Extra>>,
}

/// The arguments of a [`Directive`]: a slice of [`Text`] to read.
///
/// Most directives have one argument (60% of a generated 5,000-server config's 125,000): it
/// is kept inline, where a boxed slice was an allocation of its own for each. More are a boxed
/// slice, not a `Vec`: the tree is never grown after the parse, and a capacity word in each was
/// memory for nothing. Either way this is as big as one [`Text`].
#[derive(Clone, PartialEq, Eq)]
pub enum Args {
    One(Text),
    Many(Box<[Text]>),
}

impl Default for Args {
    fn default() -> Args {
        Args::Many(Box::default())
    }
}

impl std::ops::Deref for Args {
    type Target = [Text];
    fn deref(&self) -> &[Text] {
        match self {
            Args::One(one) => std::slice::from_ref(one),
            Args::Many(many) => many,
        }
    }
}

impl std::ops::DerefMut for Args {
    fn deref_mut(&mut self) -> &mut [Text] {
        match self {
            Args::One(one) => std::slice::from_mut(one),
            Args::Many(many) => many,
        }
    }
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<Text> for Args {
    fn from_iter<I: IntoIterator<Item = Text>>(iter: I) -> Args {
        let mut iter = iter.into_iter();
        let Some(first) = iter.next() else {
            return Args::default();
        };
        match iter.next() {
            None => Args::One(first),
            Some(second) => {
                let mut many = Vec::with_capacity(iter.size_hint().0 + 2);
                many.push(first);
                many.push(second);
                many.extend(iter);
                Args::Many(many.into_boxed_slice())
            }
        }
    }
}

impl From<Vec<Text>> for Args {
    fn from(mut args: Vec<Text>) -> Args {
        match args.len() {
            1 => Args::One(args.pop().unwrap_or_default()),
            _ => Args::Many(args.into_boxed_slice()),
        }
    }
}

impl<'a> IntoIterator for &'a Args {
    type Item = &'a Text;
    type IntoIter = std::slice::Iter<'a, Text>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The parts of a [`Directive`] that few directives have. Thin: most of them are the
/// `include`s of a big config (10,000 of 125,000 directives), which have only `includes`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Extra {
    /// For `include`: the files it pulled in, in order.
    pub includes: ThinVec<FileId>,
    /// For a `#` comment kept with `--include-comments` (then `name` is `#`).
    pub comment: Option<Box<str>>,
    /// One per argument of [`Directive::args`], quotes included (an `if`'s without the
    /// parentheses its first and last arguments lose); a Lua body's is the text inside its
    /// braces. Empty unless the parse was asked for them (`Options::spans`, the editor's).
    pub arg_spans: ThinVec<Range<usize>>,
}

impl Directive {
    /// The file it is written in.
    pub fn file_id(&self) -> FileId {
        self.file as FileId
    }

    /// See [`Directive::span`](field@Directive::span).
    pub fn span(&self) -> Range<usize> {
        self.span.start as usize..self.span.end as usize
    }

    /// A byte offset as [`Directive::span`](field@Directive::span) keeps it.
    pub fn offset(at: usize) -> u32 {
        u32::try_from(at).unwrap_or(u32::MAX)
    }

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
        match self.files.get(d.file_id()) {
            Some(f) => format!("{}:{}", f.path.display(), d.line),
            None => format!("?:{}", d.line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_as_big_as_one_text_and_read_as_a_slice() {
        assert_eq!(std::mem::size_of::<Args>(), std::mem::size_of::<Text>());
        let none: Args = std::iter::empty().collect();
        let one: Args = [Text::new("a")].into_iter().collect();
        let two: Args = vec![Text::new("a"), Text::new("b")].into();
        assert!(none.is_empty() && none == Args::default());
        assert!(matches!(one, Args::One(_)));
        assert_eq!(&one[..], &[Text::new("a")]);
        assert_eq!(two.join(" "), "a b");
        assert_eq!(format!("{two:?}"), r#"["a", "b"]"#);
        assert_eq!(Args::from(vec![Text::new("a")]), one);
    }
}
