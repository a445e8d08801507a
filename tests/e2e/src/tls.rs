//! A real TLS upstream: `openssl s_server` with a self-signed certificate for `upstream.test`.
//!
//! nginx is given a *different* self-signed certificate as its trust anchor, so the upstream's
//! chain cannot verify and nginx logs (`src/event/ngx_event_openssl.c`,
//! `ngx_http_upstream_ssl_handshake`):
//! `upstream SSL certificate verify error: (18:self-signed certificate) while SSL handshaking to upstream`.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, require_program, wait_until};

fn openssl() -> PathBuf {
    require_program("/usr/bin/openssl", "install openssl (scripts/test does)")
}

/// A self-signed certificate and its key, written by `openssl req -x509`.
pub struct SelfSigned {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl SelfSigned {
    /// Creates `<dir>/<stem>.crt` and `<dir>/<stem>.key` for `CN=<cn>` (also as DNS SAN).
    pub fn create(dir: &Path, stem: &str, cn: &str) -> SelfSigned {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        let out = Command::new(openssl())
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .arg("-subj")
            .arg(format!("/CN={cn}"))
            .arg("-addext")
            .arg(format!("subjectAltName=DNS:{cn}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl req");
        assert!(
            out.status.success(),
            "openssl req for {cn} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        SelfSigned { cert, key }
    }
}

/// A running `openssl s_server -www` on 127.0.0.1, killed on drop.
pub struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    /// Starts `openssl s_server` with `id`'s certificate and waits until it accepts.
    /// Its output goes to `log` (handshake failures are reported there, not to us).
    pub fn start(id: &SelfSigned, log: &Path) -> TlsServer {
        let port = free_port();
        let out = fs::File::create(log).expect("create the s_server log");
        let child = Command::new(openssl())
            .arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&id.cert)
            .arg("-key")
            .arg(&id.key)
            .args(["-www", "-quiet"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup s_server log"))
            .stderr(out)
            .spawn()
            .expect("spawn openssl s_server");
        let mut s = TlsServer { child, port };
        let up = wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                || matches!(s.child.try_wait(), Ok(Some(_)))
        });
        let exited = s.child.try_wait().ok().flatten();
        assert!(
            up && exited.is_none(),
            "openssl s_server on 127.0.0.1:{port} did not come up ({exited:?}):\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        s
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        // Our own child: SIGKILL by PID (Child::kill), then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
