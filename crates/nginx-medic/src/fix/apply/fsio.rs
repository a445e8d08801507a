//! File operations the engine needs to be crash-safe: atomic replacement with the original
//! mode, owner and (when restoring) mtime, and a writability probe.

use std::fs::{self, File, FileTimes};
use std::io::{self, Write};
use std::os::unix::fs::{fchown, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

/// What a file's replacement must keep of the original.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
}

impl Attrs {
    pub fn of(path: &Path) -> io::Result<Attrs> {
        let m = fs::metadata(path)?;
        Ok(Attrs {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: m.modified()?,
        })
    }
}

fn parent(path: &Path) -> io::Result<&Path> {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| io::Error::other(format!("{} has no directory", path.display())))
}

/// Replaces `path` with `bytes` so that a reader (nginx reloading, a crash) sees either the old
/// or the new file, never a mix: a temporary file in the same directory (a rename is only atomic
/// within one filesystem), mode and owner set before the rename, data and directory fsynced.
/// `mtime` is set when given (a restore puts the original's back, as `cp --preserve` would).
pub(crate) fn replace(
    path: &Path,
    bytes: &[u8],
    attrs: &Attrs,
    mtime: Option<SystemTime>,
) -> io::Result<()> {
    let dir = parent(path)?;
    // A dot-name ending in .tmp: an `include conf.d/*.conf` does not match it if a reload
    // happened to run in the instant it exists.
    let mut tmp = tempfile::Builder::new()
        .prefix(".nginx-medic-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    let f = tmp.as_file();
    f.set_permissions(fs::Permissions::from_mode(attrs.mode))?;
    fchown(f, Some(attrs.uid), Some(attrs.gid))?;
    if let Some(t) = mtime {
        f.set_times(FileTimes::new().set_modified(t))?;
    }
    f.sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// fsync of a directory: makes a rename or a new entry in it durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether we can create files in `dir`: creates and removes a temporary file there. Root
/// ignores permission bits, so only trying tells a read-only mount (EROFS) or an immutable
/// directory apart from a writable one.
pub(crate) fn probe_writable(dir: &Path) -> io::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix(".nginx-medic-probe-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_mode_and_sets_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.conf");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let attrs = Attrs::of(&p).unwrap();
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        replace(&p, b"new", &attrs, Some(t)).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        let after = Attrs::of(&p).unwrap();
        assert_eq!(after.mode, 0o640);
        assert_eq!(after.mtime, t);
        // Only the file itself is left in the directory: the temporary file was renamed.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        probe_writable(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
