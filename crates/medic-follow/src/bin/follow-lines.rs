//! Test helper: follows one log with a state file and appends every delivered line to an
//! output file, fsync'd before each `save`, until killed. The resume test `kill -9`s it at
//! random points and checks that the output holds every line written (duplicates allowed).
//!
//! Usage: `follow-lines LOG STATE OUT`

use std::fs::File;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use medic_follow::{Event, Follower, Options};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [log, state, out] = &args[..] else {
        eprintln!("usage: follow-lines LOG STATE OUT");
        return ExitCode::from(2);
    };
    match run(log, state, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("follow-lines: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(log: &Path, state: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let opts = Options {
        from_start: true,
        state_file: Some(state.to_path_buf()),
        ..Options::default()
    };
    let mut f = Follower::open(&[log.to_path_buf()], opts)?;
    let mut sink = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(out)?;
    cut_torn_tail(&sink)?;
    let mut batch = Vec::new();
    loop {
        batch.clear();
        f.step(Duration::from_millis(200), &mut |e| match e {
            Event::Lines { bytes, .. } => batch.extend_from_slice(bytes),
            Event::Rotated { .. } => {}
            other => eprintln!("follow-lines: {other:?}"),
        })?;
        if !batch.is_empty() {
            sink.write_all(&batch)?;
            // The lines are on disk before the offsets that say they were read.
            sink.sync_data()?;
        }
        f.save()?;
    }
}

/// A `kill -9` during a write can leave half a line at the end of the output; those lines were
/// not saved as read, so they come again: drop the half so it does not glue onto them.
fn cut_torn_tail(f: &File) -> std::io::Result<()> {
    let len = f.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.read_exact_at(chunk, start)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            let keep = start + i as u64 + 1;
            if keep < len {
                f.set_len(keep)?;
            }
            return Ok(());
        }
        end = start;
    }
    f.set_len(0)
}
