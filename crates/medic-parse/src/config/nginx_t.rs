//! `nginx -T` output: every config file nginx read, each after a `# configuration file PATH:`
//! line (`ngx_dump_config` in `src/core/nginx.c` writes the header, the file's bytes, then one
//! `LF`). The `nginx: the configuration file ... syntax is ok` lines go to stderr and often
//! precede the dump when both streams are captured; anything before the first header is
//! ignored. Each section is parsed under its real name with its own line numbers, and includes
//! resolve to the sections, never to the disk of the machine reading the dump.

use super::fs::MemFs;
use super::parser::{parse_with, Options};
use super::Config;

const HEADER: &[u8] = b"# configuration file ";

/// The files of a dump, in dump order (the main file first). `None` if `text` has no header.
pub fn split_nginx_t(text: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut sections: Vec<(String, usize, usize)> = Vec::new(); // (path, content start, header start)
    let mut pos = 0;
    while pos < text.len() {
        let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i);
        let line = &text[pos..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(HEADER) {
            if let Some(path) = rest.strip_suffix(b":") {
                if !path.is_empty() {
                    sections.push((
                        String::from_utf8_lossy(path).into_owned(),
                        (end + 1).min(text.len()),
                        pos,
                    ));
                }
            }
        }
        pos = end + 1;
    }
    if sections.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(sections.len());
    for (i, (path, start, _)) in sections.iter().enumerate() {
        let stop = sections.get(i + 1).map_or(text.len(), |s| s.2);
        let mut body = &text[*start..stop.max(*start)];
        // The LF nginx adds after each file.
        if let Some(b) = body.strip_suffix(b"\n") {
            body = b;
        }
        // nginx dumps a file once; keep the first copy if a path repeats.
        if !out.iter().any(|(p, _): &(String, Vec<u8>)| p == path) {
            out.push((path.clone(), body.to_vec()));
        }
    }
    Some(out)
}

/// Whether `text` looks like `nginx -T` output (a header in its first lines).
pub fn is_nginx_t(text: &[u8]) -> bool {
    let head = &text[..text.len().min(64 * 1024)];
    head.split(|&b| b == b'\n')
        .take(16)
        .any(|l| l.starts_with(HEADER))
}

/// Parses an `nginx -T` dump. `None` if it is not one.
pub fn parse_nginx_t(text: &[u8], opts: &Options) -> Option<Config> {
    let (fs, main) = nginx_t_files(text)?;
    Some(parse_with(&fs, &main, opts))
}

/// The files of a dump to parse from, and the main file's name. `None` if it is not one.
pub fn nginx_t_files(text: &[u8]) -> Option<(MemFs, String)> {
    let sections = split_nginx_t(text)?;
    let main = sections.first()?.0.clone();
    let mut fs = MemFs::default();
    for (p, b) in sections {
        fs.insert(p, b);
    }
    Some((fs, main))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &[u8] = b"nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
nginx: configuration file /etc/nginx/nginx.conf test is successful
# configuration file /etc/nginx/nginx.conf:
user www-data;
http {
    include /etc/nginx/conf.d/*.conf;
    include mime.types;
}

# configuration file /etc/nginx/conf.d/a.conf:
server {
    listen 80;
}

# configuration file /etc/nginx/mime.types:
types { text/html html; }

";

    #[test]
    fn splits_and_resolves_to_sections() {
        assert!(is_nginx_t(DUMP));
        let s = split_nginx_t(DUMP).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].0, "/etc/nginx/conf.d/a.conf");
        assert_eq!(s[1].1, b"server {\n    listen 80;\n}\n");
        let c = parse_nginx_t(DUMP, &Options::nginx()).unwrap();
        assert_eq!(
            c.errors().count(),
            0,
            "{:?}",
            c.errors().collect::<Vec<_>>()
        );
        assert_eq!(c.files.len(), 3);
        assert_eq!(c.files[2].path.to_str(), Some("/etc/nginx/mime.types"));
        let http = &c.files[0].parsed[1];
        assert_eq!(http.line, 2);
        assert_eq!(http.block.as_ref().unwrap()[0].includes(), [1]);
        let listen = &c.files[1].parsed[0].block.as_ref().unwrap()[0];
        assert_eq!((listen.line, listen.file), (2, 1));
    }

    #[test]
    fn not_a_dump() {
        assert!(!is_nginx_t(b"user x;\n"));
        assert!(parse_nginx_t(b"user x;\n", &Options::default()).is_none());
    }
}
