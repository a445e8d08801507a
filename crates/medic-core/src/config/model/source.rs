//! [`Src`]: where a setting is written, kept as a place in the parsed tree and read on demand.
//!
//! A 5,000-server config gives its model 150,000 sources, most of a directive at `http` or
//! `server` level shared by every scope and pass below it; its rules cite a few thousand.
//! Each source used to be made at once (its file, line and re-assembled text, shared through
//! a map keyed by directive): that was 7.5 of `config lint`'s 49 ms, and 5 MiB. Now a source
//! is a reference to the tree its model was built from and the directive's place in its file;
//! the line and text are found when a rule cites it.

use std::sync::Arc;

use medic_parse::config::{Config, Directive};
use serde::Serialize;

/// Where a directive is written: its file, line and text (`proxy_pass http://b;`), read through
/// [`Src::file`], [`Src::line`], [`Src::text`] or all at once with [`Src::cite`].
///
/// Two words: the tree and the directive's place in its file. Cloning it counts a reference
/// to the builder's [`Sources`], never a shared one across threads.
#[derive(Clone)]
pub struct Src {
    sources: Arc<Sources>,
    file: u32,
    /// The directive's span start in its file, or [`BY_LINE`] with its line when the tree has
    /// no spans (made by hand, or offsets past 2 GiB).
    at: u32,
}

/// Set in [`Src::at`] when the rest is a line, not a span start.
const BY_LINE: u32 = 1 << 31;

/// What the sources of one builder share: the parsed tree and its file names. A source made by
/// [`Src::new`] has no tree; its own line and text are kept here instead.
pub struct Sources {
    tree: Option<Arc<Config>>,
    /// File paths by `FileId`, as the model names them.
    files: Vec<Arc<str>>,
    written: Option<(u32, Arc<str>)>,
}

impl Sources {
    /// The sources of a tree: `files` are its files' names, by `FileId`.
    pub(crate) fn of(tree: Arc<Config>, files: Vec<Arc<str>>) -> Arc<Sources> {
        Arc::new(Sources {
            tree: Some(tree),
            files,
            written: None,
        })
    }

    /// The files' names, for another builder of the same tree.
    pub(crate) fn files(&self) -> &[Arc<str>] {
        &self.files
    }

    /// The source of a directive of this tree.
    pub(crate) fn src(self: &Arc<Sources>, d: &Directive) -> Src {
        let at = if d.span.start < d.span.end && d.span.start < BY_LINE {
            d.span.start
        } else {
            BY_LINE | d.line.min(BY_LINE - 1)
        };
        Src {
            sources: Arc::clone(self),
            file: d.file,
            at,
        }
    }
}

/// Where the last directive cited on this thread was: its tree and file, and the index of each
/// block that holds it from the file's top level. Rules cite the passes of a scope, then of the
/// next, in the order of the tree: the next directive is often in the same blocks, whose
/// directives a descent from the top would search again, no longer in the cache (2,900
/// citations of a 5,000-server config took 4 ms, most of it waiting on memory; the trail takes
/// about 0.5 ms off). A hint only: each block is checked to hold the directive before it is
/// entered.
struct Trail {
    place: (*const Config, u32),
    path: Vec<u32>,
}

thread_local! {
    static TRAIL: std::cell::RefCell<Trail> = const {
        std::cell::RefCell::new(Trail {
            place: (std::ptr::null(), 0),
            path: Vec::new(),
        })
    };
}

/// A [`Src`] read out.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Cited<'a> {
    /// The file's path as the parser named it.
    pub file: &'a str,
    /// 1-based line of the directive's name.
    pub line: u32,
    /// The directive re-assembled from its arguments: `proxy_pass http://b;`.
    pub text: String,
}

impl Src {
    /// A source not read from a tree (a test's, a plan's).
    pub fn new(file: Arc<str>, line: u32, text: Arc<str>) -> Src {
        Src {
            sources: Arc::new(Sources {
                tree: None,
                files: vec![file],
                written: Some((line, text)),
            }),
            file: 0,
            at: 0,
        }
    }

