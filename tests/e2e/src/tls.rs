//! A real TLS upstream: `openssl s_server` with a self-signed certificate for `upstream.test`.
//!
//! nginx is given a *different* self-signed certificate as its trust anchor, so the upstream's
//! chain cannot verify and nginx logs (`src/event/ngx_event_openssl.c`,
//! `ngx_http_upstream_ssl_handshake`):
//! `upstream SSL certificate verify error: (18:self-signed certificate) while SSL handshaking to upstream`.

use std::ffi::OsStr;
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
        SelfSigned::create_with_key(dir, stem, cn, &["-newkey", "rsa:2048"])
    }

    /// As [`SelfSigned::create`], with the key given by `openssl req` arguments, e.g.
    /// `["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:brainpoolP256r1"]`: a key on a curve
    /// OpenSSL 3.0 clients do not offer (nginx's `proxy_ssl` included), so a server whose only
    /// certificate it is fails every handshake with `handshake failure` (alert 40).
    pub fn create_with_key(dir: &Path, stem: &str, cn: &str, key_args: &[&str]) -> SelfSigned {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        let out = Command::new(openssl())
            .args(["req", "-x509"])
            .args(key_args)
            .args(["-nodes", "-days", "2"])
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
        TlsServer::start_with(id, &[], log)
    }

    /// As [`TlsServer::start`], with more `s_server` arguments (`-tls1_3`, `-servername`,
    /// `-cert2`, `-key2`, `-servername_fatal`, ...).
    pub fn start_with(id: &SelfSigned, extra: &[&OsStr], log: &Path) -> TlsServer {
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
            .args(extra)
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

impl TlsServer {
    /// An SNI-only upstream: its certificate for `upstream.test` (returned, to trust) is served
    /// only to clients that name it. Without SNI the server has only a certificate on
    /// brainpoolP256r1, a curve nginx's OpenSSL 3.0 does not offer, so the handshake fails
    /// (`handshake failure`, alert 40), as with a CDN or shared host with no default
    /// certificate. Keys and certificates go in `dir`, s_server's output in `log`.
    pub fn sni_only(dir: &Path, log: &Path) -> (TlsServer, SelfSigned) {
        let default = SelfSigned::create_with_key(
            dir,
            "default",
            "default.test",
            &[
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:brainpoolP256r1",
            ],
        );
        let up = SelfSigned::create(dir, "upstream", "upstream.test");
        let extra: Vec<&OsStr> = vec![
            "-servername".as_ref(),
            "upstream.test".as_ref(),
            "-cert2".as_ref(),
            up.cert.as_os_str(),
            "-key2".as_ref(),
            up.key.as_os_str(),
            "-servername_fatal".as_ref(),
        ];
        (TlsServer::start_with(&default, &extra, log), up)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        // Our own child: SIGKILL by PID (Child::kill), then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test certificate authority (`openssl req -x509`) that signs leaves with any validity
/// period through `openssl ca -startdate/-enddate` (OpenSSL 3.0's `x509 -req` cannot set past
/// dates; `-not_before` arrived in 3.4).
pub struct TestCa {
    dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn run_openssl(args: &[&OsStr], what: &str) {
    let out = Command::new(openssl())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run openssl for {what}: {e}"));
    assert!(
        out.status.success(),
        "openssl {what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// Creates the CA and its `openssl ca` database in `<dir>/ca/`.
    pub fn create(dir: &Path) -> TestCa {
        let root = dir.join("ca");
        fs::create_dir_all(root.join("newcerts")).expect("create the CA directory");
        fs::write(root.join("index.txt"), "").expect("write index.txt");
        fs::write(root.join("serial"), "1000\n").expect("write serial");
        fs::write(
            root.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = test_ca\n[test_ca]\ndatabase = {r}/index.txt\n\
                 new_certs_dir = {r}/newcerts\nserial = {r}/serial\ndefault_md = sha256\n\
                 policy = any\ncopy_extensions = copy\nunique_subject = no\n[any]\n\
                 commonName = supplied\n",
                r = root.display()
            ),
        )
        .expect("write ca.cnf");
        let (cert, key) = (root.join("ca.crt"), root.join("ca.key"));
        run_openssl(
            &[
                "req".as_ref(),
                "-x509".as_ref(),
                "-newkey".as_ref(),
                "rsa:2048".as_ref(),
                "-nodes".as_ref(),
                "-days".as_ref(),
                "2".as_ref(),
                "-subj".as_ref(),
                "/CN=medic test CA".as_ref(),
                "-keyout".as_ref(),
                key.as_os_str(),
                "-out".as_ref(),
                cert.as_os_str(),
            ],
            "req (test CA)",
        );
        TestCa {
            dir: root,
            cert,
            key,
        }
    }

    /// A leaf for `CN=<cn>` (also its DNS SAN), valid from `start` to `end`
    /// (`YYYYMMDDHHMMSSZ`), written to `<dir>/<stem>.crt` and `.key`.
    pub fn sign(&self, stem: &str, cn: &str, start: &str, end: &str) -> SelfSigned {
        let key = self.dir.join(format!("{stem}.key"));
        let csr = self.dir.join(format!("{stem}.csr"));
        let cert = self.dir.join(format!("{stem}.crt"));
        let subj = format!("/CN={cn}");
        let san = format!("subjectAltName=DNS:{cn}");
        run_openssl(
            &[
                "req".as_ref(),
                "-new".as_ref(),
                "-newkey".as_ref(),
                "rsa:2048".as_ref(),
                "-nodes".as_ref(),
                "-subj".as_ref(),
                subj.as_ref(),
                "-addext".as_ref(),
                san.as_ref(),
                "-keyout".as_ref(),
                key.as_os_str(),
                "-out".as_ref(),
                csr.as_os_str(),
            ],
            "req (leaf CSR)",
        );
        let cnf = self.dir.join("ca.cnf");
        run_openssl(
            &[
                "ca".as_ref(),
                "-batch".as_ref(),
                "-notext".as_ref(),
                "-config".as_ref(),
                cnf.as_os_str(),
                "-cert".as_ref(),
                self.cert.as_os_str(),
                "-keyfile".as_ref(),
                self.key.as_os_str(),
                "-startdate".as_ref(),
                start.as_ref(),
                "-enddate".as_ref(),
                end.as_ref(),
                "-in".as_ref(),
                csr.as_os_str(),
                "-out".as_ref(),
                cert.as_os_str(),
            ],
            "ca (sign leaf)",
        );
        SelfSigned { cert, key }
    }
}
