use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::rule;
use crate::rules::Finding;

rule! {
    /// ## What it detects
    /// nginx could not write a temp file it buffers a body in: `open()
    /// "/var/lib/nginx/proxy/3/00/0000000003" failed (28: No space left on device) while
    /// reading upstream`, or a `write()`/`mkdir()` of `*_temp_path` failing, for a reason
    /// other than permissions (those are `temp-path-permission`).
    ///
    /// ## Why it causes 502
    /// A response larger than the `proxy_buffers` goes to a temp file; when that fails after
    /// the header was sent (`while reading upstream`), the client gets the upstream's status,
    /// usually 200, and a body cut short. A request body that cannot be buffered fails with
    /// 500. Neither is a 502, and both hurt clients.
    ///
    /// ## Evidence
    /// The failures in the error log, with the temp path and nginx's errno.
    ///
    /// ## Fix
    /// Free or grow the file system of the temp directory (`df -h`), or move `proxy_temp_path`
    /// (and `client_body_temp_path`, `fastcgi_temp_path`) to one with room; for responses
    /// that need not be buffered, `proxy_max_temp_file_size 0;`.
    pub struct TempFileError = "temp-file-error", "nginx cannot write the temp files it buffers bodies in";
    time = "5-15 min", risk = "low";
}

impl Cause for TempFileError {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TempFileError]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let line = &g.log?.first_line.text;
        let dir = temp_dir_of(line).unwrap_or("the temp directory");
        let errno = super::connect_failed::errno_of(line).unwrap_or("an error");
        Some(g.finding(
            self,
            format!("nginx cannot write its temp files in {dir} ({errno}): large responses are cut off"),
            backend_fix(
                self,
                format!("make {dir} writable with room to spare"),
                vec![
                    format!("how full is it? `df -h {dir}`"),
                    "or move the temp path to a file system with room: `proxy_temp_path /path;` (and `client_body_temp_path`, `fastcgi_temp_path`)".to_string(),
                ],
                vec![format!("df -h {dir}")],
            ),
        ))
    }
}

/// The temp directory of a logged temp file: the quoted path without its hashed levels
/// (`/var/lib/nginx/proxy/3/00/0000000003` -> `/var/lib/nginx/proxy`).
pub(crate) fn temp_dir_of(line: &str) -> Option<&str> {
    let start = line.find('"')? + 1;
    let path = &line[start..start + line[start..].find('"')?];
    let mut dir = path;
    while let Some((parent, last)) = dir.rsplit_once('/') {
        if last.is_empty() || !last.bytes().all(|b| b.is_ascii_hexdigit()) || parent.is_empty() {
            break;
        }
        dir = parent;
    }
    Some(dir)
}

#[cfg(test)]
mod tests {
    use super::temp_dir_of;

    #[test]
    fn the_hashed_levels_are_dropped() {
        let l = r#"open() "/var/lib/nginx/proxy/3/00/0000000003" failed (13: Permission denied) while reading upstream"#;
        assert_eq!(temp_dir_of(l), Some("/var/lib/nginx/proxy"));
        let l = r#"open() "/srv/nginx/client_body_temp/0000000001" failed (28: No space left on device)"#;
        assert_eq!(temp_dir_of(l), Some("/srv/nginx/client_body_temp"));
    }
}
