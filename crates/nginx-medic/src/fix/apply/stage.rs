//! The staged `nginx -t`: the whole configuration as it will be after the fix, tested by the
//! same nginx binary with the same `-p`/`-c`, before a single real file is written.
//!
//! Copying the tree elsewhere would not do: includes, certificates and `-p`-relative paths
//! would resolve differently. So the new files are bind-mounted over the originals in a private
//! mount namespace that only the `nginx -t` process sees, and vanishes with it. That runs in a
//! hidden subcommand of our own binary (`nginx-medic stage-test`), because `unshare` must
//! happen in the process that then execs nginx, and we may not fork-and-unshare without
//! `unsafe`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::control::{self, nginx_paths};
use super::{FileChange, NginxCtl};
use crate::cli::StageTestArgs;

/// Tests the tree with each change's `after` in place of its file, running `exe stage-test`.
/// `Err` holds nginx's stderr (or why the stage could not be set up).
pub(crate) fn test(ctl: &NginxCtl, changes: &[FileChange], exe: &Path) -> Result<String, String> {
    // Outside the config directories (the system temp dir), so no include glob can load them.
    let dir = tempfile::Builder::new()
        .prefix("nginx-medic-stage-")
        .tempdir()
        .map_err(|e| format!("create a staging directory: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("stage-test").arg("--nginx").arg(&ctl.binary);
    for (i, c) in changes.iter().enumerate() {
        let name = c
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| OsString::from("file"));
        let mut staged_name = OsString::from(format!("{i}-"));
        staged_name.push(name);
        let staged = dir.path().join(staged_name);
        std::fs::write(&staged, &c.after)
            .map_err(|e| format!("write the staged {}: {e}", staged.display()))?;
        cmd.arg("--bind").arg(&staged).arg(&c.path);
    }
    cmd.arg("--").args(nginx_paths(ctl));
    control::run(&mut cmd, "staged nginx -t")
}

/// `nginx-medic stage-test`: unshare the mount namespace, bind each staged file over its
/// target, exec `nginx -t ARGS`. Exits 125 when the staging itself fails (then nothing was
/// tested), else nginx's own status.
pub fn run(args: &StageTestArgs) -> anyhow::Result<u8> {
    match stage(args) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("nginx-medic stage-test: {e:#}");
            Ok(125)
        }
    }
}

fn stage(args: &StageTestArgs) -> anyhow::Result<std::convert::Infallible> {
    if !args.bind.len().is_multiple_of(2) {
        bail!("--bind takes pairs: STAGED TARGET");
    }
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS) (needs root)")?;
    // Without this, a bind below a shared mount (systemd makes / shared) would propagate back
    // to the host's namespace, and nginx itself would see our staged files.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make / private (mount --make-rprivate /)")?;
    for pair in args.bind.chunks(2) {
        let (staged, target): (&PathBuf, &PathBuf) = (&pair[0], &pair[1]);
        mount(
            Some(staged.as_path()),
            target.as_path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind-mount {} over {}", staged.display(), target.display()))?;
    }
    let err = Command::new(&args.nginx)
        .arg("-t")
        .args(&args.nginx_args)
        .exec();
    Err(err).with_context(|| format!("exec {} -t", args.nginx.display()))
}
