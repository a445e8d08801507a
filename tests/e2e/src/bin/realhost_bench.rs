//! `diagnose` on a real host, timed against the manual procedure it replaces.
//!
//! Boots the real-host container (a booted systemd with nginx, PHP-FPM, pm2 and ~100 unit
//! files), stages the crash loop of `my-backend.service`, then runs, inside, N times each:
//! - `nginx-medic diagnose --format json` (live: probes, listeners, nginx -t, supervisors);
//! - the peer: the commands an on-call engineer types for the same answer (`tail` of the error
//!   log, `ss -tlnp`, `systemctl status` and `journalctl -u` of the unit, `nginx -t`), run
//!   back to back, without the reading and thinking between them.
//!
//! Prints the medians and the ratio. Usage (as root, after `cargo build --release`):
//! `NGINX_MEDIC_BIN=target/release/nginx-medic cargo run --release -p medic-e2e --bin realhost-bench [RUNS]`

use std::time::{Duration, Instant};

use medic_e2e::realhost::{scenarios, RealHost};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(11);
    let host = RealHost::boot();
    let staged = scenarios::crash_loop(&host);
    let units = host.exec_ok(&[
        "bash",
        "-c",
        "ls /etc/systemd/system /lib/systemd/system | grep -c -e '\\.service$' -e '\\.socket$'",
    ]);
    println!(
        "real host: {} (unit files: {}), staged {}",
        host.name(),
        units.trim(),
        staged.scenario
    );
    let manual: Vec<Vec<&str>> = vec![
        vec!["tail", "-n", "50", "/var/log/nginx/error.log"],
        vec!["ss", "-tlnp"],
        vec!["systemctl", "status", "my-backend.service", "--no-pager"],
        vec![
            "journalctl",
            "-u",
            "my-backend.service",
            "-n",
            "50",
            "--no-pager",
        ],
        vec!["nginx", "-t"],
    ];
    let mut medic = Vec::new();
    let mut peer = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let run = host.medic(&["diagnose", "--format", "json"]);
        medic.push(t.elapsed());
        assert!(matches!(run.code(), Some(0 | 1)), "{run}");
        let t = Instant::now();
        for c in &manual {
            host.exec(c);
        }
        peer.push(t.elapsed());
    }
    let (m, p) = (median(medic), median(peer));
    println!("nginx-medic diagnose (live):             median {m:>8.1?} over {runs} runs");
    println!(
        "manual commands (tail, ss, systemctl status, journalctl -u, nginx -t): median {p:>8.1?}"
    );
    println!(
        "diagnose / manual commands = {:.2}x; bound 500 ms: {}",
        m.as_secs_f64() / p.as_secs_f64(),
        if m < Duration::from_millis(500) {
            "OK"
        } else {
            "OVER"
        }
    );
}
