//! `nginx-medic probe`: live facts about every upstream the config names.
//!
//! Each probe returns facts and says what it could not see (denied, timed out, unsupported)
//! instead of an empty answer. Probes run concurrently with a bound, each within its effective
//! timeout plus a margin. Programs are run with argv and timeouts, never through a shell.
//!
//! - [`listeners`]: who listens where (`/proc/net/*` joined with `/proc/PID/fd`).
//! - [`reach`]: name resolution, TCP connects, unix socket files and the worker user's access.
//! - [`http`]: the request nginx would send, its time to first byte and header size.
//! - [`fastcgi`]: a real FastCGI request for a script that does not exist.
//!
//! Every probe is read-only: it connects, sends one request, and reads the answer.

pub mod dns;
pub mod fastcgi;
pub mod http;
pub mod listeners;
pub mod reach;
pub mod supervisor;
pub mod tls;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use medic_core::config::{build, BuildOptions, Model, Pass, PassKind, Protocol, Target};
use medic_core::facts::{Connect, Listeners, PassRef, ProbeRequest, Skipped, Speaks, TargetFacts};
use serde::Serialize;

use crate::cli::{Format, ProbeArgs};
use crate::config_lint::Tool;
use crate::load::{self, InstanceReport};

/// Version of the JSON layout (docs/probe-json.md).
pub const SCHEMA: u32 = 1;

/// The JSON report of `nginx-medic probe`.
#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub schema: u32,
    pub kind: &'static str,
    pub tool: Tool,
    pub instances: Vec<InstanceReport>,
    pub targets: Vec<TargetReport>,
    /// What the backends' supervisors (systemd, pm2, PHP-FPM) and the kernel know
    /// ([`supervisor::gather`] on the processes that listen at the targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supervisors: Option<supervisor::SupervisorFacts>,
    pub skipped: Vec<Skipped>,
}

/// One target: the plain facts, and the TLS probe's (an `https://` target).
pub use medic_core::facts::ProbedTarget as TargetReport;

/// How long probes wait for an answer: the effective `*_read_timeout` plus `margin`, at most
/// `cap` (`diagnose --probe-wait`: a 3 a.m. diagnosis does not wait out a 60 s timeout).
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    pub margin: Duration,
    pub cap: Option<Duration>,
}

/// What [`probe_all`] saw.
pub struct Probed {
    pub targets: Vec<TargetReport>,
    pub listeners: Listeners,
    pub supervisors: supervisor::SupervisorFacts,
}

/// Probes every target of `models`: listeners, reachability, protocols, TLS; then the
/// supervisors of the processes listening at them. What could not be checked goes to `skipped`.
pub fn probe_all(
    models: &[Model],
    wait: Wait,
    concurrency: usize,
    gather: &supervisor::GatherOptions,
    skipped: &mut Vec<Skipped>,
) -> Probed {
    let host = crate::host::System::default();
    probe_all_on(&host, models, wait, concurrency, gather, skipped)
}

/// [`probe_all`] with the supervisors asked through `host` (a [`crate::host::Recorder`] keeps
/// their answers for `--record`). The supervisors are asked while the probes run.
pub fn probe_all_on(
    host: &dyn crate::host::Host,
    models: &[Model],
    wait: Wait,
    concurrency: usize,
    gather: &supervisor::GatherOptions,
    skipped: &mut Vec<Skipped>,
) -> Probed {
    probe_targets_on(host, models, None, wait, concurrency, Some(gather), skipped)
}

