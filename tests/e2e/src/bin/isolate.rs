//! `medic-isolate`: runs a program with its own `/etc/resolv.conf` and `/etc/hosts`.
//!
//! ```text
//! medic-isolate --resolv-conf FILE --hosts FILE -- PROGRAM [ARGS...]
//! ```
//!
//! nginx resolves a `proxy_pass` host named in the config with the system resolver (glibc's
//! `getaddrinfo`, reading `/etc/hosts` and `/etc/resolv.conf`) while it reads the config. A test
//! that makes that fail must not ask the machine's real name servers (slow, off-loopback,
//! different on every machine), and must not change the machine's files either. So this program:
//!
//! 1. leaves the host's mount namespace (`unshare(CLONE_NEWNS)`);
//! 2. makes every mount in the new namespace private (`mount --make-rprivate /`), so nothing done
//!    here propagates back to the host;
//! 3. bind-mounts the given files over `/etc/resolv.conf` and `/etc/hosts` (in the new namespace
//!    only);
//! 4. execs PROGRAM with ARGS (argv, no shell): same PID, so whoever started us owns it.
//!
//! The network namespace is the host's: a name server on a loopback address the test started is
//! reachable. Needs root (CAP_SYS_ADMIN); the end-to-end tests run as root.
//! Exit status 125 when the isolation itself fails, 127 when PROGRAM cannot be executed.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

const USAGE: &str = "usage: medic-isolate --resolv-conf FILE --hosts FILE -- PROGRAM [ARGS...]";

fn fail(msg: &str) -> ! {
    eprintln!("medic-isolate: {msg}");
    exit(125);
}

struct Args {
    resolv_conf: PathBuf,
    hosts: PathBuf,
    program: OsString,
    args: Vec<OsString>,
}

fn parse(mut argv: impl Iterator<Item = OsString>) -> Args {
    let (mut resolv_conf, mut hosts) = (None, None);
    loop {
        let Some(a) = argv.next() else {
            fail(&format!("no program to run\n{USAGE}"))
        };
        match a.to_str() {
            Some("--resolv-conf") => resolv_conf = argv.next().map(PathBuf::from),
            Some("--hosts") => hosts = argv.next().map(PathBuf::from),
            Some("--") => break,
            _ => fail(&format!("unexpected argument {a:?}\n{USAGE}")),
        }
    }
    let Some(program) = argv.next() else {
        fail(&format!("no program after --\n{USAGE}"))
    };
    Args {
        resolv_conf: resolv_conf.unwrap_or_else(|| fail(&format!("--resolv-conf FILE\n{USAGE}"))),
        hosts: hosts.unwrap_or_else(|| fail(&format!("--hosts FILE\n{USAGE}"))),
        program,
        args: argv.collect(),
    }
}

fn bind(source: &Path, target: &str) {
    if !source.is_file() {
        fail(&format!("{} is not a file", source.display()));
    }
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap_or_else(|e| fail(&format!("bind-mount {} on {target}: {e}", source.display())));
}

fn main() {
    let args = parse(std::env::args_os().skip(1));
    unshare(CloneFlags::CLONE_NEWNS).unwrap_or_else(|e| {
        fail(&format!(
            "unshare(CLONE_NEWNS): {e} (needs root / CAP_SYS_ADMIN; run the tests as root)"
        ))
    });
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap_or_else(|e| fail(&format!("make / private in the new mount namespace: {e}")));
    bind(&args.resolv_conf, "/etc/resolv.conf");
    bind(&args.hosts, "/etc/hosts");
    let err = Command::new(&args.program).args(&args.args).exec();
    eprintln!("medic-isolate: exec {:?}: {err}", args.program);
    exit(127);
}
