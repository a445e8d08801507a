//! Test fixtures: config trees written as nginx.conf text, read by the real parser from memory.

use std::sync::Arc;

use medic_parse::config::{parse_with, Config, MemFs, Options};

/// One config made of `(path, text)` files; the first is the main file. Relative `include`s
/// resolve against the main file's directory, as nginx does.
pub fn config(files: &[(&str, &str)]) -> Arc<Config> {
    let mut fs = MemFs::default();
    for (p, text) in files {
        fs.insert(*p, text.as_bytes().to_vec());
    }
    let cfg = parse_with(&fs, files[0].0, &Options::nginx());
    let errors: Vec<String> = cfg.errors().map(|e| format!("{e:?}")).collect();
    assert!(errors.is_empty(), "fixture does not parse: {errors:#?}");
    Arc::new(cfg)
}

/// A single-file config.
pub fn one(text: &str) -> Arc<Config> {
    config(&[("nginx.conf", text)])
}