/// [`probe_all_on`], only the targets named in `only` (as nginx names them, or their
/// `upstream` group) when given: `watch` probes the targets of its incidents, not the config.
/// Without `gather`, the supervisors are not asked (`fix` verifying a target wants its answer
/// now, not a second of `pm2 jlist`).
pub fn probe_targets_on(
    host: &dyn crate::host::Host,
    models: &[Model],
    only: Option<&[String]>,
    wait: Wait,
    concurrency: usize,
    gather: Option<&supervisor::GatherOptions>,
    skipped: &mut Vec<Skipped>,
) -> Probed {
    let mut listeners = listeners::gather(skipped);
    // nginx-medic's own sockets (`watch --metrics-listen`) are never a backend: a backend that
    // is down must not look as if it had moved to the metrics port.
    let me = std::process::id();
    listeners
        .sockets
        .retain(|l| !l.processes.iter().any(|p| p.pid == me));
    let accounts = reach::Accounts::read();
    let mut jobs = jobs(models, skipped);
    if let Some(only) = only {
        jobs.retain(|j| {
            only.contains(&j.upstream) || j.group.as_ref().is_some_and(|g| only.contains(g))
        });
    }
    // The supervisors need the targets and the processes listening on them, not the probes'
    // answers: ask them concurrently.
    let mut targets: Vec<String> = Vec::new();
    let mut pids: Vec<u32> = Vec::new();
    for j in &jobs {
        match &j.addr {
            Addr::Unix { path } => {
                targets.push(format!("unix:{path}"));
                pids.extend(
                    listeners
                        .sockets
                        .iter()
                        .filter(|l| l.path.as_deref() == Some(path.as_str()))
                        .flat_map(|l| l.processes.iter().map(|p| p.pid)),
                );
            }
            Addr::Host { port, .. } => {
                targets.push(j.upstream.clone());
                pids.extend(
                    listeners
                        .sockets
                        .iter()
                        .filter(|l| l.port == Some(*port))
                        .flat_map(|l| l.processes.iter().map(|p| p.pid)),
                );
            }
        }
    }
    targets.sort();
    targets.dedup();
    pids.sort_unstable();
    pids.dedup();
    let input = supervisor::GatherInput { pids, targets };
    let (targets, supervisors) = std::thread::scope(|s| {
        let sup = s.spawn(|| {
            gather.map_or_else(supervisor::SupervisorFacts::default, |g| {
                supervisor::gather(host, &input, g)
            })
        });
        let targets = run_jobs(&jobs, models, &listeners, &accounts, wait, concurrency);
        (targets, sup.join().unwrap_or_default())
    });
    Probed {
        targets,
        listeners,
        supervisors,
    }
}

/// Returns the exit status: 0 done, 2 nothing could be probed.
pub fn run(args: &ProbeArgs, color: bool) -> Result<u8> {
    let mut report = ProbeReport {
        schema: SCHEMA,
        kind: "probe",
        tool: Tool {
            name: "nginx-medic",
            version: env!("CARGO_PKG_VERSION"),
        },
        instances: Vec::new(),
        targets: Vec::new(),
        supervisors: None,
        skipped: Vec::new(),
    };
    let Some(models) = load(args, &mut report)? else {
        return Ok(2);
    };
    let margin = Duration::from_millis(args.margin_ms);
    let probed = probe_all(
        &models,
        Wait { margin, cap: None },
        args.concurrency,
        &supervisor::GatherOptions::default(),
        &mut report.skipped,
    );
    report.targets = probed.targets;
    report.supervisors = Some(probed.supervisors);

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Text => write_text(&mut out, &report, color)?,
    }
    out.flush()?;
    Ok(0)
}

/// Reads the config(s): `--config`, or every running nginx. `None`: nothing could be read
/// (the reason is on stderr).
fn load(args: &ProbeArgs, report: &mut ProbeReport) -> Result<Option<Vec<Model>>> {
    let Some(loaded) = load::load(
        args.config.as_deref(),
        args.prefix.as_deref(),
        &mut report.skipped,
    )?
    else {
        return Ok(None);
    };
    Ok(Some(
        loaded
            .into_iter()
            .map(|l| {
                let model = build(
                    &l.cfg,
                    &BuildOptions {
                        prefix: l.prefix.clone(),
                    },
                );
                report.instances.push(l.instance);
                model
            })
            .collect(),
    ))
}

/// Where one probe job connects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Addr {
    /// `resolver`: set when nginx resolves the name per request with the config's `resolver`
    /// (a `proxy_pass` with variables); otherwise the name was resolved at start, as the system does.
    Host {
        host: String,
        port: u16,
        resolver: Option<RuntimeResolver>,
    },
    Unix {
        path: String,
    },
}

/// The effective `resolver` / `resolver_timeout` of a pass, as nginx uses them per request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RuntimeResolver {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    ipv6: bool,
}

