//! Where config files come from: the disk, or the sections of an `nginx -T` dump. A small
//! trait keeps the parser free of I/O decisions, and lets tests hide paths (the crossplane
//! references were made with an empty `/etc/nginx`).
//!
//! Paths are strings, joined and globbed the way Python's `os.path` and `glob` do it, since
//! that is how crossplane names the files it prints.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The file operations the parser needs. `Sync`: files are parsed on two threads.
pub trait FileSystem: Sync {
    /// The whole file. A directory is an error (`EISDIR`), as Python's `open()` makes it.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// [`FileSystem::read`] into `buf` (its old content replaced): a parse reuses one buffer
    /// for every file it reads.
    fn read_into(&self, path: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        *buf = self.read(path)?;
        Ok(())
    }
    /// Whether `path` could be opened for reading (crossplane's `open(path).close()` check of a
    /// non-glob include), without reading it.
    fn check_open(&self, path: &str) -> io::Result<()> {
        self.read(path).map(|_| ())
    }
    /// Whether anything is at `path` (Python's `os.path.lexists`).
    fn exists(&self, path: &str) -> bool;
    fn is_dir(&self, path: &str) -> bool;
    /// The names in a directory, hidden ones included, in any order.
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>>;
}

/// The real file system. Relative paths are taken from `cwd` when set (so a caller can parse
/// as if it ran in another directory without `chdir`), else from the process's directory.
#[derive(Clone, Debug, Default)]
pub struct DiskFs {
    pub cwd: Option<PathBuf>,
}

impl DiskFs {
    fn full(&self, path: &str) -> PathBuf {
        match &self.cwd {
            Some(cwd) if !path.starts_with('/') => {
                cwd.join(if path.is_empty() { "." } else { path })
            }
            _ => PathBuf::from(if path.is_empty() { "." } else { path }),
        }
    }
}

impl FileSystem for DiskFs {
    fn check_open(&self, path: &str) -> io::Result<()> {
        let f = std::fs::File::open(self.full(path))?;
        if f.metadata()?.is_dir() {
            return Err(io::Error::from_raw_os_error(21));
        }
        Ok(())
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_into(path, &mut buf)?;
        Ok(buf)
    }

    fn read_into(&self, path: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        use std::io::Read;
        let f = std::fs::File::open(self.full(path))?;
        let meta = f.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::from_raw_os_error(21));
        }
        // Read to the end by hand: `File::read_to_end` asks the size again (`statx`) and the
        // position (`lseek`), and probes the end in small reads: seven system calls a file
        // where five do (a config of 500 files). One byte more than the size, so that the
        // second read finds the end; more if the file grew meanwhile.
        buf.clear();
        buf.resize(
            usize::try_from(meta.len()).unwrap_or(0).saturating_add(1),
            0,
        );
        let mut n = 0;
        loop {
            if n == buf.len() {
                buf.resize(2 * buf.len(), 0);
            }
            match (&f).read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        Ok(())
    }

    fn exists(&self, path: &str) -> bool {
        std::fs::symlink_metadata(self.full(path)).is_ok()
    }

    fn is_dir(&self, path: &str) -> bool {
        self.full(path).is_dir()
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(self.full(path))? {
            names.push(e?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
}

/// Files held in memory (an `nginx -T` dump, a test): absolute or relative paths to contents;
/// directories are implied by the paths.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl MemFs {
    pub fn insert(&mut self, path: impl Into<String>, contents: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), contents.into());
    }

    fn dir_prefix(path: &str) -> String {
        let path = path.strip_prefix("./").unwrap_or(path);
        let path = if path == "." { "" } else { path };
        let p = path.trim_end_matches('/');
        if p.is_empty() && path.starts_with('/') {
            "/".into()
        } else if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        }
    }
}

