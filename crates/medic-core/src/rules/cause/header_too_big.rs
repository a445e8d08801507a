use medic_parse::error_log::FailureClass;

use super::support::tls::setting_evidence;
use super::{nginx_fix, Cause};
use crate::config::PassKind;
use crate::rules::group::Group;
use crate::rules::{rule, Change, Evidence, Finding, Remedy, Risk};

rule! {
    /// ## What it detects
    /// `upstream sent too big header while reading response header from upstream`: the
    /// upstream's response header (status line and header fields: often large `Set-Cookie`,
    /// `Link` or `Content-Security-Policy` headers) does not fit in `proxy_buffer_size` (or
    /// `fastcgi_buffer_size`, `uwsgi_buffer_size`, ...; default one memory page, 4k or 8k). The
    /// log text alone proves it; live, the HTTP probe measures the header.
    ///
    /// ## Why it causes 502
    /// nginx reads the whole response header into that one buffer before it can pass anything
    /// on. When the buffer fills before the header ends, it gives up on the response and answers
    /// 502 Bad Gateway, although the upstream answered fine.
    ///
    /// ## Evidence
    /// The errors in the error log; the `*_pass` line and the effective `*_buffer_size` (or
    /// its default); live, the header size the probe measured against it.
    ///
    /// ## Fix
    /// Raise `proxy_buffer_size` above the header size, rounded up to a power of two
    /// (`proxy_buffer_size 16k;`), and `proxy_buffers` to match (`proxy_buffers 8 16k;`, or
    /// `nginx -t` fails on `proxy_busy_buffers_size`); the same with `fastcgi_buffer_size` /
    /// `fastcgi_buffers` for PHP-FPM. Or make the upstream send smaller headers. `nginx -t`;
    /// `systemctl reload nginx`.
    ///
    /// `nginx-medic fix` does it (risk low): `*_buffer_size` and `*_buffers 8 SIZE` in the block of
    /// each `*_pass` to the upstream (replacing the ones written there), tested with `nginx -t`,
    /// reloaded, verified by measuring the header again.
    pub struct HeaderTooBig = "header-too-big", "the upstream's response header does not fit nginx's buffer";
    time = "5 min", risk = "low";
}

impl Cause for HeaderTooBig {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::HeaderTooBig]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let pass = g.passes.first().map(|(_, p)| *p);
        let kind = pass.map_or(PassKind::Proxy, |p| p.kind);
        let prefix = kind.prefix();
        let http = g.targets.iter().find_map(|t| {
            let h = t.facts.http.as_ref()?;
            Some((h, h.header_bytes?))
        });
        let buffer = pass
            .map(|p| p.settings.buffer_size.value)
            .or(http.map(|(h, _)| h.buffer_size));
        let title = match (http, buffer) {
            (Some((h, n)), _) => format!(
                "{up} sends a {}{n}-byte response header; {prefix}_buffer_size is {}",
                if h.header_complete { "" } else { "more than " },
                size_text(h.buffer_size)
            ),
            (None, Some(b)) => format!(
                "{up} sent a response header larger than {prefix}_buffer_size ({})",
                size_text(b)
            ),
            (None, None) => format!("{up} sent a response header larger than {prefix}_buffer_size"),
        };
        // Above the measured header with a quarter to spare (headers grow: cookies), a power
        // of two in k; without a measure, twice the buffer.
        let wanted = match (http, buffer) {
            (Some((_, n)), _) => {
                (n + n / 4 + 1).max(8192).div_ceil(1024).next_power_of_two() * 1024
            }
            (None, Some(b)) => (b * 2).max(8192).div_ceil(1024).next_power_of_two() * 1024,
            (None, None) => 16384,
        };
        let wanted = size_text(wanted);
        let mut steps = vec![format!(
            "set `{prefix}_buffer_size {wanted};` where the `{}` is (or at `http` level)",
            kind.directive()
        )];
        let has_buffers = matches!(
            kind,
            PassKind::Proxy | PassKind::Fastcgi | PassKind::Uwsgi | PassKind::Scgi
        );
        if has_buffers {
            steps.push(format!(
                "and `{prefix}_buffers 8 {wanted};`: with small buffers `nginx -t` fails (`{prefix}_busy_buffers_size` must be less than the size of all `{prefix}_buffers` minus one)"
            ));
        }
        if http.is_none() {
            steps.push(format!(
                "measure the header to be sure: `curl -s -o /dev/null -D - http://{up}/PATH | wc -c`, and double the size again if the error persists"
            ));
        }
        steps.push("better still, find out why the upstream sends such large headers (cookies piling up, debug headers) and trim them".to_string());
        let mut f = g.finding(
            self,
            title,
            nginx_fix(
                self,
                format!("raise `{prefix}_buffer_size` to {wanted}, above the upstream's header"),
                steps,
            ),
        );
        // Every location that passes to this upstream gets the buffer: the log does not say
        // which one the failing request went through.
        let mut changes = Vec::new();
        for (_, p) in &g.passes {
            changes.push(Change::Set {
                near: p.src.clone(),
                name: format!("{prefix}_buffer_size"),
                args: vec![wanted.clone()],
            });
            if has_buffers {
                changes.push(Change::Set {
                    near: p.src.clone(),
                    name: format!("{prefix}_buffers"),
                    args: vec!["8".into(), wanted.clone()],
                });
            }
        }
        if !changes.is_empty() {
            f.fix = f.fix.clone().with_remedy(Remedy::new(Risk::Low, changes));
        }
        if let Some(p) = pass {
            f.evidence
                .push(setting_evidence(&p.settings.buffer_size, || {
                    format!(
                        "{prefix}_buffer_size {}; (nginx's default: one memory page)",
                        size_text(p.settings.buffer_size.value)
                    )
                }));
        }
        if let Some((h, n)) = http {
            f.evidence.push(Evidence::probe(
                "http",
                format!(
                    "upstream header is {}{n} bytes; {prefix}_buffer_size is {} ({} bytes){}",
                    if h.header_complete { "" } else { "more than " },
                    size_text(h.buffer_size),
                    h.buffer_size,
                    h.status_line
                        .as_deref()
                        .map(|s| format!(": `{s}` for {} {}", h.request.method, h.request.path))
                        .unwrap_or_default()
                ),
            ));
        }
        Some(f)
    }
}

/// A size as nginx's config writes it: `16k`, `1m`, or bytes.
pub(super) fn size_text(b: u64) -> String {
    if b != 0 && b.is_multiple_of(1024 * 1024) {
        format!("{}m", b / (1024 * 1024))
    } else if b != 0 && b.is_multiple_of(1024) {
        format!("{}k", b / 1024)
    } else {
        b.to_string()
    }
}