/// One upstream target and the passes that send to it.
#[derive(Debug)]
struct Job {
    upstream: String,
    group: Option<String>,
    addr: Addr,
    /// (model index, pass index); the first one's settings drive the protocol probe.
    passes: Vec<(usize, usize)>,
}

/// The hosts a `proxy_pass` with variables can reach: each value the config gives the variable
/// (`set`, `map`), with the pass's effective `resolver` when the value is a name.
fn dynamic_candidates(
    model: &Model,
    pass: &Pass,
    authority: &str,
) -> Vec<(String, u16, Option<RuntimeResolver>)> {
    let default_port = match pass.scheme.as_deref() {
        Some("https" | "grpcs") => 443,
        _ => 80,
    };
    let Some(var_start) = authority.find('$') else {
        return Vec::new();
    };
    let rest = &authority[var_start + 1..];
    let (name, braced) = match rest.strip_prefix('{') {
        Some(r) => (r.split('}').next().unwrap_or(""), true),
        None => (
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or(""),
            false,
        ),
    };
    let Some(values) = model.variables.get(name) else {
        return Vec::new();
    };
    let token = if braced {
        format!("${{{name}}}")
    } else {
        format!("${name}")
    };
    let scope = model.scopes.get(pass.scope);
    let mut out = Vec::new();
    for v in values {
        let full = authority.replacen(&token, v, 1);
        // A value that holds variables itself, or names an upstream group, is not a DNS name.
        if full.contains('$') || model.upstreams.iter().any(|u| u.name == full) {
            continue;
        }
        let Some((host, port)) = medic_core::config::values::split_host_port(&full) else {
            continue;
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let resolver = if bare.parse::<std::net::IpAddr>().is_ok() {
            None
        } else {
            let (servers, ipv6) = match scope.and_then(|s| s.settings.resolver.as_ref()) {
                Some(r) => (
                    dns::resolver_addrs(&r.value),
                    !r.value.iter().any(|a| a == "ipv6=off"),
                ),
                None => (Vec::new(), true),
            };
            Some(RuntimeResolver {
                servers,
                timeout: scope.map_or(Duration::from_secs(30), |s| {
                    s.settings.resolver_timeout.value
                }),
                ipv6,
            })
        };
        let entry = (bare.to_string(), port.unwrap_or(default_port), resolver);
        if !out
            .iter()
            .any(|(h, p, _): &(String, u16, _)| *h == entry.0 && *p == entry.1)
        {
            out.push(entry);
        }
    }
    out
}

/// Resolves a name as nginx does per request: the config's `resolver`, or nginx's own error
/// when there is none.
fn runtime_resolve(host: &str, port: u16, r: &RuntimeResolver) -> medic_core::facts::Resolution {
    use medic_core::facts::Resolution;
    if r.servers.is_empty() {
        return Resolution {
            host: host.to_string(),
            via: "resolver".into(),
            addresses: Vec::new(),
            error: Some(format!("no resolver defined to resolve {host}")),
        };
    }
    let mut last_error = None;
    for server in &r.servers {
        let answer = dns::resolve(*server, host, r.ipv6, r.timeout.min(Duration::from_secs(5)));
        match answer.nginx_error(host) {
            None => {
                let dns::Answer::Addresses(ips) = answer else {
                    continue;
                };
                return Resolution {
                    host: host.to_string(),
                    via: "resolver".into(),
                    addresses: ips
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, port).to_string())
                        .collect(),
                    error: None,
                };
            }
            Some(e) => last_error = Some(format!("{e} (resolver {server})")),
        }
    }
    Resolution {
        host: host.to_string(),
        via: "resolver".into(),
        addresses: Vec::new(),
        error: last_error,
    }
}

