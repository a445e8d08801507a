//! Reachability: names resolved as nginx would, a TCP connect to every address, and for a unix
//! socket its file (type, owner, mode), whether the nginx worker user may connect, and a real
//! non-blocking connect (ECONNREFUSED: stale socket; EAGAIN: backlog full; as nginx sees them in
//! `ngx_event_connect_peer`, `src/event/ngx_event_connect.c`).

use std::fs;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant};

use medic_core::facts::{Connect, Resolution, TcpFact, UnixFact, WorkerAccess};
use socket2::{Domain, SockAddr, Socket, Type};

/// Resolves a target host. IP literals as they are; `localhost` to both loopbacks (nginx tries
/// every address a name has, and `localhost` is `::1` first on many systems); other names with
/// the system resolver (the config's `resolver` is only for names known at run time).
pub fn resolve(host: &str, port: u16) -> Resolution {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Resolution {
            host: host.to_string(),
            via: "literal".into(),
            addresses: vec![SocketAddr::new(ip, port).to_string()],
            error: None,
        };
    }
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut error = None;
    match (bare, port).to_socket_addrs() {
        Ok(it) => {
            for a in it {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
        Err(e) => error = Some(e.to_string()),
    }
    let via = if bare.eq_ignore_ascii_case("localhost") {
        for ip in [
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ] {
            let a = SocketAddr::new(ip, port);
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        error = None;
        "localhost"
    } else {
        "system"
    };
    Resolution {
        host: host.to_string(),
        via: via.into(),
        addresses: addrs.iter().map(|a| a.to_string()).collect(),
        error,
    }
}

/// One TCP connect within `timeout`, closed at once.
pub fn tcp_connect(addr: SocketAddr, timeout: Duration) -> TcpFact {
    let start = Instant::now();
    let connect = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => Connect::Ok {
            latency_ms: ms(start.elapsed()),
        },
        Err(e) => classify(&e, start, false),
    };
    TcpFact {
        address: addr.to_string(),
        connect,
    }
}

fn classify(e: &std::io::Error, start: Instant, unix: bool) -> Connect {
    match e.kind() {
        ErrorKind::ConnectionRefused => Connect::Refused,
        ErrorKind::TimedOut => Connect::TimedOut {
            after_ms: start.elapsed().as_millis() as u64,
        },
        ErrorKind::WouldBlock if unix => Connect::BacklogFull,
        ErrorKind::NotFound if unix => Connect::Missing,
        ErrorKind::PermissionDenied => Connect::Denied {
            error: e.to_string(),
        },
        _ => Connect::Error {
            error: e.to_string(),
        },
    }
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// A non-blocking connect to a unix socket, as nginx does it: EAGAIN when the backlog is full
/// (a blocking connect would wait instead).
pub fn unix_connect(path: &str) -> Connect {
    let start = Instant::now();
    let result = (|| {
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        sock.set_nonblocking(true)?;
        sock.connect(&SockAddr::unix(path)?)
    })();
    match result {
        Ok(()) => Connect::Ok {
            latency_ms: ms(start.elapsed()),
        },
        Err(e) => classify(&e, start, true),
    }
}

/// Users and groups from `/etc/passwd` and `/etc/group` (no NSS: LDAP users are not seen).
#[derive(Debug, Default)]
pub struct Accounts {
    /// name, uid, primary gid
    pub users: Vec<(String, u32, u32)>,
    /// name, gid, members
    pub groups: Vec<(String, u32, Vec<String>)>,
}

impl Accounts {
    pub fn read() -> Accounts {
        Accounts::parse(
            &fs::read_to_string("/etc/passwd").unwrap_or_default(),
            &fs::read_to_string("/etc/group").unwrap_or_default(),
        )
    }

    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let users = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((
                    f.first()?.to_string(),
                    f.get(2)?.parse().ok()?,
                    f.get(3)?.parse().ok()?,
                ))
            })
            .collect();
        let groups = group
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let members = f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                Some((f.first()?.to_string(), f.get(2)?.parse().ok()?, members))
            })
            .collect();
        Accounts { users, groups }
    }

    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users.iter().find(|u| u.1 == uid).map(|u| u.0.as_str())
    }

    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.1 == gid)
            .map(|g| g.0.as_str())
    }

    /// The worker's uid and groups: `user NAME [GROUP]` sets the gid (default: the user's
    /// primary group), and nginx calls `initgroups()` for the supplementary ones
    /// (`ngx_worker_process_init`, `src/os/unix/ngx_process_cycle.c`).
    pub fn worker(&self, name: &str, group: Option<&str>) -> Option<(u32, Vec<u32>)> {
        let (_, uid, primary) = self.users.iter().find(|u| u.0 == name)?;
        let gid = match group {
            Some(g) => self.groups.iter().find(|x| x.0 == g).map(|x| x.1)?,
            None => *primary,
        };
        let mut gids = vec![gid];
        for (_, g, members) in &self.groups {
            if members.iter().any(|m| m == name) && !gids.contains(g) {
                gids.push(*g);
            }
        }
        Some((*uid, gids))
    }
}

