//! Where the generations of a log are, in its directory: found by inode (a rename keeps it),
//! by first bytes (a copy keeps those), or by logrotate's numbering (`x.log.1` is newer than
//! `x.log.2`). Compressed rotations are never candidates: their bytes are not the log's.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::ident::Identity;

/// Names of compressed rotations: never read, their bytes are not the log's bytes.
pub fn is_compressed(name: &OsStr) -> bool {
    let n = name.as_bytes();
    [&b".gz"[..], b".bz2", b".xz", b".zst", b".Z", b".lz4"]
        .iter()
        .any(|ext| n.ends_with(ext))
}

/// Regular files of a directory that may be a log generation: not compressed.
pub fn candidates(dir: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let e = e.ok()?;
        if is_compressed(&e.file_name()) {
            return None;
        }
        // Regular files only: a symlink to the live log is not one of its generations.
        let m = fs::symlink_metadata(e.path()).ok()?;
        m.is_file().then(|| (e.path(), m))
    })
    .collect()
}

/// The file in `dir` with this inode, if any.
pub fn find_by_inode(dir: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    candidates(dir)
        .into_iter()
        .find(|(_, m)| m.dev() == dev && m.ino() == ino)
        .map(|(p, _)| p)
}

/// The file in `dir` with this inode and these first bytes, opened.
pub fn find_by_identity(dir: &Path, id: &Identity) -> Option<(PathBuf, File)> {
    let p = find_by_inode(dir, id.dev, id.ino)?;
    let f = File::open(&p).ok()?;
    id.matches(&f).ok()?.then_some((p, f))
}

/// The copy copytruncate made of a file: another inode starting with the same bytes, the
/// newest if several do. It may be shorter than what we read: we kept reading the original
/// while it was being copied, and then there is nothing in it for us.
pub fn find_copy(dir: &Path, id: &Identity, live: &Identity) -> Option<(PathBuf, File)> {
    let mut found: Option<(PathBuf, File, std::time::SystemTime)> = None;
    for (p, m) in candidates(dir) {
        if m.dev() == live.dev && m.ino() == live.ino {
            continue;
        }
        if (m.len() as usize) < id.fp_len as usize {
            continue;
        }
        let Ok(f) = File::open(&p) else { continue };
        if !id.prefix_matches(&f).unwrap_or(false) {
            continue;
        }
        let t = m.modified().unwrap_or(std::time::UNIX_EPOCH);
        if found.as_ref().is_none_or(|(_, _, ft)| t > *ft) {
            found = Some((p, f, t));
        }
    }
    found.map(|(p, f, _)| (p, f))
}

/// `name.N` -> N, for logrotate's numbered rotations of `base`.
pub fn rotation_number(base: &OsStr, name: &OsStr) -> Option<u32> {
    let rest = name.as_bytes().strip_prefix(base.as_bytes())?;
    let digits = rest.strip_prefix(b".")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_rotations_and_compressed_names() {
        let n = |s: &str| rotation_number(OsStr::new("access.log"), OsStr::new(s));
        assert_eq!(n("access.log.1"), Some(1));
        assert_eq!(n("access.log.12"), Some(12));
        assert_eq!(n("access.log.1.gz"), None);
        assert_eq!(n("access.log-20261205"), None);
        assert_eq!(n("access.log."), None);
        assert_eq!(n("error.log.1"), None);
        assert!(is_compressed(OsStr::new("access.log.2.gz")));
        assert!(is_compressed(OsStr::new("access.log.2.zst")));
        assert!(!is_compressed(OsStr::new("access.log.2")));
    }

    #[test]
    fn symlinks_are_not_generations() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        fs::write(&p, b"a\n").unwrap();
        std::os::unix::fs::symlink(&p, d.path().join("current")).unwrap();
        fs::write(d.path().join("x.log.1.gz"), b"a\n").unwrap();
        let names: Vec<_> = candidates(d.path()).into_iter().map(|(p, _)| p).collect();
        assert_eq!(names, vec![p]);
    }
}