/// Collects the distinct targets of every pass: a group's servers each become a target.
fn jobs(models: &[Model], skipped: &mut Vec<Skipped>) -> Vec<Job> {
    let mut by_key: BTreeMap<(String, &'static str, bool), Job> = BTreeMap::new();
    let mut add = |upstream: String, group: Option<String>, addr: Addr, m: usize, p: usize| {
        let pass = &models[m].passes[p];
        let key = (upstream.clone(), pass.kind.prefix(), pass.tls);
        by_key
            .entry(key)
            .or_insert_with(|| Job {
                upstream,
                group,
                addr,
                passes: Vec::new(),
            })
            .passes
            .push((m, p));
    };
    for (m, model) in models.iter().enumerate() {
        for (p, pass) in model.passes.iter().enumerate() {
            match &pass.target {
                Target::Host {
                    host,
                    port: Some(port),
                } => add(
                    pass.target.display(),
                    None,
                    Addr::Host {
                        host: host.to_string(),
                        port: *port,
                        resolver: None,
                    },
                    m,
                    p,
                ),
                Target::Host { port: None, .. } => skipped.push(Skipped::new(
                    format!("probe {}", pass.target.display()),
                    format!("{}: no port to connect to", pass.src.location()),
                )),
                Target::Unix { path } => add(
                    pass.target.display(),
                    None,
                    Addr::Unix {
                        path: path.to_string(),
                    },
                    m,
                    p,
                ),
                Target::Group { name, index } => {
                    let Some(up) = model.upstreams.get(*index) else {
                        continue;
                    };
                    for server in &up.servers {
                        if let Some(path) = server.address.strip_prefix("unix:") {
                            add(
                                server.address.to_string(),
                                Some(name.to_string()),
                                Addr::Unix {
                                    path: path.to_string(),
                                },
                                m,
                                p,
                            );
                        } else if let Some(host) = &server.host {
                            // nginx's default port for an upstream server is 80 (`ngx_parse_url`).
                            let port = server.port.unwrap_or(80);
                            let upstream = match server.port {
                                Some(_) => server.address.to_string(),
                                None => format!("{host}:{port}"),
                            };
                            add(
                                upstream,
                                Some(name.to_string()),
                                Addr::Host {
                                    host: host.to_string(),
                                    port,
                                    resolver: None,
                                },
                                m,
                                p,
                            );
                        }
                    }
                }
                Target::Dynamic { host } => {
                    let candidates = dynamic_candidates(model, pass, host);
                    if candidates.is_empty() {
                        skipped.push(Skipped::new(
                            format!("probe {host}"),
                            format!(
                                "{}: the address is built per request from variables whose values \
                                 are not in the config (map/set); not probed",
                                pass.src.location()
                            ),
                        ));
                    }
                    for (name, port, resolver) in candidates {
                        let upstream = if name.contains(':') && !name.starts_with('[') {
                            format!("[{name}]:{port}")
                        } else {
                            format!("{name}:{port}")
                        };
                        add(
                            upstream,
                            None,
                            Addr::Host {
                                host: name,
                                port,
                                resolver,
                            },
                            m,
                            p,
                        );
                    }
                }
            }
        }
    }
    by_key.into_values().collect()
}

/// Runs every job on at most `concurrency` threads; results in job order.
fn run_jobs(
    jobs: &[Job],
    models: &[Model],
    listeners: &Listeners,
    accounts: &reach::Accounts,
    wait: Wait,
    concurrency: usize,
) -> Vec<TargetReport> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<TargetReport>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let threads = concurrency.clamp(1, jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            // Probes mostly wait on sockets: many small threads let every hanging upstream wait
            // out its timeout at the same time. If the system refuses more threads, the ones
            // already running take the remaining jobs.
            let spawned = std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn_scoped(s, || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let facts = probe_target(job, models, listeners, accounts, wait);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(facts);
                });
            if spawned.is_err() {
                break;
            }
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// All the probes of one target, in order: resolve, connect, who listens, protocol.
fn probe_target(
    job: &Job,
    models: &[Model],
    listeners: &Listeners,
    accounts: &reach::Accounts,
    wait: Wait,
) -> TargetReport {
    let (m, p) = job.passes[0];
    let model = &models[m];
    let pass = &model.passes[p];
    let mut facts = TargetFacts {
        upstream: job.upstream.clone(),
        group: job.group.clone(),
        passes: job
            .passes
            .iter()
            .map(|&(m, p)| {
                let pass = &models[m].passes[p];
                PassRef {
                    at: pass.src.location(),
                    directive: pass.kind.directive().to_string(),
                    url: pass.url.to_string(),
                }
            })
            .collect(),
        addresses: Vec::new(),
        resolve: None,
        tcp: Vec::new(),
        unix: None,
        http: None,
        fastcgi: None,
        listener: None,
        same_port_elsewhere: Vec::new(),
        skipped: Vec::new(),
    };
    let connect_timeout = pass.settings.connect_timeout.value;
    let mut tls_facts = None;
    match &job.addr {
        Addr::Host {
            host,
            port,
            resolver,
        } => {
            let res = match resolver {
                Some(r) => runtime_resolve(host, *port, r),
                None => reach::resolve(host, *port),
            };
            let addrs: Vec<SocketAddr> = res
                .addresses
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect();
            facts.addresses = res.addresses.clone();
            facts.resolve = Some(res);
            for a in &addrs {
                facts.tcp.push(reach::tcp_connect(*a, connect_timeout));
                match listeners.tcp(a.ip(), a.port()) {
                    Some(l) if facts.listener.is_none() => facts.listener = Some(l.clone()),
                    Some(_) => {}
                    None => {
                        for l in listeners.same_port_elsewhere(a.ip(), a.port()) {
                            if !facts.same_port_elsewhere.contains(l) {
                                facts.same_port_elsewhere.push(l.clone());
                            }
                        }
                    }
                }
            }
            // Another address of the same target is not "elsewhere".
            let own = facts.listener.clone();
            facts
                .same_port_elsewhere
                .retain(|l| Some(l) != own.as_ref());
            let ok = addrs
                .iter()
                .zip(&facts.tcp)
                .find(|(_, t)| t.connect.is_ok())
                .map(|(a, _)| *a);
            if let (Some(addr), true, Some(ssl)) = (ok, pass.tls, pass.settings.ssl.as_deref()) {
                let settings = tls::TlsSettings::from_model(ssl, host);
                tls_facts = Some(tls::probe_tls(
                    addr,
                    &settings,
                    pass.settings.connect_timeout.value + wait.margin,
                ));
            }
            match ok {
                Some(addr) => protocol_probe(&mut facts, model, pass, ProtoAddr::Tcp(addr), wait),
                None => facts.skipped.push(Skipped::new(
                    "protocol probe",
                    "no address accepted a connection",
                )),
            }
        }
        Addr::Unix { path } => {
            facts.addresses = vec![format!("unix:{path}")];
            let user = model.worker_user();
            let fact = reach::unix_fact(accounts, &user.name, user.group.as_deref(), path);
            let ok = fact.connect.is_ok();
            facts.unix = Some(fact);
            facts.listener = listeners.unix(path).cloned();
            if ok {
                protocol_probe(&mut facts, model, pass, ProtoAddr::Unix(path), wait);
            } else {
                facts.skipped.push(Skipped::new(
                    "protocol probe",
                    "the socket did not accept a connection",
                ));
            }
        }
    }
    TargetReport {
        facts,
        tls: tls_facts,
    }
}

enum ProtoAddr<'a> {
    Tcp(SocketAddr),
    Unix(&'a str),
}

fn protocol_probe(
    facts: &mut TargetFacts,
    model: &Model,
    pass: &Pass,
    addr: ProtoAddr<'_>,
    wait: Wait,
) {
    let connect_timeout = pass.settings.connect_timeout.value;
    let read_timeout = pass.settings.read_timeout.value;
    match (pass.kind, pass.protocol) {
        (PassKind::Proxy, Protocol::Http) => {
            let ProtoAddr::Tcp(addr) = addr else {
                facts.skipped.push(Skipped::new(
                    "http probe",
                    "HTTP over a unix socket is not probed yet",
                ));
                return;
            };
            let request = http_request(model, pass, &facts.upstream);
            let version = pass
                .settings
                .http_version
                .as_ref()
                .map_or_else(|| "1.0".to_string(), |v| v.value.to_string());
            facts.http = Some(http::probe(
                addr,
                request,
                &version,
                pass.tls,
                http::Limits {
                    connect_timeout,
                    read_timeout,
                    margin: wait.margin,
                    buffer_size: pass.settings.buffer_size.value,
                    max_wait: wait.cap,
                },
            ));
        }
        (PassKind::Fastcgi, _) => {
            let request = ProbeRequest {
                method: "GET".to_string(),
                host: server_name(model, pass).unwrap_or_else(|| "localhost".to_string()),
                path: fastcgi::PROBE_SCRIPT.to_string(),
                host_from: "the server's first server_name".to_string(),
            };
            let a = match addr {
                ProtoAddr::Tcp(a) => fastcgi::Addr::Tcp(a),
                ProtoAddr::Unix(p) => fastcgi::Addr::Unix(p),
            };
            facts.fastcgi = Some(fastcgi::probe(
                a,
                request,
                connect_timeout,
                read_timeout,
                wait.margin,
                wait.cap,
            ));
        }
        (kind, _) => facts.skipped.push(Skipped::new(
            "protocol probe",
            format!("no protocol probe for {} (connect only)", kind.directive()),
        )),
    }
}

/// The first usable `server_name` of the pass's server (not `_`, no wildcard or regex).
fn server_name(model: &Model, pass: &Pass) -> Option<String> {
    let server = &model.servers[model.scopes[pass.scope].server];
    server
        .names
        .iter()
        .find(|n| !n.is_empty() && *n != "_" && !n.contains('*') && !n.starts_with('~'))
        .map(|n| n.to_string())
}

/// The request nginx sends for a request to the pass's location: `Host` from
/// `proxy_set_header Host` (variables filled in where known) or `$proxy_host`, the path from the
/// `proxy_pass` URI or the location's prefix.
fn http_request(model: &Model, pass: &Pass, upstream: &str) -> ProbeRequest {
    // `$proxy_host`: the authority of the proxy_pass URL (the group name for a group).
    let after_scheme = pass
        .url
        .split_once("://")
        .map_or(pass.url.as_str(), |x| x.1);
    let (authority, uri) = match after_scheme.find('/') {
        Some(i) => (&after_scheme[..i], &after_scheme[i..]),
        None => (after_scheme, ""),
    };
    let proxy_host = if authority.is_empty() {
        upstream.to_string()
    } else {
        authority.to_string()
    };
    let name = server_name(model, pass).unwrap_or_else(|| proxy_host.clone());
    let (host, host_from) = match pass
        .settings
        .headers
        .iter()
        .rev()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
    {
        Some(h) => {
            let v = h
                .value
                .replace("$proxy_host", &proxy_host)
                .replace("$http_host", &name)
                .replace("$host", &name)
                .replace("$server_name", &name);
            let v = if v.contains('$') {
                proxy_host.clone()
            } else {
                v
            };
            (v, format!("proxy_set_header Host ({})", h.src.location()))
        }
        None => (
            proxy_host.clone(),
            "$proxy_host (nginx's default)".to_string(),
        ),
    };
    let path = if !uri.is_empty() && !uri.contains('$') {
        uri.to_string()
    } else if !uri.is_empty() {
        "/".to_string()
    } else {
        location_prefix(model, pass.scope).unwrap_or_else(|| "/".to_string())
    };
    ProbeRequest {
        method: "GET".to_string(),
        host,
        path,
        host_from,
    }
}

/// The literal prefix of the innermost `location` around a scope (`/` for regex ones).
fn location_prefix(model: &Model, scope: usize) -> Option<String> {
    let mut cur = Some(scope);
    while let Some(i) = cur {
        let s = &model.scopes[i];
        if s.kind == "location" {
            let arg = match s.args.first().map(|a| a.as_str()) {
                Some("=" | "^~") => s.args.get(1),
                Some(a) if a.starts_with('~') || a.starts_with('@') => return None,
                _ => s.args.first(),
            };
            return arg.filter(|a| a.starts_with('/')).map(|a| a.to_string());
        }
        cur = s.parent;
    }
    None
}

/// One line per target, then what was skipped.
fn write_text(out: &mut impl Write, report: &ProbeReport, color: bool) -> io::Result<()> {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    for inst in &report.instances {
        writeln!(out, "config {} ({})", inst.config, inst.read_from)?;
    }
    for t in &report.targets {
        let tls = &t.tls;
        let t = &t.facts;
        let mut parts: Vec<String> = Vec::new();
        for tcp in &t.tcp {
            parts.push(format!("{} {}", tcp.address, connect_text(&tcp.connect)));
        }
        if let Some(u) = &t.unix {
            let perm = match (&u.ls, u.worker.allowed) {
                (Some(ls), Some(a)) => format!(
                    "{ls}; {} {} connect",
                    u.worker.user,
                    if a { "may" } else { "may NOT" }
                ),
                (Some(ls), None) => format!("{ls}; {}", u.worker.why),
                (None, _) => "no such file".to_string(),
            };
            parts.push(format!("{} ({perm})", connect_text(&u.connect)));
        }
        if let Some(l) = &t.listener {
            let who = l
                .processes
                .first()
                .map(|p| {
                    let unit = p
                        .unit
                        .as_deref()
                        .map(|u| format!(" {u}"))
                        .unwrap_or_default();
                    format!("{}[{}]{unit}", p.program, p.pid)
                })
                .unwrap_or_else(|| "process unknown".to_string());
            parts.push(format!("listener {} {who}", l.display()));
        } else if t.tcp.iter().any(|c| !c.connect.is_ok()) || t.unix.is_some() {
            parts.push("no listener".to_string());
        }
        for l in &t.same_port_elsewhere {
            parts.push(format!("but {} listens", l.display()));
        }
        if let Some(h) = &t.http {
            let mut s = match (h.speaks, h.status) {
                (Speaks::Http, Some(st)) => format!("http {st}"),
                (sp, _) => format!("http: speaks {sp:?}").to_lowercase(),
            };
            if let Some(tt) = h.ttfb_ms {
                s.push_str(&format!(" ttfb {tt:.1}ms"));
            }
            if h.ttfb_exceeds_timeout {
                s.push_str(&format!(" > read_timeout {}ms", h.read_timeout_ms));
            }
            if let Some(b) = h.header_bytes {
                s.push_str(&format!(" header {b}B/{}B", h.buffer_size));
                if h.header_exceeds_buffer {
                    s.push_str(" TOO BIG");
                }
            }
            if h.scheme_mismatch {
                s.push_str(" SCHEME MISMATCH");
            }
            parts.push(s);
        }
        if let Some(f) = &t.fastcgi {
            let mut s = if f.answered {
                format!("fastcgi answers {}", f.status.unwrap_or(0))
            } else if f.ttfb_exceeds_timeout {
                format!("fastcgi HANGS (> {}ms)", f.read_timeout_ms)
            } else {
                format!("fastcgi: speaks {:?}", f.speaks).to_lowercase()
            };
            if let Some(tt) = f.ttfb_ms {
                s.push_str(&format!(" ttfb {tt:.1}ms"));
            }
            parts.push(s);
        }
        if let Some(v) = tls.as_ref().and_then(|f| f.as_nginx()) {
            parts.push(format!(
                "tls {} ({})",
                if v.outcome.is_ok() { "ok" } else { "FAILS" },
                v.versions
            ));
        }
        let bad = t.tcp.iter().all(|c| !c.connect.is_ok())
            && !t.unix.as_ref().is_some_and(|u| u.connect.is_ok())
            || t.http.as_ref().is_some_and(|h| {
                h.ttfb_exceeds_timeout || h.header_exceeds_buffer || h.scheme_mismatch
            })
            || t.fastcgi.as_ref().is_some_and(|f| !f.answered);
        let name = paint(if bad { "31;1" } else { "32" }, &t.upstream);
        writeln!(out, "{name}  {}", parts.join("  "))?;
        if let Some(r) = &t.resolve {
            if let Some(e) = &r.error {
                writeln!(out, "    resolve {}: {e}", r.host)?;
            }
        }
        for s in &t.skipped {
            writeln!(out, "    {} {}: {}", paint("33", "skipped"), s.check, s.why)?;
        }
    }
    for s in &report.skipped {
        writeln!(out, "{} {}: {}", paint("33", "skipped"), s.check, s.why)?;
    }
    Ok(())
}

fn connect_text(c: &Connect) -> String {
    match c {
        Connect::Ok { latency_ms } => format!("ok {latency_ms:.2}ms"),
        Connect::TimedOut { after_ms } => format!("timeout after {after_ms}ms"),
        Connect::Denied { error } | Connect::Error { error } => format!("{} ({error})", c.label()),
        _ => c.label().to_string(),
    }
}