/// Whether `uid`/`gids` have `bit` (4 read, 2 write, 1 search) on a file with this owner and mode.
fn permits(uid: u32, gids: &[u32], meta: &fs::Metadata, bit: u32) -> bool {
    if uid == 0 {
        // Root bypasses the mode bits (CAP_DAC_OVERRIDE), except search needs one x bit.
        return bit != 1 || meta.mode() & 0o111 != 0 || !meta.is_dir();
    }
    let mode = meta.mode();
    let class = if meta.uid() == uid {
        mode >> 6
    } else if gids.contains(&meta.gid()) {
        mode >> 3
    } else {
        mode
    };
    class & bit != 0
}

fn owner_text(acc: &Accounts, meta: &fs::Metadata) -> (String, String) {
    (
        acc.user_name(meta.uid())
            .map(str::to_string)
            .unwrap_or_else(|| meta.uid().to_string()),
        acc.group_name(meta.gid())
            .map(str::to_string)
            .unwrap_or_else(|| meta.gid().to_string()),
    )
}

/// `srw-rw----` from a mode.
pub fn mode_string(meta: &fs::Metadata) -> String {
    let ft = meta.file_type();
    let kind = if ft.is_socket() {
        's'
    } else if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else {
        '-'
    };
    let mut s = String::from(kind);
    let m = meta.mode();
    for shift in [6, 3, 0] {
        let c = (m >> shift) & 7;
        s.push(if c & 4 != 0 { 'r' } else { '-' });
        s.push(if c & 2 != 0 { 'w' } else { '-' });
        s.push(if c & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// The worker user's permission to connect to the socket at `path`.
pub fn worker_access(
    acc: &Accounts,
    user: &str,
    group: Option<&str>,
    path: &str,
    meta: Option<&fs::Metadata>,
) -> WorkerAccess {
    let Some((uid, gids)) = acc.worker(user, group) else {
        return WorkerAccess {
            user: user.to_string(),
            uid: None,
            gids: Vec::new(),
            allowed: None,
            why: format!("user `{user}` is not in /etc/passwd (or its group is not in /etc/group)"),
        };
    };
    let mut out = WorkerAccess {
        user: user.to_string(),
        uid: Some(uid),
        gids: gids.clone(),
        allowed: None,
        why: String::new(),
    };
    // Search permission on every directory from `/` down to the socket's own.
    for dir in Path::new(path).ancestors().skip(1) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let Ok(dmeta) = fs::metadata(dir) else {
            out.why = format!("cannot stat {}", dir.display());
            return out;
        };
        if !permits(uid, &gids, &dmeta, 1) {
            let (o, g) = owner_text(acc, &dmeta);
            out.allowed = Some(false);
            out.why = format!(
                "no search permission on {} ({} {o}:{g})",
                dir.display(),
                mode_string(&dmeta)
            );
            return out;
        }
    }
    let Some(meta) = meta else {
        out.why = "the socket does not exist".to_string();
        return out;
    };
    let (o, g) = owner_text(acc, meta);
    let granted = permits(uid, &gids, meta, 2);
    out.allowed = Some(granted);
    let who = if uid == 0 {
        "root"
    } else if meta.uid() == uid {
        "owner"
    } else if gids.contains(&meta.gid()) {
        "group"
    } else {
        "other"
    };
    out.why = format!(
        "{} write as {who} ({} {o}:{g})",
        if granted { "may" } else { "may not" },
        mode_string(meta)
    );
    out
}

/// The file facts and a real connect for a unix socket target.
pub fn unix_fact(acc: &Accounts, user: &str, group: Option<&str>, path: &str) -> UnixFact {
    let meta = fs::metadata(path).ok();
    let worker = worker_access(acc, user, group, path, meta.as_ref());
    let (owner, grp) = match &meta {
        Some(m) => {
            let (o, g) = owner_text(acc, m);
            (Some(o), Some(g))
        }
        None => (None, None),
    };
    UnixFact {
        path: path.to_string(),
        exists: meta.is_some(),
        is_socket: meta.as_ref().is_some_and(|m| m.file_type().is_socket()),
        uid: meta.as_ref().map(|m| m.uid()),
        gid: meta.as_ref().map(|m| m.gid()),
        mode: meta.as_ref().map(|m| format!("{:04o}", m.mode() & 0o7777)),
        ls: meta.as_ref().map(|m| {
            format!(
                "{} {}:{} {path}",
                mode_string(m),
                owner.as_deref().unwrap_or_default(),
                grp.as_deref().unwrap_or_default()
            )
        }),
        owner,
        group: grp,
        worker,
        connect: unix_connect(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_gives_both_loopbacks() {
        let r = resolve("localhost", 8080);
        assert!(r.addresses.contains(&"[::1]:8080".to_string()), "{r:?}");
        assert!(r.addresses.contains(&"127.0.0.1:8080".to_string()), "{r:?}");
        assert_eq!(resolve("[::1]", 80).addresses, vec!["[::1]:80"]);
    }

    #[test]
    fn worker_groups() {
        let acc = Accounts::parse(
            "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n",
            "root:x:0:\nwww-data:x:33:\nphp:x:900:www-data,bob\n",
        );
        assert_eq!(acc.worker("www-data", None), Some((33, vec![33, 900])));
        assert_eq!(
            acc.worker("www-data", Some("root")),
            Some((33, vec![0, 900]))
        );
        assert_eq!(acc.worker("nobody", None), None);
    }

    #[test]
    fn stale_socket_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
        assert_eq!(unix_connect(p.to_str().unwrap()), Connect::Refused);
        assert_eq!(
            unix_connect(dir.path().join("none").to_str().unwrap()),
            Connect::Missing
        );
    }
}
