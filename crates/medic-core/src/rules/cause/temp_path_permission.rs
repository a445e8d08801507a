use medic_parse::error_log::FailureClass;

use super::temp_file_error::temp_dir_of;
use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `open() "/var/lib/nginx/proxy/3/00/0000000003" failed (13: Permission denied) while
    /// reading upstream`: the nginx workers may not write the temp directory they buffer
    /// bodies in. The classic: nginx's `user` was changed (`www-data` to `nginx`), and the
    /// temp directories (`/var/lib/nginx/{body,proxy,fastcgi}`, or the compiled-in
    /// `*_temp`) still belong to the old one.
    ///
    /// ## Why it causes 502
    /// Small responses fit the `proxy_buffers` and work, which hides it. A response larger
    /// than the buffers goes to a temp file; nginx has already sent the header, so the client
    /// gets the upstream's status, usually 200, and a body cut short (downloads that stop,
    /// `ERR_CONTENT_LENGTH_MISMATCH`). A request body larger than `client_body_buffer_size`
    /// (an upload) fails with 500.
    ///
    /// ## Evidence
    /// The failures in the error log, with the temp path, and the config's `user`.
    ///
    /// ## Fix
    /// Give the temp directories to the workers' user: `chown -R www-data: /var/lib/nginx`
    /// (the user of `user`), then retry; or set `proxy_temp_path` (and
    /// `client_body_temp_path`, `fastcgi_temp_path`) to a directory that user owns.
    pub struct TempPathPermission = "temp-path-permission", "nginx workers may not write their temp directory";
    time = "2 min", risk = "low";
}

impl Cause for TempPathPermission {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TempFileError]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let line = &g.log?.first_line.text;
        if !line.contains("(13: ") {
            return None;
        }
        let dir = temp_dir_of(line)?;
        let model = g.facts.models.first();
        let user = model.map_or_else(|| "www-data".to_string(), |m| m.worker_user().name);
        let mut f = g.finding(
            self,
            format!("nginx workers ({user}) may not write their temp directory {dir}: large responses are cut off, large uploads fail"),
            backend_fix(
                self,
                format!("give {dir} to the workers' user ({user})"),
                vec![
                    format!("see who owns it: `ls -ld {dir}` (and its subdirectories: `find {dir} ! -user {user} | head`)"),
                    format!("give it to the workers: `chown -R {user}: {dir}`; no reload is needed"),
                ],
                vec![format!("ls -ld {dir}"), format!("chown -R {user}: {dir}")],
            ),
        );
        if let Some(src) = model.and_then(|m| m.user.as_ref()?.src.as_ref()) {
            f.evidence.push(Evidence::config(src));
        } else {
            f.evidence.push(Evidence::other(
                "config",
                "nginx.conf".to_string(),
                format!(
                    "no `user` directive: the workers run as {user} (or nginx's compiled-in user)"
                ),
            ));
        }
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use medic_parse::error_log::FailureClass;

    use crate::facts::{Impact, LogLine};
    use crate::logs::error_summary::AFTER_HEADER;
    use crate::rules::cause::tests::{log_group, post_mortem, top};

    fn temp_failure(errno: &str) -> crate::facts::LogGroup {
        let mut g = log_group(FailureClass::TempFileError, Some("127.0.0.1:8080"), None, 4);
        g.first_line = LogLine {
            source: "/var/log/nginx/error.log:9".into(),
            text: format!("2026/11/20 14:32:10 [crit] 7#7: *3 open() \"/var/lib/nginx/proxy/3/00/0000000003\" failed ({errno}) while reading upstream, client: 127.0.0.1"),
        };
        g
    }

    #[test]
    fn fires_on_permission_denied_with_the_directory_and_user() {
        let f = top(&post_mortem(vec![temp_failure("13: Permission denied")]));
        assert_eq!(f.id, "temp-path-permission");
        assert_eq!(f.status, None, "a cut-off 200 or a 500, never a 502");
        assert!(f.title.contains("/var/lib/nginx/proxy"), "{}", f.title);
        assert!(f
            .fix
            .commands
            .iter()
            .any(|c| c == "chown -R www-data: /var/lib/nginx/proxy"));
    }

    #[test]
    fn stays_quiet_on_a_full_disk() {
        let f = top(&post_mortem(vec![temp_failure(
            "28: No space left on device",
        )]));
        assert_eq!(f.id, "temp-file-error");
    }

    /// A reset after the header went out: the clients got 200 and a body cut short.
    #[test]
    fn a_failure_after_the_header_is_a_cut_off_response() {
        let mut g = log_group(
            FailureClass::UpstreamReset,
            Some("127.0.0.1:8080"),
            Some(AFTER_HEADER),
            2,
        );
        g.impact = Some(Impact {
            requests: 2,
            statuses: [("200".to_string(), 2)].into(),
            ..Default::default()
        });
        let f = top(&post_mortem(vec![g]));
        assert_eq!(f.id, "upstream-reset");
        assert_eq!(f.status, None);
        assert!(
            f.title.contains("cut-off response, not a 502"),
            "{}",
            f.title
        );
        assert_eq!(f.impact.as_ref().map(|i| i.cut_off), Some(2));
    }
}
