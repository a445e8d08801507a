//! One `fix --apply` at a time: an exclusive `flock` on a lock file.
//!
//! Two runs fixing the same host would back up each other's half-written files and reload
//! in between; the kernel releases the lock when the process dies, so a killed run never
//! leaves a stale lock behind (unlike a pid file).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::Path;

/// Takes the lock at `path` (creating its directory and the file), without waiting. The lock
/// is held as long as the returned file is open.
pub(super) fn take(path: &Path) -> Result<File, String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)
            .map_err(|e| format!("create the lock directory {}: {e}", dir.display()))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("open the lock file {}: {e}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(TryLockError::WouldBlock) => Err(format!(
            "another nginx-medic fix is running (lock {} held)",
            path.display()
        )),
        Err(TryLockError::Error(e)) => Err(format!("lock {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_taker_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/fix.lock");
        let first = take(&path).expect("first lock");
        let err = take(&path).expect_err("second lock while the first is held");
        assert!(err.contains("another nginx-medic fix is running"), "{err}");
        drop(first);
        take(&path).expect("lock again once released");
    }
}
