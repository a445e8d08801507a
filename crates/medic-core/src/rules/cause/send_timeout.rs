use medic_parse::error_log::FailureClass;

use super::support::timeouts::{requests_of, timeout_evidence, timeout_of};
use super::{nginx_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Finding};

rule! {
    /// ## What it detects
    /// `upstream timed out (110: Connection timed out) while sending request to upstream`: the
    /// upstream accepted the connection but did not read the request (typically a large
    /// request body: an upload) for longer than the effective `proxy_send_timeout` /
    /// `fastcgi_send_timeout` (default 60s). This is what the log alone proves; live, the
    /// finding is `slow-backend` when the backend answers the probe.
    ///
    /// ## Why it causes 504
    /// nginx writes the request (and the buffered body) to the upstream; when the upstream's
    /// receive buffer stays full between two writes for the send timeout, nginx gives up and
    /// answers 504 Gateway Time-out. The backend is busy with something else (all workers
    /// busy), reads slowly, or hangs.
    ///
    /// ## Evidence
    /// The timeouts in the error log (and the requests they name); the `*_pass` line; the
    /// effective send timeout and where it is set.
    ///
    /// ## Fix
    /// Check whether the backend's workers are all busy or hung and why (its logs); for large
    /// uploads, let the backend read bodies promptly or raise `proxy_send_timeout` for the
    /// upload `location` only, then `nginx -t` and `systemctl reload nginx`.
    pub struct SendTimeout = "send-timeout", "the upstream did not read the request within the send timeout";
    time = "5-30 min", risk = "medium: masks slowness";
}

impl Cause for SendTimeout {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::SendTimeout]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let pass = g.passes.first().map(|(_, p)| *p);
        let (directive, value) = timeout_of(pass, true);
        let requests = requests_of(g);
        let mut f = g.finding(
            self,
            format!("{up} did not read the request within {directive} {value}"),
            nginx_fix(self,
                format!("find why {up} stops reading requests; raise {directive} only for the upload location"),
                vec![
                    if requests.is_empty() {
                        "see which requests time out (large bodies? one endpoint?) in the access log".to_string()
                    } else {
                        format!("the requests that timed out include {}", requests.join(", "))
                    },
                    "check the backend's workers: all busy or hung means it cannot read new requests".to_string(),
                    format!("for legitimately slow uploads only: `{directive} 120s;` in that `location`"),
                ]
            ),
        );
        f.evidence.push(timeout_evidence(pass, true));
        Some(f)
    }
}