impl FileSystem for MemFs {
    fn check_open(&self, path: &str) -> io::Result<()> {
        match self.files.contains_key(path) {
            true => Ok(()),
            false => self.read(path).map(|_| ()),
        }
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        match self.files.get(path) {
            Some(b) => Ok(b.clone()),
            None if self.is_dir(path) => Err(io::Error::from_raw_os_error(21)),
            None => Err(io::Error::from_raw_os_error(2)),
        }
    }

    fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.is_dir(path)
    }

    fn is_dir(&self, path: &str) -> bool {
        let pre = Self::dir_prefix(path);
        pre.is_empty() || self.files.keys().any(|k| k.starts_with(&pre))
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let pre = Self::dir_prefix(path);
        let mut names: Vec<String> = self
            .files
            .keys()
            .filter(|k| k.starts_with(&pre) && !(pre.is_empty() && k.starts_with('/')))
            .filter_map(|k| k[pre.len()..].split('/').next().map(str::to_owned))
            .filter(|n| !n.is_empty())
            .collect();
        names.dedup();
        if names.is_empty() && !self.is_dir(path) {
            return Err(io::Error::from_raw_os_error(2));
        }
        Ok(names)
    }
}

/// `os.path.dirname`.
pub fn py_dirname(p: &str) -> &str {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    let head = &p[..i];
    if !head.is_empty() && head.bytes().any(|b| b != b'/') {
        head.trim_end_matches('/')
    } else {
        head
    }
}

/// `os.path.join(a, b)` for two parts.
pub fn py_join(a: &str, b: &str) -> String {
    if b.starts_with('/') || a.is_empty() {
        return b.to_owned();
    }
    // Not `format!`: this runs for every `include` (a snippet per server), and the formatting
    // machinery cost ten times the copy.
    let mut p = String::with_capacity(a.len() + 1 + b.len());
    p.push_str(a);
    if !a.ends_with('/') {
        p.push('/');
    }
    p.push_str(b);
    p
}

/// `os.path.split`.
fn py_split(p: &str) -> (&str, &str) {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    let (head, tail) = p.split_at(i);
    let head = if !head.is_empty() && head.bytes().any(|b| b != b'/') {
        head.trim_end_matches('/')
    } else {
        head
    };
    (head, tail)
}

