//! File identity: device + inode, plus a CRC-32 of the first bytes.
//!
//! Device + inode alone is not enough: an inode number is reused as soon as a file is deleted
//! (logrotate's `rotate N` deletes the oldest generation every night), and `copytruncate` keeps
//! the inode while replacing the content. The checksum of the first bytes tells those apart.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// How many leading bytes the fingerprint covers. A log line starts with a timestamp, so one
/// or two lines are enough to tell two generations of the same log apart.
pub const FP_MAX: usize = 256;

/// Who a file is: where it lives on disk and how it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    /// How many leading bytes `fp_crc` covers (fewer than [`FP_MAX`] while the file is short).
    pub fp_len: u32,
    pub fp_crc: u32,
}

/// CRC-32 of the first `len` bytes (or fewer, if the file is shorter), and how many it covers.
pub fn prefix_crc(file: &File, len: usize) -> io::Result<(usize, u32)> {
    let mut head = [0u8; FP_MAX];
    let want = len.min(FP_MAX);
    let mut got = 0;
    while got < want {
        match file.read_at(&mut head[got..want], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((got, crc32fast::hash(&head[..got])))
}

impl Identity {
    /// The identity of an open file, as it is now.
    pub fn of(file: &File) -> io::Result<Identity> {
        let meta = file.metadata()?;
        let (len, crc) = prefix_crc(file, FP_MAX)?;
        Ok(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            fp_len: len as u32,
            fp_crc: crc,
        })
    }

    pub fn same_inode(&self, meta: &Metadata) -> bool {
        self.dev == meta.dev() && self.ino == meta.ino()
    }

    /// Whether `file` still starts with the bytes this identity was taken from. An empty
    /// fingerprint matches everything: nothing was there to compare.
    pub fn prefix_matches(&self, file: &File) -> io::Result<bool> {
        let (got, crc) = prefix_crc(file, self.fp_len as usize)?;
        Ok(got == self.fp_len as usize && crc == self.fp_crc)
    }

    /// Whether `file` is this file: same inode and same first bytes.
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        let meta = file.metadata()?;
        Ok(self.same_inode(&meta) && self.prefix_matches(file)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn inode_reuse_is_told_by_the_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"2026/12/05 05:00:00 [error] first\n").unwrap();
        let id = Identity::of(&File::open(&p).unwrap()).unwrap();
        assert!(id.matches(&File::open(&p).unwrap()).unwrap());
        // Same inode, new content: what copytruncate or a reused inode looks like.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.write_all(b"2026/12/06 05:00:00 [error] other\n").unwrap();
        let f = File::open(&p).unwrap();
        assert!(id.same_inode(&f.metadata().unwrap()));
        assert!(!id.matches(&f).unwrap());
    }

    #[test]
    fn a_growing_file_keeps_matching_its_short_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"short\n").unwrap();
        let id = Identity::of(&File::open(&p).unwrap()).unwrap();
        assert_eq!(id.fp_len, 6);
        std::fs::write(&p, b"short\nand much longer now\n").unwrap();
        assert!(id.matches(&File::open(&p).unwrap()).unwrap());
    }
}
