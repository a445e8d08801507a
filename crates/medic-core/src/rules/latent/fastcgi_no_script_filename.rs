use crate::config::{Model, PassKind};
use crate::rules::{rule, Evidence, Finding, Rule, RuleDoc};

use super::config_fix;

rule! {
    /// ## What it detects
    /// A `fastcgi_pass` where no `fastcgi_param SCRIPT_FILENAME` is in effect. The usual causes:
    /// `include fastcgi_params;` (Debian's file lacks `SCRIPT_FILENAME`; `fastcgi.conf` has
    /// it), or one `fastcgi_param` written in the location, which drops every `fastcgi_param`
    /// inherited from the server or `http` level.
    ///
    /// ## Why it causes 502/504
    /// PHP-FPM finds the script by `SCRIPT_FILENAME`. Without it, it logs `Primary script
    /// unknown` and answers `File not found.` (404), or a blank 200 for some setups, on every
    /// request; other FastCGI servers close the connection, which nginx reports as `upstream
    /// prematurely closed FastCGI stdout` and a 502. It is often read as "PHP is down".
    ///
    /// ## Example
    /// ```nginx
    /// location ~ \.php$ {
    ///     include fastcgi_params;
    ///     fastcgi_pass unix:/run/php/php8.2-fpm.sock;
    /// }
    /// ```
    ///
    /// ## Fix
    /// ```nginx
    /// location ~ \.php$ {
    ///     include fastcgi_params;
    ///     fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
    ///     fastcgi_pass unix:/run/php/php8.2-fpm.sock;
    /// }
    /// ```
    /// (or `include fastcgi.conf;`, which sets it).
    pub struct FastcgiNoScriptFilename = "fastcgi-no-script-filename", "fastcgi_pass without SCRIPT_FILENAME";
    time = "5 min", risk = "low";
}

impl Rule for FastcgiNoScriptFilename {
    fn check(&self, model: &Model, out: &mut Vec<Finding>) {
        for pass in &model.passes {
            if pass.kind != PassKind::Fastcgi
                || pass
                    .settings
                    .params
                    .iter()
                    .any(|p| p.name == "SCRIPT_FILENAME")
            {
                continue;
            }
            let mut evidence = vec![Evidence::config(&pass.src)];
            // The level whose fastcgi_param list is in effect: the one that hid the others.
            if let Some(first) = pass.settings.params.first() {
                evidence.push(Evidence::config(&first.src));
            }
            out.push(
                Finding::latent(
                    self.id(),
                    format!(
                        "fastcgi_pass {} without fastcgi_param SCRIPT_FILENAME ({} fastcgi_param in effect)",
                        pass.target.display(),
                        pass.settings.params.len()
                    ),
                    evidence,
                    config_fix(self,
                        "fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;".to_string(),
                        vec![format!(
                            "add `fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;` in the block of {} (or `include fastcgi.conf;` instead of fastcgi_params)",
                            pass.src.location()
                        )]
                    ),
                )
                .upstream(pass.target.display()),
            );
        }
    }
}
