//! Helpers shared by the CLI test files.

use std::io::Write;
use std::process::{Command, Stdio};

/// `bytes` gzip-compressed by the system's gzip, run with argv (no dependency on flate2 here).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let bytes = bytes.to_vec();
    // Written from another thread: gzip's output fills its pipe before it has read all input.
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "gzip: {:?}", out.status);
    out.stdout
}
