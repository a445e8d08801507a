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

/// A compressed rotation of a file we had not finished: found by decompressing its first
/// bytes (never more) and comparing them with the fingerprint. Returns its name and its
/// uncompressed size from the gzip trailer (ISIZE, the size modulo 4 GiB: logrotate writes one
/// member), so a report can say how much was not read. Only gzip: the common logrotate setup.
pub fn find_compressed(dir: &Path, id: &Identity) -> Option<(PathBuf, u64)> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    if id.fp_len == 0 {
        return None; // an empty fingerprint would match any file
    }
    let rd = fs::read_dir(dir).ok()?;
    for e in rd.flatten() {
        if !e.file_name().as_bytes().ends_with(b".gz") {
            continue;
        }
        let Ok(f) = File::open(e.path()) else {
            continue;
        };
        let mut head = Vec::with_capacity(id.fp_len as usize);
        let mut gz = flate2::read::GzDecoder::new(&f).take(id.fp_len as u64);
        if gz.read_to_end(&mut head).is_err() || head.len() != id.fp_len as usize {
            continue;
        }
        if crc32fast::hash(&head) != id.fp_crc {
            continue;
        }
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut isize = [0u8; 4];
        if len < 4 || f.read_exact_at(&mut isize, len - 4).is_err() {
            continue;
        }
        return Some((e.path(), u32::from_le_bytes(isize) as u64));
    }
    None
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
    fn a_compressed_rotation_is_recognized_without_reading_it_all() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        let body = b"2026/12/05 [error] one\n2026/12/05 [error] two\n";
        fs::write(&p, body).unwrap();
        let id = Identity::of(&File::open(&p).unwrap()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(
            File::create(d.path().join("x.log.1.gz")).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(body).unwrap();
        gz.finish().unwrap();
        fs::remove_file(&p).unwrap();
        let (name, size) = find_compressed(d.path(), &id).unwrap();
        assert_eq!(name, d.path().join("x.log.1.gz"));
        assert_eq!(size, body.len() as u64);
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
