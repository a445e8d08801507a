//! `nginx-medic config lint`: latent upstream misconfigurations, rustc-style, JSON or SARIF.

use anyhow::{bail, Result};

use crate::cli::ConfigLintArgs;

/// Returns the exit status: 0 clean, 1 findings at or above `--fail-on`, 2 config unreadable.
pub fn run(args: &ConfigLintArgs, _color: bool) -> Result<u8> {
    bail!(
        "config lint {:?}: the linter is being written (issue 3)",
        args.config
    )
}