    /// The file's path as the parser named it.
    pub fn file(&self) -> &str {
        self.sources
            .files
            .get(self.file as usize)
            .map_or("?", |f| &**f)
    }

    /// [`Src::file`], shared with the tree's list of files rather than copied.
    pub fn shared_file(&self) -> Arc<str> {
        self.sources
            .files
            .get(self.file as usize)
            .map_or_else(|| Arc::from("?"), Arc::clone)
    }

    /// 1-based line of the directive's name (0 if the tree no longer has it).
    pub fn line(&self) -> u32 {
        match (&self.sources.written, self.directive()) {
            (Some((line, _)), _) => *line,
            (None, Some(d)) => d.line,
            (None, None) => 0,
        }
    }

    /// The directive re-assembled from its arguments: `proxy_pass http://b;`.
    pub fn text(&self) -> String {
        match (&self.sources.written, self.directive()) {
            (Some((_, text)), _) => text.to_string(),
            (None, Some(d)) => crate::config::directive_text(d),
            (None, None) => String::new(),
        }
    }

    /// The directive's name: `proxy_pass` of `proxy_pass http://b;`.
    pub fn name(&self) -> &str {
        match (&self.sources.written, self.directive()) {
            (Some((_, text)), _) => text.split_whitespace().next().unwrap_or(""),
            (None, Some(d)) => &d.name,
            (None, None) => "",
        }
    }

    /// File, line and text, the directive found once.
    pub fn cite(&self) -> Cited<'_> {
        let (line, text) = match (&self.sources.written, self.directive()) {
            (Some((line, text)), _) => (*line, text.to_string()),
            (None, Some(d)) => (d.line, crate::config::directive_text(d)),
            (None, None) => (0, String::new()),
        };
        Cited {
            file: self.file(),
            line,
            text,
        }
    }

    /// `FILE:LINE`, the `source` of an evidence item.
    pub fn location(&self) -> String {
        location(self.file(), self.line())
    }

    /// The directive in the tree: found by its span through the blocks that hold it, or, in a
    /// tree without spans, as the first directive of its line.
    fn directive(&self) -> Option<&Directive> {
        let tree = self.sources.tree.as_deref()?;
        let parsed = &tree.files.get(self.file as usize)?.parsed;
        if self.at & BY_LINE != 0 {
            return first(parsed, &|d| d.line == self.at & !BY_LINE);
        }
        let at = self.at;
        let holds = |d: &Directive| d.span.start < at && at < d.span.end;
        let place = (std::ptr::from_ref(tree), self.file);
        let found = TRAIL.with_borrow_mut(|trail| {
            let mut level: &[Directive] = parsed;
            // Down the blocks that held the last directive found, while they hold this one.
            let mut depth = 0;
            if trail.place == place {
                for &i in &trail.path {
                    match level.get(i as usize) {
                        Some(d) if holds(d) => level = d.block.as_deref().unwrap_or_default(),
                        _ => break,
                    }
                    depth += 1;
                }
            }
            trail.place = place;
            trail.path.truncate(depth);
            loop {
                // A file's directives, and a block's, are in the order of their spans, and a
                // block's span holds its directives'.
                let i = level
                    .partition_point(|d| d.span.start <= at)
                    .checked_sub(1)?;
                let d = &level[i];
                if d.span.start == at {
                    return Some(d);
                }
                level = d.block.as_deref().filter(|_| holds(d))?;
                trail.path.push(i as u32);
            }
        });
        if found.is_some() {
            return found;
        }
        // Spans out of order (a tree not made by the parser): every directive, in order.
        first(parsed, &|d| {
            d.span.start == self.at && d.span.start < d.span.end
        })
    }
}

impl Cited<'_> {
    /// `FILE:LINE`, the `source` of an evidence item.
    pub fn location(&self) -> String {
        location(self.file, self.line)
    }
}

