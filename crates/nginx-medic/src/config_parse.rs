//! `nginx-medic config parse`: the config tree as crossplane prints it.

use anyhow::{bail, Result};

use crate::cli::ConfigParseArgs;

/// Returns the exit status: 0 when the config parsed, 1 when it has errors (printed in the JSON).
pub fn run(args: &ConfigParseArgs) -> Result<u8> {
    bail!(
        "config parse {}: the config parser is being written (issue 3)",
        args.file
    )
}
