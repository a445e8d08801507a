//! Running other programs (`nginx -V`, `nginx -T`, `systemctl`, `pm2`, `journalctl`): argv only,
//! never a shell; stdin closed; both pipes drained; killed by PID after a timeout.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The output of a finished command.
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `cmd` (stdin closed) and collects both streams; kills it (by its PID, it is our child)
/// after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> std::io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Both pipes are drained on threads: `nginx -T` of a large config fills a pipe buffer
    // long before it exits.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s; killed", timeout.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_times_out_and_kills() {
        let t = Instant::now();
        let r = run(Command::new("sleep").arg("5"), Duration::from_millis(200));
        assert!(r.is_err_and(|e| e.kind() == std::io::ErrorKind::TimedOut));
        assert!(t.elapsed() < Duration::from_secs(3));
        let ok = run(Command::new("echo").arg("hi"), Duration::from_secs(5)).expect("echo");
        assert_eq!(ok.stdout, b"hi\n");
    }
}