fn location(file: &str, line: u32) -> String {
    // Not `format!`: rules cite thousands of directives on a big config, and the formatter's
    // machinery was most of making each citation.
    let line = itoa::Buffer::new().format(line).to_owned();
    let mut s = String::with_capacity(file.len() + 1 + line.len());
    s.push_str(file);
    s.push(':');
    s.push_str(&line);
    s
}

/// The first directive, depth first, that `is` accepts.
fn first<'a>(ds: &'a [Directive], is: &dyn Fn(&Directive) -> bool) -> Option<&'a Directive> {
    ds.iter().find_map(|d| {
        if is(d) {
            return Some(d);
        }
        first(d.block.as_deref()?, is)
    })
}

/// What tells two sources apart: a directive of a tree (by the tree's address and its place
/// in it), or a source written by [`Src::new`] (by what it says).
#[derive(PartialEq, Eq, Hash)]
enum Place<'a> {
    Tree(*const Config, u32, u32),
    Written(&'a str, u32, &'a str),
}

impl Src {
    fn place(&self) -> Place<'_> {
        match (&self.sources.tree, &self.sources.written) {
            (Some(tree), _) => Place::Tree(Arc::as_ptr(tree), self.file, self.at),
            (None, Some((line, text))) => Place::Written(self.file(), *line, text),
            (None, None) => Place::Written(self.file(), 0, ""),
        }
    }
}

/// The same directive of the same tree, whichever builder made the source; written sources
/// are equal when file, line and text are. Neither reads the tree: rules set sources apart
/// by the thousand.
impl PartialEq for Src {
    fn eq(&self, other: &Src) -> bool {
        self.place() == other.place()
    }
}

impl Eq for Src {}

impl std::hash::Hash for Src {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.place().hash(state);
    }
}

impl std::fmt::Debug for Src {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Cited { file, line, text } = self.cite();
        f.debug_struct("Src")
            .field("file", &file)
            .field("line", &line)
            .field("text", &text)
            .finish()
    }
}

impl Serialize for Src {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.cite().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Arc<Config> {
        crate::config::testing::one(text)
    }

