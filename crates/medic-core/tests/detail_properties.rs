//! The error summary's `detail` (what sets entries of one class and upstream apart) reads any
//! bytes without panicking, and finds what nginx writes.

use medic_core::logs::error_summary::detail;
use medic_parse::error_log::{FailureClass, Level};
use proptest::prelude::*;

proptest! {
    #[test]
    fn never_panics(msg in proptest::collection::vec(any::<u8>(), 0..400), class in 0usize..FailureClass::COUNT, emerg in any::<bool>()) {
        let level = if emerg { Level::Emerg } else { Level::Error };
        let _ = detail(FailureClass::ALL[class], level, &msg, Some(&msg));
    }

    #[test]
    fn zone_is_found_in_any_context(prefix in "[a-z ,:0-9.]{0,40}", zone in "[a-z_]{1,16}") {
        let msg = format!("limiting requests, excess: 0.500 by zone \"{zone}\"{prefix}");
        prop_assert_eq!(
            detail(FailureClass::RateLimited, Level::Error, msg.as_bytes(), None),
            Some(zone.as_bytes())
        );
    }
}

#[test]
fn what_nginx_writes() {
    let d = |c, m: &str| {
        detail(c, Level::Error, m.as_bytes(), None).map(|b| String::from_utf8_lossy(b).into_owned())
    };
    assert_eq!(
        d(FailureClass::TlsVerify, "upstream SSL certificate verify error: (10:certificate has expired) while SSL handshaking to upstream").as_deref(),
        Some("10:certificate has expired")
    );
    assert_eq!(
        d(FailureClass::TlsVerify, "upstream SSL certificate does not match \"upstream.test\" while SSL handshaking to upstream").as_deref(),
        Some("does not match")
    );
    assert_eq!(
        d(FailureClass::TlsHandshake, "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream").as_deref(),
        Some("wrong version number")
    );
    assert_eq!(
        d(FailureClass::TlsHandshake, "SSL_do_handshake() failed (SSL: error:0A000458:SSL routines::tlsv1 unrecognized name:SSL alert number 112) while SSL handshaking to upstream").as_deref(),
        Some("tlsv1 unrecognized name")
    );
    assert_eq!(
        d(
            FailureClass::DnsFailure,
            "app.test could not be resolved (3: Host not found)"
        )
        .as_deref(),
        Some("app.test")
    );
    assert_eq!(
        d(
            FailureClass::DnsFailure,
            "host not found in upstream \"backend.invalid:8080\" in /x/nginx.conf:12"
        )
        .as_deref(),
        Some("backend.invalid:8080")
    );
    assert_eq!(
        d(FailureClass::FastcgiStderr, "FastCGI sent in stderr: \"Primary script unknown\" while reading response header from upstream").as_deref(),
        Some("Primary script unknown")
    );
    assert_eq!(
        detail(
            FailureClass::DnsFailure,
            Level::Emerg,
            b"host not found in upstream \"x\"",
            None
        ),
        Some(&b"emerg"[..])
    );
}
