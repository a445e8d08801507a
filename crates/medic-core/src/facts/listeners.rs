//! Listening sockets and the processes that own them (what `ss -tlpnx` shows).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The socket family of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketKind {
    Tcp,
    Tcp6,
    Unix,
}

/// A listening socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub kind: SocketKind,
    /// The bound address (`0.0.0.0` / `::` for a wildcard); `None` for unix sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The bound path of a unix socket (`@name` for the abstract namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The socket's inode, the key that joins `/proc/net/*` with `/proc/PID/fd`.
    pub inode: u64,
    /// The socket's owner (`/proc/net/tcp*` `uid` column); `None` for unix sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The processes holding the socket (a pre-forking server: the master and its workers).
    /// Empty when no readable process holds it; see [`Listeners::denied_pids`].
    pub processes: Vec<ProcessInfo>,
}

impl Listener {
    /// `127.0.0.1:8080`, `[::1]:8080`, `unix:/run/x.sock`: as nginx names peers.
    pub fn display(&self) -> String {
        match (self.ip, self.port, &self.path) {
            (Some(IpAddr::V6(ip)), Some(port), _) => format!("[{ip}]:{port}"),
            (Some(ip), Some(port), _) => format!("{ip}:{port}"),
            (_, _, Some(path)) => format!("unix:{path}"),
            _ => format!("inode:{}", self.inode),
        }
    }

    /// Whether a connection to `ip:port` reaches this listener: same port and the same address
    /// or a wildcard of the family (`::` also takes IPv4 unless `IPV6_V6ONLY`, Linux's default).
    pub fn accepts(&self, ip: IpAddr, port: u16) -> bool {
        if self.port != Some(port) {
            return false;
        }
        match self.ip {
            Some(own) if own == ip => true,
            Some(IpAddr::V4(own)) => own.is_unspecified() && ip.is_ipv4(),
            Some(IpAddr::V6(own)) => {
                own.is_unspecified() || own.to_ipv4_mapped().is_some_and(|m| IpAddr::V4(m) == ip)
            }
            None => false,
        }
    }
}

/// A process holding a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    /// `comm` (the program name the kernel shows, 15 bytes at most).
    pub program: String,
    /// The command line, arguments joined by spaces.
    pub cmdline: String,
    pub uid: Option<u32>,
    /// The systemd unit from `/proc/PID/cgroup` (`php8.2-fpm.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The container, when the cgroup path names one (`docker:0123abcd...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// When the process started, on the local wall clock (`2026-11-20T14:32:10`), as nginx's
    /// log times are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
}

/// Every listener on the host, and which processes could not be inspected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listeners {
    pub sockets: Vec<Listener>,
    /// Processes whose `/proc/PID/fd` could not be read (another user's, when not root): the
    /// sockets they hold show no process.
    pub denied_pids: Vec<u32>,
}

impl Listeners {
    /// The TCP listener a connection to `ip:port` reaches.
    pub fn tcp(&self, ip: IpAddr, port: u16) -> Option<&Listener> {
        // An exact address wins over a wildcard, as in the kernel's lookup.
        let mut candidates = self.sockets.iter().filter(|l| l.accepts(ip, port));
        let first = candidates.next()?;
        if first.ip == Some(ip) {
            return Some(first);
        }
        candidates.find(|l| l.ip == Some(ip)).or(Some(first))
    }

    /// TCP listeners on `port` that a connection to `ip` does not reach (bind mismatch).
    pub fn same_port_elsewhere(&self, ip: IpAddr, port: u16) -> Vec<&Listener> {
        self.sockets
            .iter()
            .filter(|l| l.port == Some(port) && !l.accepts(ip, port))
            .collect()
    }

    /// The unix listener bound at `path`.
    pub fn unix(&self, path: &str) -> Option<&Listener> {
        self.sockets
            .iter()
            .find(|l| l.kind == SocketKind::Unix && l.path.as_deref() == Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(ip: &str, port: u16) -> Listener {
        let ip: IpAddr = ip.parse().unwrap();
        Listener {
            kind: if ip.is_ipv4() {
                SocketKind::Tcp
            } else {
                SocketKind::Tcp6
            },
            ip: Some(ip),
            port: Some(port),
            path: None,
            inode: 1,
            uid: Some(0),
            processes: vec![],
        }
    }

    #[test]
    fn wildcard_and_exact() {
        let ls = Listeners {
            sockets: vec![tcp("0.0.0.0", 80), tcp("127.0.0.2", 80), tcp("::1", 81)],
            denied_pids: vec![],
        };
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo2: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(ls.tcp(lo, 80).unwrap().display(), "0.0.0.0:80");
        assert_eq!(ls.tcp(lo2, 80).unwrap().display(), "127.0.0.2:80");
        assert!(ls.tcp(lo, 81).is_none());
        let other = ls.same_port_elsewhere(lo, 81);
        assert_eq!(other[0].display(), "[::1]:81");
        assert!(tcp("::", 82).accepts(lo, 82));
    }
}
