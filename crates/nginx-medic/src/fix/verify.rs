//! Did the fix cure it? After the reload (or the restart), the targets the fixed directives
//! point at are probed again, with the config as it is now on disk, and judged by what the
//! cause was; and the error log must show no new failure of the fixed class for them.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use medic_core::config::{build, BuildOptions, Model, Target};
use medic_core::facts::{ProbedTarget, Skipped};
use medic_parse::error_log::{self, FailureClass};

use super::apply::Check;
use super::plan::Plan;
use medic_core::rules::Change;

/// What "healthy" means for a fixed cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Something accepts connections there.
    Connects,
    /// The response header fits the (new) buffer.
    HeaderFits,
    /// nginx's own TLS handshake succeeds.
    Handshakes,
    /// The first byte comes within the (new) timeout.
    Answers,
    /// A config-only fix (a burst): nothing to probe, only the error log.
    LogOnly,
}

fn expect_of(id: &str) -> Expect {
    match id {
        "header-too-big" => Expect::HeaderFits,
        "tls-sni-required" => Expect::Handshakes,
        "slow-backend" => Expect::Answers,
        "rate-limited" | "limit-req-no-burst" => Expect::LogOnly,
        _ => Expect::Connects,
    }
}

/// One fixed finding to verify.
#[derive(Clone, Debug)]
struct Fixed {
    id: &'static str,
    expect: Expect,
    /// The directives the fix anchored on (`FILE`, line): the passes to probe are those.
    anchors: Vec<(String, u32)>,
    /// The finding's upstream, as nginx named it before the fix.
    upstream: Option<String>,
    class: Option<FailureClass>,
}

/// The [`Check`] of a plan: probes with the config on disk, reads the error logs.
pub struct Verifier {
    config: Option<String>,
    prefix: Option<String>,
    fixed: Vec<Fixed>,
    probe_wait: Duration,
}

impl Verifier {
    pub fn new(
        plan: &Plan,
        findings: &[medic_core::rules::Finding],
        config: Option<String>,
        prefix: Option<String>,
        probe_wait: Duration,
    ) -> Verifier {
        let mut fixed = Vec::new();
        for item in plan.items.iter().filter(|i| i.apply) {
            let finding = findings
                .iter()
                .find(|f| f.id == item.id && f.upstream == item.upstream);
            let class = finding
                .and_then(|f| f.class)
                .and_then(FailureClass::from_id);
            let mut anchors: Vec<(String, u32)> = item
                .changes
                .iter()
                .filter_map(Change::anchor)
                .map(|s| (s.file().to_string(), s.line()))
                .collect();
            // A change without a directive (a reload: the name is resolved again) is verified
            // on the passes the finding cites: the stale address it names is no target any
            // more.
            if anchors.is_empty() {
                anchors.extend(
                    finding
                        .into_iter()
                        .flat_map(|f| f.evidence.iter())
                        .filter(|e| e.kind == "config")
                        .filter_map(|e| {
                            e.at.as_ref().map(|(file, line)| (file.to_string(), *line))
                        }),
                );
            }
            fixed.push(Fixed {
                id: item.id,
                expect: expect_of(item.id),
                anchors,
                upstream: item.upstream.clone(),
                class,
            });
        }
        Verifier {
            config,
            prefix,
            fixed,
            probe_wait,
        }
    }

    /// The models of the config on disk now.
    fn models(&self) -> Result<Vec<Model>, String> {
        let mut skipped = Vec::new();
        let loaded = crate::load::load_with(
            self.config.as_deref(),
            self.prefix.as_deref(),
            false,
            &mut skipped,
        )
        .map_err(|e| format!("read the config again: {e:#}"))?
        .ok_or("the config could not be read again")?;
        Ok(loaded
            .iter()
            .map(|l| {
                build(
                    &l.cfg,
                    &BuildOptions {
                        prefix: l.prefix.clone(),
                    },
                )
            })
            .collect())
    }