    /// Every directive of a parsed file is found again from its source, blocks on one line
    /// and nested blocks included.
    #[test]
    fn every_directive_is_found_by_its_span() {
        let cfg = tree(
            "user www;\nhttp {\n  server { listen 80; location / { proxy_pass http://a; } }\n  \
             server {\n    location /b {\n      if ($x) { return 502; }\n      proxy_pass \
             http://b;\n    }\n  }\n}\n",
        );
        let sources = Sources::of(cfg.clone(), vec![Arc::from("nginx.conf")]);
        fn walk(ds: &[Directive], sources: &Arc<Sources>, n: &mut usize) {
            for d in ds {
                let src = sources.src(d);
                assert_eq!(src.line(), d.line);
                assert_eq!(src.text(), crate::config::directive_text(d));
                assert!(std::ptr::eq(src.directive().unwrap(), d));
                *n += 1;
                walk(d.block.as_deref().unwrap_or_default(), sources, n);
            }
        }
        let mut n = 0;
        walk(&cfg.files[0].parsed, &sources, &mut n);
        assert_eq!(n, 11);
        // In any order: each search starts down the blocks of the one before.
        fn all<'a>(ds: &'a [Directive], out: &mut Vec<&'a Directive>) {
            for d in ds {
                out.push(d);
                all(d.block.as_deref().unwrap_or_default(), out);
            }
        }
        let mut every = Vec::new();
        all(&cfg.files[0].parsed, &mut every);
        let mut order: Vec<usize> = (0..every.len()).rev().collect();
        order.extend((0..every.len()).map(|i| i * 7 % every.len()));
        order.extend([3, 9, 3, 0, 10, 4, 4]);
        for i in order {
            let src = sources.src(every[i]);
            assert!(std::ptr::eq(src.directive().unwrap(), every[i]), "{i}");
        }
        // A directive of another file, then of another tree, with the trail of this one.
        let other = tree("http {\n  server {\n    location / { proxy_pass http://c; }\n  }\n}\n");
        let theirs = Sources::of(other.clone(), vec![Arc::from("other.conf")]);
        let mut in_other = Vec::new();
        all(&other.files[0].parsed, &mut in_other);
        for (mine, their) in every.iter().zip(in_other.iter().rev()) {
            assert!(std::ptr::eq(sources.src(mine).directive().unwrap(), *mine));
            assert!(std::ptr::eq(theirs.src(their).directive().unwrap(), *their));
        }
    }

    /// A tree made by hand has no spans: its sources are found by line.
    #[test]
    fn a_tree_without_spans_is_read_by_line() {
        let d = |name: &str, line: u32, block: Option<Vec<Directive>>| Directive {
            name: name.into(),
            args: vec!["a b".into()].into(),
            line,
            block: block.map(Into::into),
            ..Directive::default()
        };
        let cfg = Arc::new(Config {
            files: vec![medic_parse::config::ConfigFile {
                path: "made.conf".into(),
                parsed: vec![d("http", 1, Some(vec![d("server", 2, None)]))],
                ..Default::default()
            }],
        });
        let sources = Sources::of(cfg.clone(), vec![Arc::from("made.conf")]);
        let server = &cfg.files[0].parsed[0].block.as_ref().unwrap()[0];
        let src = sources.src(server);
        assert_eq!(
            src.cite(),
            Cited {
                file: "made.conf",
                line: 2,
                text: "server \"a b\";".to_string()
            }
        );
        assert_eq!(src.location(), "made.conf:2");
    }

    /// Sources of the same directive are equal whichever builder made them; written ones are
    /// equal when file, line and text are.
    #[test]
    fn sources_compare_by_place() {
        let cfg = tree("http {\n  proxy_read_timeout 5s;\n  server { }\n}\n");
        let files = vec![Arc::from("nginx.conf")];
        let (one, two) = (
            Sources::of(cfg.clone(), files.clone()),
            Sources::of(cfg.clone(), files),
        );
        let http = &cfg.files[0].parsed[0];
        let timeout = &http.block.as_ref().unwrap()[0];
        assert_eq!(one.src(timeout), two.src(timeout));
        assert_ne!(one.src(timeout), two.src(http));
        let set: std::collections::HashSet<Src> = [one.src(timeout), two.src(timeout)].into();
        assert_eq!(set.len(), 1);
        // The same text in another parse of the same file is another directive.
        let again = tree("http {\n  proxy_read_timeout 5s;\n  server { }\n}\n");
        let other = Sources::of(again.clone(), vec![Arc::from("nginx.conf")]);
        let timeout_again = &again.files[0].parsed[0].block.as_ref().unwrap()[0];
        assert_ne!(one.src(timeout), other.src(timeout_again));
        assert_eq!(one.src(timeout).cite(), other.src(timeout_again).cite());
        let written = || {
            Src::new(
                Arc::from("nginx.conf"),
                2,
                Arc::from("proxy_read_timeout 5s;"),
            )
        };
        assert_eq!(written(), written());
        assert_eq!(written().cite(), one.src(timeout).cite());
        assert_eq!(written().name(), "proxy_read_timeout");
        assert_eq!(one.src(timeout).name(), "proxy_read_timeout");
        assert_eq!(
            format!("{:?}", written()),
            "Src { file: \"nginx.conf\", line: 2, text: \"proxy_read_timeout 5s;\" }"
        );
    }

    /// A source whose tree lost the directive (a file index out of range) says so without
    /// panicking.
    #[test]
    fn a_source_not_in_its_tree_is_empty() {
        let cfg = tree("events { }\n");
        let sources = Sources::of(cfg.clone(), vec![Arc::from("nginx.conf")]);
        let mut d = cfg.files[0].parsed[0].clone();
        d.file = 7;
        let src = sources.src(&d);
        assert_eq!(
            (src.file(), src.line(), src.text()),
            ("?", 0, String::new())
        );
    }
}