/// `glob.has_magic`.
pub fn has_magic(p: &str) -> bool {
    p.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// `glob.glob(pattern)` (Python 3.11, no `recursive`): hidden names match only a pattern that
/// starts with a dot; results are named by joining the pattern's directory part.
pub fn glob(fs: &dyn FileSystem, pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    iglob(fs, pattern, false, &mut out, 0);
    out
}

fn iglob(fs: &dyn FileSystem, pathname: &str, dironly: bool, out: &mut Vec<String>, depth: u32) {
    if depth > 64 {
        return;
    }
    let (dirname, basename) = py_split(pathname);
    if !has_magic(pathname) {
        if !basename.is_empty() {
            if fs.exists(pathname) {
                out.push(pathname.to_owned());
            }
        } else if fs.is_dir(dirname) {
            out.push(pathname.to_owned());
        }
        return;
    }
    if dirname.is_empty() {
        out.extend(glob1(fs, "", basename, dironly));
        return;
    }
    let dirs = if dirname != pathname && has_magic(dirname) {
        let mut d = Vec::new();
        iglob(fs, dirname, true, &mut d, depth + 1);
        d
    } else {
        vec![dirname.to_owned()]
    };
    for dir in dirs {
        let names = if has_magic(basename) {
            glob1(fs, &dir, basename, dironly)
        } else if basename.is_empty() {
            if fs.is_dir(&dir) {
                vec![String::new()]
            } else {
                vec![]
            }
        } else if fs.exists(&py_join(&dir, basename)) {
            vec![basename.to_owned()]
        } else {
            vec![]
        };
        for n in names {
            out.push(py_join(&dir, &n));
        }
    }
}

fn glob1(fs: &dyn FileSystem, dir: &str, pattern: &str, dironly: bool) -> Vec<String> {
    let Ok(names) = fs.list_dir(if dir.is_empty() { "." } else { dir }) else {
        return vec![];
    };
    let Ok(pat) = glob::Pattern::new(pattern) else {
        return vec![];
    };
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    names
        .into_iter()
        .filter(|n| pattern.starts_with('.') || !n.starts_with('.'))
        .filter(|n| pat.matches_with(n, opts))
        .filter(|n| !dironly || fs.is_dir(&py_join(dir, n)))
        .collect()
}

/// Python's `repr()` of a str, as it appears in `OSError` messages.
pub fn py_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// The errno and its text (`strerror`), as both Python and nginx print them.
pub fn errno_text(e: &io::Error) -> (i32, String) {
    let code = e.raw_os_error().unwrap_or(match e.kind() {
        io::ErrorKind::NotFound => 2,
        io::ErrorKind::PermissionDenied => 13,
        _ => 5,
    });
    let text = io::Error::from_raw_os_error(code).to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    (code, text)
}

/// A path for display and for [`super::ConfigFile::path`].
pub fn to_path(s: &str) -> PathBuf {
    Path::new(s).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_paths() {
        assert_eq!(py_dirname("nginx.conf"), "");
        assert_eq!(py_dirname("/etc/nginx/nginx.conf"), "/etc/nginx");
        assert_eq!(py_dirname("/nginx.conf"), "/");
        assert_eq!(py_join("", "a.conf"), "a.conf");
        assert_eq!(py_join("x", "/abs"), "/abs");
        assert_eq!(py_repr("/a'b"), "\"/a'b\"");
        assert_eq!(py_repr("/etc/x"), "'/etc/x'");
        assert_eq!(
            errno_text(&io::Error::from_raw_os_error(2)).1,
            "No such file or directory"
        );
    }

    #[test]
    fn disk_reads_whole_files_of_any_size_and_refuses_directories() {
        let dir = tempfile::tempdir().unwrap();
        let fs = DiskFs {
            cwd: Some(dir.path().to_path_buf()),
        };
        for len in [0usize, 1, 4095, 4096, 100_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(dir.path().join("f.conf"), &bytes).unwrap();
            assert_eq!(fs.read("f.conf").unwrap(), bytes, "{len} bytes");
        }
        // A FIFO has no size: the buffer grows until the writer is done.
        let fifo = dir.path().join("fifo.conf");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let text: Vec<u8> = b"server { listen 80; }\n".repeat(1000);
        let writer = {
            let (fifo, text) = (fifo.clone(), text.clone());
            std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
        };
        assert_eq!(fs.read("fifo.conf").unwrap(), text);
        writer.join().unwrap();
        assert_eq!(fs.read(".").unwrap_err().raw_os_error(), Some(21));
        assert_eq!(fs.read("missing.conf").unwrap_err().raw_os_error(), Some(2));
    }

    #[test]
    fn glob_in_memory() {
        let mut fs = MemFs::default();
        fs.insert("/etc/nginx/conf.d/b.conf", "");
        fs.insert("/etc/nginx/conf.d/a.conf", "");
        fs.insert("/etc/nginx/conf.d/.hidden.conf", "");
        fs.insert("/etc/nginx/sites/x/y.conf", "");
        let mut g = glob(&fs, "/etc/nginx/conf.d/*.conf");
        g.sort();
        assert_eq!(g, ["/etc/nginx/conf.d/a.conf", "/etc/nginx/conf.d/b.conf"]);
        assert_eq!(
            glob(&fs, "/etc/nginx/sites/*/*.conf"),
            ["/etc/nginx/sites/x/y.conf"]
        );
        assert_eq!(
            glob(&fs, "/etc/nginx/conf.d/a[.]conf"),
            ["/etc/nginx/conf.d/a.conf"]
        );
        assert!(glob(&fs, "/etc/nginx/none/*.conf").is_empty());
    }
}
