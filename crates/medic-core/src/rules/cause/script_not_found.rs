use medic_parse::error_log::FailureClass;

use super::support::timeouts::requests_of;
use super::{nginx_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding, Severity};

rule! {
    /// ## What it detects
    /// `FastCGI sent in stderr: "Primary script unknown" while reading response header from
    /// upstream`: PHP-FPM was asked to run a script file that does not exist (or that it may
    /// not see: `chroot`, `open_basedir`). The file it looked for is the `SCRIPT_FILENAME`
    /// FastCGI parameter nginx sent, usually `$document_root$fastcgi_script_name`. The log text
    /// alone proves it.
    ///
    /// ## Why it causes 404
    /// PHP-FPM answers `Status: 404 Not Found` with the body `File not found.`; nginx passes it
    /// on. This is not a 5xx, but it is often reported as "PHP is broken": every PHP page
    /// fails while static files work. The usual culprits: `root` set inside a `location` other
    /// than the PHP one, `SCRIPT_FILENAME` missing (`include fastcgi_params;` alone does not set
    /// it on Debian) or built from the wrong variable, or PHP-FPM running in a container that
    /// sees another file tree.
    ///
    /// ## Evidence
    /// The entries in the error log (with the requested URI); the `fastcgi_pass` line; the
    /// `SCRIPT_FILENAME` and `DOCUMENT_ROOT` parameters in effect there.
    ///
    /// ## Fix
    /// Make `SCRIPT_FILENAME` name the real file: `fastcgi_param SCRIPT_FILENAME
    /// $document_root$fastcgi_script_name;` with `root` set at the `server` level to the
    /// directory that holds the scripts (check with `ls -l ROOT/URI`); for PHP-FPM in a
    /// container, the path as the container sees it. Then `nginx -t` and `systemctl reload
    /// nginx`.
    pub struct ScriptNotFound = "script-not-found", "PHP-FPM found no script at SCRIPT_FILENAME (404)";
    time = "5 min", risk = "low";
}

impl Cause for ScriptNotFound {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::FastcgiStderr]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        if g.detail != Some("Primary script unknown") {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("PHP-FPM");
        let params: Vec<_> = g
            .passes
            .first()
            .map(|(_, p)| {
                p.settings
                    .params
                    .iter()
                    .filter(|x| x.name == "SCRIPT_FILENAME" || x.name == "DOCUMENT_ROOT")
                    .collect()
            })
            .unwrap_or_default();
        let script = params.iter().find(|p| p.name == "SCRIPT_FILENAME");
        let requests = requests_of(g);
        let mut title =
            format!("{up} found no script for the requests (Primary script unknown: 404)");
        if let Some(s) = script {
            title = format!(
                "{up} found no script at SCRIPT_FILENAME {} (Primary script unknown: 404)",
                s.value
            );
        }
        let mut steps = vec![
            "use `fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;` in the PHP location, with `root` set at the server level to the directory that holds the scripts".to_string(),
        ];
        match (script, requests.first()) {
            (Some(s), Some(r)) => steps.push(format!(
                "check the file exists where SCRIPT_FILENAME ({}) points for {r}: `ls -l` that path",
                s.value
            )),
            (None, _) if !g.passes.is_empty() => steps.insert(
                0,
                "no SCRIPT_FILENAME is set for this fastcgi_pass: PHP-FPM has no file to run".to_string(),
            ),
            _ => {}
        }
        steps.push(
            "PHP-FPM in a container or chroot: SCRIPT_FILENAME must be the path as PHP-FPM sees it"
                .to_string(),
        );
        let mut f = g.finding(
            self,
            title,
            nginx_fix(
                self,
                "make SCRIPT_FILENAME (root + the script name) point at the real PHP file",
                steps,
            ),
        );
        f.severity = Severity::Warning;
        f.status = Some(404);
        for p in &params {
            f.evidence.push(Evidence::config(&p.src));
        }
        if script.is_none() && !g.passes.is_empty() {
            f.evidence.push(Evidence::other(
                "config",
                "fastcgi_param".to_string(),
                "no `fastcgi_param SCRIPT_FILENAME` in effect for this fastcgi_pass".to_string(),
            ));
        }
        Some(f)
    }
}
