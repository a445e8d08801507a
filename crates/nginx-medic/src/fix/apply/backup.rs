//! The backup of every file a fix touches, taken before anything is written: the original
//! bytes under `BACKUP_DIR/<absolute path>` with their mode, owner and mtime, a
//! `manifest.json`, and a `RESTORE.txt` a person can follow when the tool cannot.

use std::fs::{self, File, FileTimes};
use std::io::Write;
use std::os::unix::fs::{fchown, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::fsio::{self, Attrs};
use super::FileChange;

/// One backed-up file.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub original: PathBuf,
    pub backup: PathBuf,
    pub attrs: Attrs,
}

#[derive(Serialize)]
struct Manifest<'a> {
    created: String,
    files: Vec<ManifestFile<'a>>,
    reload: &'a str,
}

#[derive(Serialize)]
struct ManifestFile<'a> {
    path: &'a Path,
    backup: &'a Path,
    /// Octal, as `stat -c %a` prints it.
    mode: String,
    uid: u32,
    gid: u32,
    sha256_before: String,
    sha256_after: String,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    openssl::sha::sha256(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where `original` (absolute) is kept under `dir`.
pub(crate) fn backup_path(dir: &Path, original: &Path) -> PathBuf {
    dir.join(original.strip_prefix("/").unwrap_or(original))
}

/// Quotes a path for a POSIX shell, for the commands of RESTORE.txt a person copies (we never
/// run them ourselves).
fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The commands that restore the originals by hand, then reload nginx.
pub(crate) fn restore_commands(entries: &[Entry], reload: &[String]) -> Vec<String> {
    let mut cmds: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "cp --preserve=all {} {}",
                sh_quote(&e.backup),
                sh_quote(&e.original)
            )
        })
        .collect();
    if !reload.is_empty() {
        cmds.push(
            reload
                .iter()
                .map(|a| sh_quote(Path::new(a)))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    cmds
}

/// Backs up the `before` of each change into `dir` (which must not exist yet). On any error
/// the partial backup is removed, so a full disk leaves nothing behind.
pub(crate) fn make(
    dir: &Path,
    changes: &[FileChange],
    reload: &[String],
) -> Result<Vec<Entry>, String> {
    if dir.exists() {
        return Err(format!(
            "backup directory {} already exists; choose a new one",
            dir.display()
        ));
    }
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    }
    fs::create_dir(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    match fill(dir, changes, reload) {
        Ok(entries) => Ok(entries),
        Err(e) => {
            let removed = match fs::remove_dir_all(dir) {
                Ok(()) => "the partial backup was removed".to_string(),
                Err(re) => format!("could not remove the partial backup: {re}"),
            };
            Err(format!("{e}; {removed}"))
        }
    }
}

fn fill(dir: &Path, changes: &[FileChange], reload: &[String]) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for c in changes {
        let attrs = Attrs::of(&c.path).map_err(|e| format!("stat {}: {e}", c.path.display()))?;
        let backup = backup_path(dir, &c.path);
        let parent = backup.parent().unwrap_or(dir);
        fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&backup)?;
            // `before` is what the precheck found in the file a moment ago.
            f.write_all(&c.before)?;
            f.set_permissions(fs::Permissions::from_mode(attrs.mode))?;
            fchown(&f, Some(attrs.uid), Some(attrs.gid))?;
            f.set_times(FileTimes::new().set_modified(attrs.mtime))?;
            f.sync_all()?;
            fsio::sync_dir(parent)
        };
        write()
            .map_err(|e| format!("back up {} to {}: {e}", c.path.display(), backup.display()))?;
        entries.push(Entry {
            original: c.path.clone(),
            backup,
            attrs,
        });
    }
    let reload_line = reload.join(" ");
    let manifest = Manifest {
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        files: entries
            .iter()
            .zip(changes)
            .map(|(e, c)| ManifestFile {
                path: &e.original,
                backup: &e.backup,
                mode: format!("{:o}", e.attrs.mode),
                uid: e.attrs.uid,
                gid: e.attrs.gid,
                sha256_before: sha256_hex(&c.before),
                sha256_after: sha256_hex(&c.after),
            })
            .collect(),
        reload: &reload_line,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| format!("manifest: {e}"))?;
    write_synced(&dir.join("manifest.json"), &json)?;
    let mut text = String::from(
        "# Written by nginx-medic fix --apply before it changed anything.\n\
         # To put the original files back by hand, run:\n",
    );
    for cmd in restore_commands(&entries, reload) {
        text.push_str(&cmd);
        text.push('\n');
    }
    write_synced(&dir.join("RESTORE.txt"), text.as_bytes())?;
    fsio::sync_dir(dir).map_err(|e| format!("fsync {}: {e}", dir.display()))?;
    Ok(entries)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let w = || -> std::io::Result<()> {
        let mut f = File::create(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    w().map_err(|e| format!("write {}: {e}", path.display()))
}

/// Puts the original of `entry` back (atomically, with its mode, owner and mtime), after
/// checking the backup still holds `before`.
pub(crate) fn restore(entry: &Entry, before: &[u8]) -> Result<(), String> {
    let kept = fs::read(&entry.backup)
        .map_err(|e| format!("read the backup {}: {e}", entry.backup.display()))?;
    if kept != before {
        return Err(format!(
            "the backup {} no longer holds the original (sha256 {} instead of {})",
            entry.backup.display(),
            sha256_hex(&kept),
            sha256_hex(before)
        ));
    }
    fsio::replace(
        &entry.original,
        &kept,
        &entry.attrs,
        Some(entry.attrs.mtime),
    )
    .map_err(|e| format!("restore {}: {e}", entry.original.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_commands_quote_paths() {
        let e = Entry {
            original: PathBuf::from("/etc/nginx/it's.conf"),
            backup: PathBuf::from("/b/etc/nginx/it's.conf"),
            attrs: Attrs {
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: std::time::SystemTime::UNIX_EPOCH,
            },
        };
        let cmds = restore_commands(&[e], &["nginx".into(), "-s".into(), "reload".into()]);
        assert_eq!(
            cmds[0],
            r"cp --preserve=all '/b/etc/nginx/it'\''s.conf' '/etc/nginx/it'\''s.conf'"
        );
        assert_eq!(cmds[1], "'nginx' '-s' 'reload'");
    }
}
