//! `nginx-medic config parse`: the config tree as crossplane prints it.
//!
//! The input is a main config file (includes followed from disk), or `nginx -T` output (from a
//! file or stdin), whose sections are parsed under their own names with includes resolved to
//! the sections.

use std::io::{self, Read, Write};

use anyhow::{Context, Result};
use medic_parse::config::{
    is_nginx_t, nginx_t_files, parse_to_json, DiskFs, FileSystem, JsonStyle, Options,
};

use crate::cli::{ConfigParseArgs, ParseFormat};

/// Returns the exit status: 0 when the config parsed, 1 when it has errors (printed in the JSON).
pub fn run(args: &ConfigParseArgs) -> Result<u8> {
    let bytes = if args.file == "-" {
        let mut b = Vec::new();
        io::stdin()
            .read_to_end(&mut b)
            .context("reading the config from stdin")?;
        b
    } else {
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file))?
    };
    let opts = Options {
        single_file: args.single_file,
        comments: args.include_comments,
        check_ctx: !args.syntax_only,
        check_args: !args.syntax_only,
        ..Options::default()
    };
    let style = JsonStyle {
        single_file: args.single_file,
        indent: args.pretty.then_some(4),
    };
    let ParseFormat::Crossplane = args.format;
    // Each file's JSON is made on the thread that parsed it, as it is parsed.
    let dump = is_nginx_t(&bytes).then(|| nginx_t_files(&bytes)).flatten();
    let (config, json) = match dump {
        Some((dump, main)) => parse_to_json(&dump, &main, &opts, style),
        None => {
            let name = if args.file == "-" {
                "<stdin>"
            } else {
                args.file.as_str()
            };
            let fs = MainInMemory {
                name,
                bytes: &bytes,
                disk: DiskFs::default(),
            };
            parse_to_json(&fs, name, &opts, style)
        }
    };
    // The pieces are written as they are: no buffer of ours in between.
    let mut out = crate::report::unbuffered_stdout();
    json.write(&mut out).context("writing the JSON")?;
    out.flush().context("writing the JSON")?;
    let failed = config.errors().next().is_some();
    Ok(u8::from(failed))
}

/// The main file as already read (it may be stdin), every other file from disk.
struct MainInMemory<'a> {
    name: &'a str,
    bytes: &'a [u8],
    disk: DiskFs,
}

impl FileSystem for MainInMemory<'_> {
    fn check_open(&self, path: &str) -> io::Result<()> {
        if path == self.name {
            return Ok(());
        }
        self.disk.check_open(path)
    }
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        if path == self.name {
            return Ok(self.bytes.to_vec());
        }
        self.disk.read(path)
    }
    fn read_into(&self, path: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        if path == self.name {
            buf.clear();
            buf.extend_from_slice(self.bytes);
            return Ok(());
        }
        self.disk.read_into(path, buf)
    }
    fn exists(&self, path: &str) -> bool {
        path == self.name || self.disk.exists(path)
    }
    fn is_dir(&self, path: &str) -> bool {
        self.disk.is_dir(path)
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        self.disk.list_dir(path)
    }
}
