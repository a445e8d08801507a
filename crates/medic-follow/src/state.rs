//! The state file: where each log was read up to, saved atomically.
//!
//! Only delivered lines count: `offset` is the end of the last line handed to the caller, so a
//! held partial line is read again after a restart rather than saved. A crash between a step
//! and its `save` re-delivers that step's lines (at-least-once), never skips one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ident::Identity;
use crate::FollowError;

/// Bumped when the format changes; an unknown version is reported and ignored.
const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedGen {
    pub id: Identity,
    /// Where it was last seen (a rotated name for a generation being drained).
    pub name: PathBuf,
    pub offset: u64,
    pub line: u64,
    /// Bytes read past `offset` and not delivered (a partial line), for the record.
    pub held: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedLog {
    pub path: PathBuf,
    pub live: Option<SavedGen>,
    /// Renamed-away generations still being drained, oldest first.
    pub old: Vec<SavedGen>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub version: u32,
    pub logs: Vec<SavedLog>,
}

impl State {
    pub fn new(logs: Vec<SavedLog>) -> State {
        State {
            version: VERSION,
            logs,
        }
    }

    /// Reads the state file. `Ok(None)`: there is none yet (first run).
    pub fn load(path: &Path) -> Result<Option<State>, String> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read state file: {e}")),
        };
        let state: State = serde_json::from_slice(&bytes)
            .map_err(|e| format!("state file unusable ({e}); starting without it"))?;
        if state.version != VERSION {
            return Err(format!(
                "state file version {} unknown (expected {VERSION}); starting without it",
                state.version
            ));
        }
        Ok(Some(state))
    }

    /// Writes a temp file next to `path`, fsyncs it, renames it over `path`, fsyncs the
    /// directory: after a crash the file is either the old state or the new one, never half.
    pub fn save(&self, path: &Path) -> Result<(), FollowError> {
        let err = |op: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| FollowError::Io {
                op,
                path: p,
                source,
            }
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        let json = serde_json::to_vec_pretty(self).map_err(|e| FollowError::Io {
            op: "serialize state",
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        let mut f = File::create(&tmp).map_err(err("create", &tmp))?;
        f.write_all(&json).map_err(err("write", &tmp))?;
        f.sync_all().map_err(err("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(err("rename", path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(err("fsync directory", &dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert_eq!(State::load(&p).unwrap(), None);
        let s = State::new(vec![SavedLog {
            path: "/var/log/nginx/error.log".into(),
            live: Some(SavedGen {
                id: Identity {
                    dev: 1,
                    ino: 2,
                    fp_len: 3,
                    fp_crc: 4,
                },
                name: "/var/log/nginx/error.log".into(),
                offset: 10,
                line: 1,
                held: 0,
            }),
            old: vec![],
        }]);
        s.save(&p).unwrap();
        assert_eq!(State::load(&p).unwrap(), Some(s.clone()));
        // The temp file is gone: it was renamed, not copied.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        for junk in [
            &b"{\"version\":1,\"logs\":[{"[..],
            b"\xff\xfe",
            b"",
            b"{\"version\":99,\"logs\":[]}",
        ] {
            fs::write(&p, junk).unwrap();
            assert!(State::load(&p).is_err());
        }
    }
}