    /// The targets (as nginx names them) of the passes at a fix's anchors, or that an anchor
    /// (an upstream `server`) belongs to; else the finding's own upstream.
    fn targets_of(f: &Fixed, models: &[Model]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in models {
            for p in &m.passes {
                let at = (p.src.file().to_string(), p.src.line());
                let through_group = match &p.target {
                    Target::Group { index, .. } => m.upstreams.get(*index).is_some_and(|u| {
                        u.servers.iter().any(|s| {
                            f.anchors
                                .contains(&(s.src.file().to_string(), s.src.line()))
                        })
                    }),
                    _ => false,
                };
                if f.anchors.contains(&at) || through_group {
                    let t = p.target.display();
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
        }
        if out.is_empty() {
            out.extend(f.upstream.clone());
        }
        out
    }
}

/// Why a probed target is not healthy for `expect`, or `None` when it is.
fn unhealthy(t: &ProbedTarget, expect: Expect) -> Option<String> {
    let facts = &t.facts;
    let connects = facts.tcp.iter().any(|c| c.connect.is_ok())
        || facts.unix.as_ref().is_some_and(|u| u.connect.is_ok());
    let name = &facts.upstream;
    if expect != Expect::LogOnly && !connects {
        let how: Vec<String> = facts
            .tcp
            .iter()
            .map(|c| format!("{}: {}", c.address, c.connect.label()))
            .chain(
                facts
                    .unix
                    .as_ref()
                    .map(|u| format!("unix: {}", u.connect.label())),
            )
            .collect();
        return Some(format!(
            "{name} does not accept connections ({})",
            how.join(", ")
        ));
    }
    match expect {
        Expect::Connects | Expect::LogOnly => None,
        Expect::HeaderFits => match &facts.http {
            Some(h) if h.header_exceeds_buffer => Some(format!(
                "{name} still sends a header larger than the buffer ({} bytes > {})",
                h.header_bytes.unwrap_or(0),
                h.buffer_size
            )),
            Some(h) if h.status.is_some() => None,
            Some(h) => Some(format!(
                "{name}: no HTTP answer to measure ({})",
                h.error.as_deref().unwrap_or("no status line")
            )),
            None => Some(format!("{name}: the HTTP probe did not run")),
        },
        Expect::Handshakes => match t.tls.as_ref().and_then(|t| t.as_nginx()) {
            Some(v) if v.outcome.is_ok() => None,
            Some(v) => Some(format!(
                "{name}: nginx's TLS handshake still fails ({:?})",
                v.outcome
            )),
            None => Some(format!("{name}: the TLS probe did not run")),
        },
        Expect::Answers => {
            let hangs = facts.http.as_ref().is_some_and(|h| h.hangs())
                || facts.fastcgi.as_ref().is_some_and(|c| c.hangs());
            hangs.then(|| format!("{name} still takes longer than the timeout"))
        }
    }
}

impl Check for Verifier {
    fn check(&mut self, since: &[(PathBuf, u64)]) -> Result<Vec<String>, String> {
        let mut evidence = Vec::new();
        // The error log first: a client's request that failed the same way since the change
        // is the plainest proof that it did not cure.
        for (path, offset) in since {
            for line in lines_since(path, *offset)? {
                let Some(e) = error_log::parse(line.as_bytes()) else {
                    continue;
                };
                let class = error_log::classify(&e);
                let upstream = e
                    .context
                    .upstream
                    .map(|u| String::from_utf8_lossy(u).into_owned());
                for f in &self.fixed {
                    let same_target = match (&upstream, &f.upstream) {
                        (Some(u), Some(want)) => u.contains(want.as_str()),
                        _ => false,
                    };
                    if f.class == Some(class) && same_target {
                        return Err(format!(
                            "{}: a new {} failure since the change: {line}",
                            path.display(),
                            class.id()
                        ));
                    }
                }
            }
        }
        let probed: Vec<&Fixed> = self
            .fixed
            .iter()
            .filter(|f| f.expect != Expect::LogOnly)
            .collect();
        if probed.is_empty() {
            evidence.push("no new failure of the fixed class in the error log".to_string());
            return Ok(evidence);
        }
        let models = self.models()?;
        let host = crate::host::System::default();
        for f in probed {
            let targets = Self::targets_of(f, &models);
            let mut skipped: Vec<Skipped> = Vec::new();
            let probed = crate::probe::probe_targets_on(
                &host,
                &models,
                Some(&targets),
                crate::probe::Wait {
                    margin: Duration::from_millis(500),
                    cap: Some(self.probe_wait),
                },
                16,
                None,
                &mut skipped,
            );
            if probed.targets.is_empty() {
                return Err(format!(
                    "{}: no target of the fixed directives to probe ({})",
                    f.id,
                    targets.join(", ")
                ));
            }
            for t in &probed.targets {
                if let Some(why) = unhealthy(t, f.expect) {
                    return Err(format!("{}: {why}", f.id));
                }
                evidence.push(format!("{}: {} probed healthy", f.id, t.facts.upstream));
            }
        }
        Ok(evidence)
    }
}

/// The complete lines of `path` after `offset` (at most 4 MiB of them: enough to see a new
/// failure, bounded on a busy host).
fn lines_since(path: &std::path::Path, offset: u64) -> Result<Vec<String>, String> {
    const MAX: u64 = 4 << 20;
    // A pipe is refused before it is opened: opening it could wait forever for a writer.
    let mut f = match medic_parse::input::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("read {}: {e}", path.display())),
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    // Rotated or truncated since: read it from the start.
    let from = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(from))
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(MAX)
        .read_to_end(&mut buf)
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&buf);
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    Ok(complete.lines().map(str::to_string).collect())
}
