//! Builds the [`Model`] from the parsed [`Config`]: walks `http {}` and `stream {}` with a stack
//! of levels and applies nginx's merge rules at each `*_pass`.
//!
//! The two inheritance rules of `ngx_http_*_merge_loc_conf`:
//! - a scalar directive (`proxy_read_timeout`, `resolver`, ...) comes from the innermost level
//!   that sets it (`ngx_conf_merge_*_value`);
//! - an array-like one (`proxy_set_header`, `fastcgi_param`, `add_header`, `error_page`,
//!   `limit_req`, `limit_conn`, `access_log`) is taken whole from the innermost level that has at
//!   least one, and the outer ones are ignored (`if (conf->x == NULL) conf->x = prev->x`).
//!   This is why one `fastcgi_param` in a location silently drops every one set at `http` level.

use std::borrow::Cow;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use medic_parse::config::{Config, Directive, FileId, Text};

use super::model::*;
use super::values::{
    is_ip_literal, parse_flag, parse_size, parse_time, split_host_port, split_pass_url, Rate,
};

/// How to build the model.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// nginx's prefix (`-p`), against which relative log and pid paths are resolved.
    pub prefix: Option<String>,
}

/// nginx's default for `*_connect_timeout`, `*_read_timeout`, `*_send_timeout`
/// (`ngx_conf_merge_msec_value(..., 60000)`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// `proxy_timeout` of the stream module (`ngx_stream_proxy_module.c`: 10 * 60000).
pub const DEFAULT_STREAM_TIMEOUT: Duration = Duration::from_secs(600);
/// One memory page: the default of `*_buffer_size` and of each of the 8 `*_buffers` on x86-64.
pub const PAGE: u64 = 4096;

/// Includes deeper than this are treated as a loop (the parser should have cut it already).
const MAX_INCLUDE_DEPTH: usize = 64;

/// The levels from the outermost (`http`/`stream`) to the current block, includes spliced in.
type Levels<'a> = Vec<Rc<Level<'a>>>;

/// Levels up to this many directives are scanned instead of indexed.
const SMALL_LEVEL: usize = 24;

/// The directives of one block, with an index by name: every `*_pass` looks up some forty
/// directives in every enclosing level, and the `http` level of a large config holds thousands
/// (a linear scan made a 5,000-server config take a second).
struct Level<'a> {
    all: Vec<&'a Directive>,
    /// A small level's index: the hash of each name in `all`, so that a lookup compares numbers
    /// and only a match's text (string compares were a tenth of building the model).
    hashes: Vec<u64>,
    /// A large level's index, by the hash of the name (names that share one are told apart by
    /// their text).
    by_hash: foldhash::HashMap<u64, Vec<&'a Directive>>,
}

/// A directive name as [`Level`] indexes it.
#[derive(Clone, Copy)]
struct Name<'n> {
    text: &'n str,
    hash: u64,
}

impl<'n> Name<'n> {
    fn new(text: &'n str) -> Name<'n> {
        use std::hash::BuildHasher;
        // Fixed seed: the hashes are compared within one build only, but must agree.
        let hash = foldhash::fast::FixedState::with_seed(0).hash_one(text);
        Name { text, hash }
    }
}

impl<'a> Level<'a> {
    fn new(all: Vec<&'a Directive>) -> Rc<Level<'a>> {
        let hashes: Vec<u64> = all.iter().map(|d| Name::new(&d.name).hash).collect();
        let mut by_hash: foldhash::HashMap<u64, Vec<&'a Directive>> = Default::default();
        // Most locations hold a handful of directives: a scan beats building a map for them.
        if all.len() > SMALL_LEVEL {
            for (d, h) in all.iter().zip(&hashes) {
                by_hash.entry(*h).or_default().push(d);
            }
        }
        Rc::new(Level {
            all,
            hashes,
            by_hash,
        })
    }

    /// The directives named `name`, in order: the matches of the hash, told apart by their
    /// text.
    fn named(&self, name: Name<'_>) -> Cow<'_, [&'a Directive]> {
        let matches = |d: &&Directive| d.name == name.text;
        if self.all.len() > SMALL_LEVEL {
            let found = self.by_hash.get(&name.hash).map_or(&[][..], Vec::as_slice);
            if found.iter().all(matches) {
                return Cow::Borrowed(found);
            }
            return Cow::Owned(found.iter().copied().filter(matches).collect());
        }
        let mut it = self
            .all
            .iter()
            .zip(&self.hashes)
            .filter(|(d, &h)| h == name.hash && matches(d))
            .map(|(d, _)| *d);
        match it.next() {
            None => Cow::Borrowed(&[]),
            Some(first) => {
                let mut v = vec![first];
                v.extend(it);
                Cow::Owned(v)
            }
        }
    }

    /// The first directive named `name`.
    fn first_named(&self, name: Name<'_>) -> Option<&'a Directive> {
        let matches = |d: &&Directive| d.name == name.text;
        if self.all.len() > SMALL_LEVEL {
            let found = self.by_hash.get(&name.hash)?;
            return found.iter().copied().find(matches);
        }
        self.all
            .iter()
            .zip(&self.hashes)
            .find(|(d, &h)| h == name.hash && matches(d))
            .map(|(d, _)| *d)
    }
}

impl<'a> std::ops::Deref for Level<'a> {
    type Target = [&'a Directive];
    fn deref(&self) -> &Self::Target {
        &self.all
    }
}

/// Builds the effective model. Pure: it reads the parsed tree only.
pub fn build(cfg: &Config, opts: &BuildOptions) -> Model {
    build_with(cfg, opts, PARALLEL_SERVERS)
}

/// A `http {}` or `stream {}` with at least this many servers builds its second half of them on
/// a second thread. The servers are independent once the definitions above them are read, and
/// the build is the larger half of `config lint`'s time on a big config.
const PARALLEL_SERVERS: usize = 64;

/// [`build`], splitting the servers across two threads from `parallel_from` servers on (tests
/// lower it to check that the split changes nothing).
pub(super) fn build_with(cfg: &Config, opts: &BuildOptions, parallel_from: usize) -> Model {
    let mut b = Builder::new(
        cfg,
        Seed {
            files: cfg
                .files
                .iter()
                .map(|f| Arc::from(f.path.display().to_string()))
                .collect(),
            prefix: opts.prefix.clone(),
            ..Seed::default()
        },
    );
    b.parallel_from = parallel_from;
    b.m.prefix = opts.prefix.clone();
    // Scopes and passes are large structs: growing the vectors by doubling copied them
    // around; count them once instead.
    let (scopes, passes) = count_blocks(cfg);
    b.m.scopes.reserve(scopes);
    b.m.passes.reserve(passes);
    if let Some(main) = cfg.files.first() {
        let top = b.children(&main.parsed);
        b.main(&top);
    }
    b.m
}

/// Inherited lists already built, by their first directive (which identifies the level that
/// sets them): a 5,000-server config repeats the same `fastcgi_param`s, `error_page`s and
/// `limit_req`s in every location.
type Shared<T> = std::cell::RefCell<foldhash::HashMap<*const Directive, Arc<[T]>>>;

/// The list `found` makes, built once per level that sets it and shared.
fn shared<T>(
    cache: &Shared<T>,
    found: Vec<&Directive>,
    build: impl FnOnce(Vec<&Directive>) -> Vec<T>,
) -> Arc<[T]> {
    let Some(&first) = found.first() else {
        return Arc::from(Vec::new());
    };
    let key: *const Directive = first;
    if let Some(list) = cache.borrow().get(&key) {
        return list.clone();
    }
    let list: Arc<[T]> = Arc::from(build(found));
    cache.borrow_mut().insert(key, list.clone());
    list
}

struct Builder<'a> {
    cfg: &'a Config,
    /// File paths by `FileId`, shared by every `Src`.
    files: Vec<Arc<str>>,
    srcs: std::cell::RefCell<foldhash::HashMap<*const Directive, Src>>,
    /// Every `Src::text`, once per distinct text: a big config repeats the same few lines in
    /// every server (`error_page 502 503 504 /50x.html;` 3,750 times).
    texts: std::cell::RefCell<foldhash::HashSet<Arc<str>>>,
    /// The (file, format) pairs of `access_logs` so far.
    seen_access_logs: foldhash::HashSet<(String, String)>,
    /// [`Model::upstreams`] by protocol and name: every pass looks its group up (a linear
    /// search of 1,000 upstreams for each of 5,000 passes was a tenth of the build).
    upstream_index: foldhash::HashMap<(Protocol, String), usize>,
    shared_params: Shared<Param>,
    shared_error_pages: Shared<ErrorPage>,
    shared_limit_req: Shared<LimitReq>,
    shared_limit_conn: Shared<LimitConn>,
    prefix: Option<String>,
    /// Servers from which a protocol block is split across two threads.
    parallel_from: usize,
    m: Model,
}

/// What building a server reads besides the tree: the definitions made before the servers,
/// handed to the builder of the other half. Owned, so it can move to that thread.
#[derive(Default)]
struct Seed {
    files: Vec<Arc<str>>,
    prefix: Option<String>,
    upstream_index: foldhash::HashMap<(Protocol, String), usize>,
    seen_access_logs: foldhash::HashSet<(String, String)>,
    log_formats: Vec<LogFormatDef>,
    limit_req_zones: Vec<LimitReqZone>,
}

impl<'a> Builder<'a> {
    fn new(cfg: &'a Config, seed: Seed) -> Builder<'a> {
        Builder {
            cfg,
            files: seed.files,
            srcs: Default::default(),
            texts: Default::default(),
            seen_access_logs: seed.seen_access_logs,
            upstream_index: seed.upstream_index,
            shared_params: Default::default(),
            shared_error_pages: Default::default(),
            shared_limit_req: Default::default(),
            shared_limit_conn: Default::default(),
            prefix: seed.prefix.clone(),
            parallel_from: usize::MAX,
            m: Model {
                prefix: seed.prefix,
                log_formats: seed.log_formats,
                limit_req_zones: seed.limit_req_zones,
                ..Model::default()
            },
        }
    }

    /// The seed of a builder for other servers of this config.
    fn seed(&self) -> Seed {
        Seed {
            files: self.files.clone(),
            prefix: self.prefix.clone(),
            upstream_index: self.upstream_index.clone(),
            seen_access_logs: self.seen_access_logs.clone(),
            log_formats: self.m.log_formats.clone(),
            limit_req_zones: self.m.limit_req_zones.clone(),
        }
    }

    /// The directives of a block with every `include` replaced by the files it pulled in.
    fn children(&self, block: &'a [Directive]) -> Vec<&'a Directive> {
        let mut out = Vec::with_capacity(block.len());
        self.flatten(block, &mut out, 0);
        out
    }

    fn flatten(&self, block: &'a [Directive], out: &mut Vec<&'a Directive>, depth: usize) {
        for d in block {
            if d.name == "#" {
                continue;
            }
            if d.name == "include" && !d.includes().is_empty() && depth < MAX_INCLUDE_DEPTH {
                for &f in d.includes() {
                    if let Some(file) = self.cfg.files.get(f) {
                        self.flatten(&file.parsed, out, depth + 1);
                    }
                }
                continue;
            }
            out.push(d);
        }
    }

    /// Where a setting comes from, made once per directive and shared by every scope that
    /// inherits it.
    fn src(&self, d: &Directive) -> Src {
        let key: *const Directive = d;
        if let Some(s) = self.srcs.borrow().get(&key) {
            return s.clone();
        }
        let file = self
            .files
            .get(d.file)
            .cloned()
            .unwrap_or_else(|| Arc::from("?"));
        let text = directive_text(d);
        let known = self.texts.borrow().get(text.as_str()).cloned();
        let text = known.unwrap_or_else(|| {
            let t: Arc<str> = Arc::from(text);
            self.texts.borrow_mut().insert(t.clone());
            t
        });
        let s = Src::new(file, d.line, text);
        self.srcs.borrow_mut().insert(key, s.clone());
        s
    }

    fn path(&self, p: &str) -> String {
        let special = p == "stderr"
            || p.starts_with("syslog:")
            || p.starts_with("memory:")
            || p.starts_with('/');
        match (&self.prefix, special) {
            (Some(prefix), false) => Path::new(prefix).join(p).display().to_string(),
            _ => p.to_string(),
        }
    }

    fn main(&mut self, top: &[&'a Directive]) {
        for d in top {
            match d.name.as_str() {
                "user" if !d.args.is_empty() => {
                    self.m.user = Some(Eff {
                        value: User {
                            name: d.args[0].to_string(),
                            group: d.args.get(1).map(|a| a.to_string()),
                        },
                        src: Some(self.src(d)),
                    })
                }
                "pid" if !d.args.is_empty() => {
                    self.m.pid = Some(Eff {
                        value: self.path(&d.args[0]),
                        src: Some(self.src(d)),
                    })
                }
                "error_log" => self.error_log(d, "main"),
                _ => {}
            }
        }
        for d in top {
            let Some(block) = &d.block else { continue };
            let proto = match d.name.as_str() {
                "http" => Protocol::Http,
                "stream" => Protocol::Stream,
                _ => continue,
            };
            let level = self.children(block);
            self.protocol_block(proto, level);
        }
    }

    fn error_log(&mut self, d: &Directive, context: &'static str) {
        let Some(path) = d.args.first() else { return };
        let e = ErrorLog {
            path: self.path(path),
            level: d
                .args
                .get(1)
                .map(|a| a.to_string())
                .unwrap_or_else(|| "error".to_string()),
            context,
            src: self.src(d),
        };
        self.m.error_logs.push(e);
    }

    /// `http {}` or `stream {}`: definitions first (upstreams may be used before they are
    /// written), then the servers.
    fn protocol_block(&mut self, proto: Protocol, level: Vec<&'a Directive>) {
        let context = match proto {
            Protocol::Http => "http",
            Protocol::Stream => "stream",
        };
        if proto == Protocol::Http {
            self.m.log_formats.push(LogFormatDef {
                protocol: proto,
                name: "combined".to_string(),
                escape: "default".to_string(),
                format: COMBINED.to_string(),
                src: None,
            });
        }
        for d in &level {
            match d.name.as_str() {
                "upstream" => self.upstream(proto, d),
                "log_format" => self.log_format(proto, d),
                "limit_req_zone" => self.limit_req_zone(d),
                "error_log" => self.error_log(d, context),
                "map" => self.map(d),
                _ => {}
            }
        }
        let mut levels: Levels<'a> = vec![Level::new(level)];
        self.access_logs(proto, &levels[0]);
        let servers: Vec<&'a Directive> = levels[0]
            .iter()
            .copied()
            .filter(|d| d.name == "server" && d.block.is_some())
            .collect();
        let half = if servers.len() >= self.parallel_from.max(2) {
            servers.len() / 2
        } else {
            servers.len()
        };
        let (mine, theirs) = servers.split_at(half);
        if theirs.is_empty() {
            self.servers(proto, mine, &mut levels);
            return;
        }
        // The other half's share of the scopes and passes still to come, for its vectors.
        let share = |cap: usize, len: usize| cap.saturating_sub(len) * theirs.len() / servers.len();
        let reserve = (
            share(self.m.scopes.capacity(), self.m.scopes.len()),
            share(self.m.passes.capacity(), self.m.passes.len()),
        );
        let (cfg, seed, top) = (self.cfg, self.seed(), levels[0].all.clone());
        std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("model".into())
                .spawn_scoped(scope, move || {
                    let mut b = Builder::new(cfg, seed);
                    b.m.scopes.reserve(reserve.0);
                    b.m.passes.reserve(reserve.1);
                    b.servers(proto, theirs, &mut vec![Level::new(top)]);
                    b.m
                });
            self.servers(proto, mine, &mut levels);
            match other {
                Ok(handle) => match handle.join() {
                    Ok(part) => self.append(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                // No thread to be had: this one builds them.
                Err(_) => self.servers(proto, theirs, &mut levels),
            }
        });
    }

    fn servers(&mut self, proto: Protocol, servers: &[&'a Directive], levels: &mut Levels<'a>) {
        for s in servers {
            let level = self.children(s.block.as_deref().unwrap_or_default());
            levels.push(Level::new(level));
            self.server(proto, s, levels);
            levels.pop();
        }
    }

    /// Appends the servers another builder made from this one's [`Seed`], in the order one
    /// builder would have made them: their indexes shifted past this model's, access logs
    /// already listed here dropped, `set` values after this model's.
    fn append(&mut self, part: Model) {
        let (servers, listens, scopes, passes) = (
            self.m.servers.len(),
            self.m.listens.len(),
            self.m.scopes.len(),
            self.m.passes.len(),
        );
        self.m.servers.extend(part.servers.into_iter().map(|mut s| {
            s.listens.iter_mut().for_each(|l| *l += listens);
            s.scope += scopes;
            s
        }));
        self.m.listens.extend(part.listens.into_iter().map(|mut l| {
            l.server += servers;
            l
        }));
        self.m.scopes.extend(part.scopes.into_iter().map(|mut s| {
            s.server += servers;
            s.parent = s.parent.map(|p| p + scopes);
            s.passes.iter_mut().for_each(|p| *p += passes);
            s
        }));
        self.m.passes.extend(part.passes.into_iter().map(|mut p| {
            p.scope += scopes;
            p
        }));
        self.m.error_logs.extend(part.error_logs);
        for log in part.access_logs {
            if self
                .seen_access_logs
                .insert((log.path.clone(), log.format_name.clone()))
            {
                self.m.access_logs.push(log);
            }
        }
        for (name, values) in part.variables {
            self.m.variables.entry(name).or_default().extend(values);
        }
    }

    fn upstream(&mut self, proto: Protocol, d: &'a Directive) {
        let (Some(name), Some(block)) = (d.args.first(), &d.block) else {
            return;
        };
        let mut u = Upstream {
            name: name.to_string(),
            protocol: proto,
            src: self.src(d),
            servers: Vec::new(),
            keepalive: None,
            directives: Vec::new(),
        };
        for c in self.children(block) {
            match c.name.as_str() {
                "server" if !c.args.is_empty() => {
                    let address = c.args[0].to_string();
                    let (host, port) = match address.strip_prefix("unix:") {
                        Some(_) => (None, None),
                        None => match split_host_port(&address) {
                            Some((h, p)) => (
                                Some(h.to_string()),
                                p.or((proto == Protocol::Http).then_some(80)),
                            ),
                            None => (Some(address.clone()), None),
                        },
                    };
                    u.servers.push(UpstreamServer {
                        address,
                        host,
                        port,
                        params: strings(&c.args[1..]),
                        src: self.src(c),
                    });
                }
                "keepalive" => {
                    if let Some(n) = c.args.first().and_then(|a| a.parse().ok()) {
                        u.keepalive = Some(Eff {
                            value: n,
                            src: Some(self.src(c)),
                        });
                    }
                }
                _ => u.directives.push((c.name.to_string(), strings(&c.args))),
            }
        }
        // The first block of a name is the one nginx uses (a second is "duplicate upstream").
        let index = self.m.upstreams.len();
        self.upstream_index
            .entry((proto, u.name.clone()))
            .or_insert(index);
        self.m.upstreams.push(u);
    }

    /// `map SOURCE $var { key value; ... }`: every value `$var` can take.
    fn map(&mut self, d: &'a Directive) {
        let (Some(var), Some(block)) = (d.args.get(1), &d.block) else {
            return;
        };
        let Some(var) = var.strip_prefix('$') else {
            return;
        };
        let values: Vec<String> = self
            .children(block)
            .into_iter()
            .filter(|e| !matches!(e.name.as_str(), "hostnames" | "volatile"))
            .filter_map(|e| e.args.first().map(|a| a.to_string()))
            .collect();
        self.m
            .variables
            .entry(var.to_string())
            .or_default()
            .extend(values);
    }

    fn log_format(&mut self, proto: Protocol, d: &Directive) {
        let Some(name) = d.args.first() else { return };
        let mut rest = &d.args[1..];
        let mut escape = "default".to_string();
        if let Some(e) = rest.first().and_then(|a| a.strip_prefix("escape=")) {
            escape = e.to_string();
            rest = &rest[1..];
        }
        let def = LogFormatDef {
            protocol: proto,
            name: name.to_string(),
            escape,
            // nginx concatenates the strings of a multi-string log_format.
            format: rest.concat(),
            src: Some(self.src(d)),
        };
        self.m.log_formats.push(def);
    }

    fn limit_req_zone(&mut self, d: &Directive) {
        let mut zone = None;
        let mut size = None;
        let mut rate = None;
        for a in d.args.iter().skip(1) {
            if let Some(z) = a.strip_prefix("zone=") {
                let (n, s) = z.split_once(':').unwrap_or((z, ""));
                zone = Some(n.to_string());
                size = parse_size(s);
            } else if let Some(r) = a.strip_prefix("rate=") {
                rate = Rate::parse(r);
            }
        }
        let Some(name) = zone else { return };
        let def = LimitReqZone {
            name,
            key: d.args.first().map(|a| a.to_string()).unwrap_or_default(),
            size,
            rate,
            src: self.src(d),
        };
        self.m.limit_req_zones.push(def);
    }

    /// Every `access_log` written at this level (inheritance does not matter to the log engine:
    /// it wants each file nginx writes and its format).
    fn access_logs(&mut self, proto: Protocol, level: &[&Directive]) {
        for d in level.iter().filter(|d| d.name == "access_log") {
            let Some(path) = d.args.first() else { continue };
            if path == "off" {
                continue;
            }
            let (format_name, params) = match d.args.get(1) {
                Some(f) if !f.contains('=') && f != "gzip" => {
                    (f.to_string(), strings(&d.args[2..]))
                }
                _ => ("combined".to_string(), strings(&d.args[1..])),
            };
            let def = self
                .m
                .log_formats
                .iter()
                .find(|f| f.protocol == proto && f.name == format_name);
            let log = AccessLog {
                protocol: proto,
                path: self.path(path),
                format: def.map(|f| f.format.clone()),
                escape: def
                    .map(|f| f.escape.clone())
                    .unwrap_or_else(|| "default".to_string()),
                format_name,
                params,
                src: self.src(d),
            };
            // One entry per (file, format): a set, since every server may name its own log.
            if self
                .seen_access_logs
                .insert((log.path.clone(), log.format_name.clone()))
            {
                self.m.access_logs.push(log);
            }
        }
    }

    fn server(&mut self, proto: Protocol, d: &'a Directive, levels: &mut Levels<'a>) {
        let server_index = self.m.servers.len();
        let level = levels
            .last()
            .cloned()
            .unwrap_or_else(|| Level::new(Vec::new()));
        let names = level
            .iter()
            .filter(|c| c.name == "server_name")
            .flat_map(|c| c.args.iter().map(|a| a.to_string()))
            .collect();
        let mut listens = Vec::new();
        for c in level.iter().filter(|c| c.name == "listen") {
            let Some(address) = c.args.first() else {
                continue;
            };
            listens.push(self.m.listens.len());
            self.m.listens.push(Listen {
                protocol: proto,
                address: address.to_string(),
                params: strings(&c.args[1..]),
                server: server_index,
                src: self.src(c),
            });
        }
        self.m.servers.push(Server {
            protocol: proto,
            names,
            src: self.src(d),
            listens,
            scope: self.m.scopes.len(),
        });
        self.scope(proto, d, "server", server_index, None, levels);
    }

    /// One request-handling level: its settings, its passes, then its nested blocks.
    fn scope(
        &mut self,
        proto: Protocol,
        d: &'a Directive,
        kind: &'static str,
        server: usize,
        parent: Option<usize>,
        levels: &mut Levels<'a>,
    ) {
        let index = self.m.scopes.len();
        let level = levels
            .last()
            .cloned()
            .unwrap_or_else(|| Level::new(Vec::new()));
        for c in level.iter().filter(|c| c.name == "error_log") {
            let ctx = if kind == "server" {
                "server"
            } else {
                "location"
            };
            self.error_log(c, ctx);
        }
        self.access_logs(proto, &level);
        let scope = Scope {
            protocol: proto,
            kind,
            args: if kind == "server" {
                Vec::new()
            } else {
                strings(&d.args)
            },
            server,
            parent,
            src: self.src(d),
            limit_req: self.limit_req(levels),
            limit_req_status: self.status(levels, "limit_req_status"),
            limit_conn: self.limit_conn(levels),
            limit_conn_status: self.status(levels, "limit_conn_status"),
            error_pages: self.error_pages(levels),
            resolver: scalar(levels, "resolver").map(|r| Eff {
                value: r
                    .args
                    .iter()
                    .filter(|a| !a.contains('='))
                    .map(|a| a.to_string())
                    .collect(),
                src: Some(self.src(r)),
            }),
            resolver_timeout: self.time(levels, "resolver_timeout", Duration::from_secs(30)),
            passes: Vec::new(),
        };
        self.m.scopes.push(scope);
        for c in level.iter().filter(|c| c.name == "set") {
            if let (Some(var), Some(value)) = (c.args.first(), c.args.get(1)) {
                if let Some(var) = var.strip_prefix('$') {
                    self.m
                        .variables
                        .entry(var.to_string())
                        .or_default()
                        .push(value.to_string());
                }
            }
        }
        for c in level.iter() {
            if let Some(kind) = PassKind::from_directive(&c.name) {
                if !c.args.is_empty() {
                    let p = self.pass(proto, kind, c, index, levels);
                    self.m.scopes[index].passes.push(self.m.passes.len());
                    self.m.passes.push(p);
                }
            }
        }
        for c in level.iter() {
            let kind = match c.name.as_str() {
                "location" => "location",
                "if" => "if",
                "limit_except" => "limit_except",
                _ => continue,
            };
            let Some(block) = &c.block else { continue };
            levels.push(Level::new(self.children(block)));
            self.scope(proto, c, kind, server, Some(index), levels);
            levels.pop();
        }
    }

    fn eff_src(&self, d: Option<&Directive>) -> Option<Src> {
        d.map(|d| self.src(d))
    }

    fn time(&self, levels: &Levels<'a>, name: &str, default: Duration) -> Eff<Duration> {
        match scalar(levels, name) {
            Some(d) => match d.args.first().and_then(|a| parse_time(a)) {
                Some(v) => Eff {
                    value: v,
                    src: Some(self.src(d)),
                },
                None => Eff::default_value(default),
            },
            None => Eff::default_value(default),
        }
    }

    fn flag(&self, levels: &Levels<'a>, name: &str) -> Eff<bool> {
        match scalar(levels, name) {
            Some(d) => Eff {
                value: d.args.first().and_then(|a| parse_flag(a)).unwrap_or(false),
                src: Some(self.src(d)),
            },
            None => Eff::default_value(false),
        }
    }

    fn string(&self, levels: &Levels<'a>, name: &str) -> Eff<Option<String>> {
        let d = scalar(levels, name);
        Eff {
            value: d.and_then(|d| d.args.first().map(|a| a.to_string())),
            src: self.eff_src(d),
        }
    }

    fn status(&self, levels: &Levels<'a>, name: &str) -> Eff<u16> {
        let d = scalar(levels, name);
        Eff {
            value: d
                .and_then(|d| d.args.first())
                .and_then(|a| a.parse().ok())
                .unwrap_or(503),
            src: self.eff_src(d),
        }
    }

    fn params(&self, levels: &Levels<'a>, name: &str) -> Arc<[Param]> {
        shared(&self.shared_params, array(levels, name), |found| {
            found
                .into_iter()
                .filter(|d| !d.args.is_empty())
                .map(|d| Param {
                    name: d.args[0].to_string(),
                    value: d.args.get(1).map(|a| a.to_string()).unwrap_or_default(),
                    src: self.src(d),
                })
                .collect()
        })
    }

    fn limit_req(&self, levels: &Levels<'a>) -> Arc<[LimitReq]> {
        shared(
            &self.shared_limit_req,
            array(levels, "limit_req"),
            |found| {
                found
                    .into_iter()
                    .filter_map(|d| {
                        let mut l = LimitReq {
                            zone: String::new(),
                            burst: None,
                            nodelay: false,
                            delay: None,
                            src: self.src(d),
                            zone_def: None,
                        };
                        for a in &d.args {
                            if let Some(z) = a.strip_prefix("zone=") {
                                l.zone = z.to_string();
                            } else if let Some(b) = a.strip_prefix("burst=") {
                                l.burst = b.parse().ok();
                            } else if let Some(b) = a.strip_prefix("delay=") {
                                l.delay = b.parse().ok();
                            } else if a == "nodelay" {
                                l.nodelay = true;
                            }
                        }
                        l.zone_def = self
                            .m
                            .limit_req_zones
                            .iter()
                            .find(|z| z.name == l.zone)
                            .cloned();
                        (!l.zone.is_empty()).then_some(l)
                    })
                    .collect()
            },
        )
    }

    fn limit_conn(&self, levels: &Levels<'a>) -> Arc<[LimitConn]> {
        shared(
            &self.shared_limit_conn,
            array(levels, "limit_conn"),
            |found| {
                let zones: Vec<(&str, &str)> = levels[0]
                    .named(Name::new("limit_conn_zone"))
                    .iter()
                    .filter_map(|d| {
                        let key = d.args.first()?;
                        let zone = d.args.iter().find_map(|a| a.strip_prefix("zone="))?;
                        Some((zone.split(':').next().unwrap_or(zone), key.as_str()))
                    })
                    .collect();
                found
                    .into_iter()
                    .filter_map(|d| {
                        let zone = d.args.first()?.to_string();
                        Some(LimitConn {
                            limit: d.args.get(1).and_then(|a| a.parse().ok()),
                            zone_key: zones
                                .iter()
                                .find(|(z, _)| *z == zone)
                                .map(|(_, k)| k.to_string()),
                            zone,
                            src: self.src(d),
                        })
                    })
                    .collect()
            },
        )
    }

    fn error_pages(&self, levels: &Levels<'a>) -> Arc<[ErrorPage]> {
        shared(
            &self.shared_error_pages,
            array(levels, "error_page"),
            |found| {
                found
                    .into_iter()
                    .filter_map(|d| {
                        let uri = d.args.last()?.to_string();
                        let mut codes = Vec::new();
                        let mut response = None;
                        for a in &d.args[..d.args.len() - 1] {
                            if a.starts_with('=') {
                                response = Some(a.to_string());
                            } else if let Ok(c) = a.parse() {
                                codes.push(c);
                            }
                        }
                        Some(ErrorPage {
                            codes,
                            response,
                            uri,
                            src: self.src(d),
                        })
                    })
                    .collect()
            },
        )
    }

    fn pass(
        &self,
        proto: Protocol,
        kind: PassKind,
        d: &'a Directive,
        scope: usize,
        levels: &Levels<'a>,
    ) -> Pass {
        let url = d.args[0].to_string();
        let u = split_pass_url(&url);
        let name = ModuleDirectives::of(kind);
        let stream = proto == Protocol::Stream;
        let tls = if stream {
            self.flag(levels, "proxy_ssl").value
        } else {
            matches!(u.scheme.as_deref(), Some("https" | "grpcs" | "suwsgi"))
        };
        let target = self.target(proto, &url, &u);
        let read_timeout = if stream {
            self.time(levels, "proxy_timeout", DEFAULT_STREAM_TIMEOUT)
        } else {
            self.time(levels, name.read_timeout, DEFAULT_TIMEOUT)
        };
        let send_timeout = if stream {
            read_timeout.clone()
        } else {
            self.time(levels, name.send_timeout, DEFAULT_TIMEOUT)
        };
        let buffer_size = {
            let d = scalar(levels, name.buffer_size);
            match d.and_then(|d| d.args.first()).and_then(|a| parse_size(a)) {
                Some(v) => Eff {
                    value: v,
                    src: self.eff_src(d),
                },
                None => Eff::default_value(PAGE),
            }
        };
        let buffers = {
            let d = scalar(levels, name.buffers);
            let parsed = d.and_then(|d| {
                Some(Buffers {
                    count: d.args.first()?.parse().ok()?,
                    size: parse_size(d.args.get(1)?)?,
                })
            });
            match parsed {
                Some(v) => Eff {
                    value: v,
                    src: self.eff_src(d),
                },
                None => Eff::default_value(Buffers {
                    count: 8,
                    size: PAGE,
                }),
            }
        };
        let http_proxy = kind == PassKind::Proxy && !stream;
        let http_version = http_proxy.then(|| {
            let v = self.string(levels, "proxy_http_version");
            Eff {
                value: v.value.unwrap_or_else(|| "1.0".to_string()),
                src: v.src,
            }
        });
        let headers = match kind {
            PassKind::Proxy if !stream => self.params(levels, "proxy_set_header"),
            PassKind::Grpc => self.params(levels, "grpc_set_header"),
            _ => Arc::from(Vec::new()),
        };
        // nginx sends `Connection: close` unless proxy_set_header overrides it
        // (`ngx_http_proxy_headers` in ngx_http_proxy_module.c).
        let connection_header = http_proxy.then(|| {
            match headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("connection"))
            {
                Some(h) => Eff {
                    value: h.value.clone(),
                    src: Some(h.src.clone()),
                },
                None => Eff::default_value("close".to_string()),
            }
        });
        let keep_conn = (kind == PassKind::Fastcgi).then(|| self.flag(levels, "fastcgi_keep_conn"));
        let params = match kind {
            PassKind::Fastcgi | PassKind::Uwsgi | PassKind::Scgi => self.params(levels, name.param),
            _ => Arc::from(Vec::new()),
        };
        let next_upstream = {
            let d = scalar(levels, name.next_upstream);
            Eff {
                value: d.map(|d| strings(&d.args)).unwrap_or_else(|| {
                    if stream {
                        vec!["on".to_string()]
                    } else {
                        vec!["error".to_string(), "timeout".to_string()]
                    }
                }),
                src: self.eff_src(d),
            }
        };
        let next_upstream_tries = {
            let d = scalar(levels, name.next_upstream_tries);
            Eff {
                value: d
                    .and_then(|d| d.args.first())
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0),
                src: self.eff_src(d),
            }
        };
        let has_ssl = matches!(kind, PassKind::Proxy | PassKind::Grpc | PassKind::Uwsgi);
        let ssl = has_ssl.then(|| {
            let protocols = scalar(levels, name.ssl_protocols);
            Ssl {
                server_name: self.flag(levels, name.ssl_server_name),
                name: self.string(levels, name.ssl_name),
                verify: self.flag(levels, name.ssl_verify),
                trusted_certificate: self.string(levels, name.ssl_trusted_certificate),
                protocols: Eff {
                    // nginx 1.22's default; 1.23.4 added TLSv1.3.
                    value: protocols.map(|d| strings(&d.args)).unwrap_or_else(|| {
                        ["TLSv1", "TLSv1.1", "TLSv1.2"].map(String::from).to_vec()
                    }),
                    src: self.eff_src(protocols),
                },
                certificate: self.string(levels, name.ssl_certificate),
            }
        });
        Pass {
            kind,
            protocol: proto,
            src: self.src(d),
            url,
            scheme: u.scheme.clone(),
            tls,
            target,
            scope,
            connect_timeout: self.time(levels, name.connect_timeout, DEFAULT_TIMEOUT),
            read_timeout,
            send_timeout,
            buffer_size,
            buffers,
            http_version,
            headers,
            connection_header,
            keep_conn,
            params,
            next_upstream,
            next_upstream_tries,
            next_upstream_timeout: self.time(levels, name.next_upstream_timeout, Duration::ZERO),
            ssl,
        }
    }

    /// What a pass URL points at, following `ngx_http_upstream_add`: a name without a port
    /// that matches an `upstream {}` block of the same protocol is that group.
    fn target(&self, proto: Protocol, url: &str, u: &super::values::PassUrl) -> Target {
        if let Some(path) = &u.unix {
            return Target::Unix { path: path.clone() };
        }
        let group = |name: &str| {
            self.upstream_index
                .get(&(proto, name.to_string()))
                .map(|&index| Target::Group {
                    name: name.to_string(),
                    index,
                })
        };
        if u.authority.contains('$') {
            return Target::Dynamic {
                host: u.authority.clone(),
            };
        }
        let Some((host, port)) = split_host_port(&u.authority) else {
            return Target::Dynamic {
                host: u.authority.clone(),
            };
        };
        if port.is_none() {
            if let Some(g) = group(host) {
                return g;
            }
        }
        // With variables elsewhere in the URL, nginx resolves a host name per request.
        if url.contains('$') && !is_ip_literal(host) {
            return Target::Dynamic {
                host: u.authority.clone(),
            };
        }
        let default_port = match u.scheme.as_deref() {
            Some("http" | "grpc") => Some(80),
            Some("https" | "grpcs") => Some(443),
            _ => None,
        };
        Target::Host {
            host: host.to_string(),
            port: port.or(default_port),
        }
    }
}

/// The module directives a pass reads, by their name for one module (`proxy_read_timeout`,
/// `fastcgi_read_timeout`, ...): written out once, since formatting them for every pass was a
/// fifth of building the model of a 5,000-server config (callgrind).
struct ModuleDirectives {
    connect_timeout: &'static str,
    read_timeout: &'static str,
    send_timeout: &'static str,
    buffer_size: &'static str,
    buffers: &'static str,
    param: &'static str,
    next_upstream: &'static str,
    next_upstream_tries: &'static str,
    next_upstream_timeout: &'static str,
    ssl_protocols: &'static str,
    ssl_server_name: &'static str,
    ssl_name: &'static str,
    ssl_verify: &'static str,
    ssl_trusted_certificate: &'static str,
    ssl_certificate: &'static str,
}

/// A [`ModuleDirectives`] for one module prefix.
macro_rules! module_directives {
    ($prefix:literal) => {
        ModuleDirectives {
            connect_timeout: concat!($prefix, "_connect_timeout"),
            read_timeout: concat!($prefix, "_read_timeout"),
            send_timeout: concat!($prefix, "_send_timeout"),
            buffer_size: concat!($prefix, "_buffer_size"),
            buffers: concat!($prefix, "_buffers"),
            param: concat!($prefix, "_param"),
            next_upstream: concat!($prefix, "_next_upstream"),
            next_upstream_tries: concat!($prefix, "_next_upstream_tries"),
            next_upstream_timeout: concat!($prefix, "_next_upstream_timeout"),
            ssl_protocols: concat!($prefix, "_ssl_protocols"),
            ssl_server_name: concat!($prefix, "_ssl_server_name"),
            ssl_name: concat!($prefix, "_ssl_name"),
            ssl_verify: concat!($prefix, "_ssl_verify"),
            ssl_trusted_certificate: concat!($prefix, "_ssl_trusted_certificate"),
            ssl_certificate: concat!($prefix, "_ssl_certificate"),
        }
    };
}

impl ModuleDirectives {
    fn of(kind: PassKind) -> &'static ModuleDirectives {
        const PROXY: ModuleDirectives = module_directives!("proxy");
        const FASTCGI: ModuleDirectives = module_directives!("fastcgi");
        const UWSGI: ModuleDirectives = module_directives!("uwsgi");
        const SCGI: ModuleDirectives = module_directives!("scgi");
        const GRPC: ModuleDirectives = module_directives!("grpc");
        const MEMCACHED: ModuleDirectives = module_directives!("memcached");
        match kind {
            PassKind::Proxy => &PROXY,
            PassKind::Fastcgi => &FASTCGI,
            PassKind::Uwsgi => &UWSGI,
            PassKind::Scgi => &SCGI,
            PassKind::Grpc => &GRPC,
            PassKind::Memcached => &MEMCACHED,
        }
    }
}

/// Each module directive a pass reads and the setting it names, for the test that the table
/// follows [`PassKind::prefix`].
#[cfg(test)]
pub(super) fn module_directives_of(kind: PassKind) -> Vec<(&'static str, &'static str)> {
    let d = ModuleDirectives::of(kind);
    vec![
        (d.connect_timeout, "connect_timeout"),
        (d.read_timeout, "read_timeout"),
        (d.send_timeout, "send_timeout"),
        (d.buffer_size, "buffer_size"),
        (d.buffers, "buffers"),
        (d.param, "param"),
        (d.next_upstream, "next_upstream"),
        (d.next_upstream_tries, "next_upstream_tries"),
        (d.next_upstream_timeout, "next_upstream_timeout"),
        (d.ssl_protocols, "ssl_protocols"),
        (d.ssl_server_name, "ssl_server_name"),
        (d.ssl_name, "ssl_name"),
        (d.ssl_verify, "ssl_verify"),
        (d.ssl_trusted_certificate, "ssl_trusted_certificate"),
        (d.ssl_certificate, "ssl_certificate"),
    ]
}

/// How many scope blocks (server, location, if, limit_except) and `*_pass` directives the
/// build will meet: each file counted once, then as many times as it is included (a snippet of
/// locations included by every server makes scopes in each).
pub(super) fn count_blocks(cfg: &Config) -> (usize, usize) {
    #[derive(Default)]
    struct Own {
        scopes: usize,
        passes: usize,
        includes: Vec<FileId>,
    }
    fn walk(ds: &[Directive], own: &mut Own) {
        for d in ds {
            match d.name.as_str() {
                // An upstream's `server` lines are no scope.
                "server" | "location" | "if" | "limit_except" if d.block.is_some() => {
                    own.scopes += 1
                }
                "include" => own.includes.extend_from_slice(d.includes()),
                name if PassKind::from_directive(name).is_some() => own.passes += 1,
                _ => {}
            }
            if let Some(b) = &d.block {
                walk(b, own);
            }
        }
    }
    fn total(
        f: FileId,
        own: &[Own],
        memo: &mut [Option<(usize, usize)>],
        depth: usize,
    ) -> (usize, usize) {
        if let Some(n) = memo.get(f).copied().flatten() {
            return n;
        }
        let Some(o) = own.get(f) else { return (0, 0) };
        let mut n = (o.scopes, o.passes);
        // The build stops following includes at the same depth. A file is counted before its
        // includes are, so a cycle in a hand-made tree ends (the parser's trees have none).
        memo[f] = Some(n);
        if depth < MAX_INCLUDE_DEPTH {
            for &inc in &o.includes {
                let (s, p) = total(inc, own, memo, depth + 1);
                n = (n.0 + s, n.1 + p);
            }
            memo[f] = Some(n);
        }
        n
    }
    let own: Vec<Own> = cfg
        .files
        .iter()
        .map(|f| {
            let mut o = Own::default();
            walk(&f.parsed, &mut o);
            o
        })
        .collect();
    let mut memo = vec![None; own.len()];
    total(0, &own, &mut memo, 0)
}

/// The innermost directive named `name`.
fn scalar<'a>(levels: &Levels<'a>, name: &str) -> Option<&'a Directive> {
    let name = Name::new(name);
    levels.iter().rev().find_map(|l| l.first_named(name))
}

/// All the directives named `name` of the innermost level that has any.
fn array<'a>(levels: &Levels<'a>, name: &str) -> Vec<&'a Directive> {
    let name = Name::new(name);
    levels
        .iter()
        .rev()
        .map(|l| l.named(name))
        .find(|found| !found.is_empty())
        .map_or_else(Vec::new, Cow::into_owned)
}

/// A directive as one line of nginx.conf: `name arg "arg with space";` (or `... {` for a
/// block), quoting what the lexer would otherwise split.
pub fn directive_text(d: &Directive) -> String {
    // Each argument gains a space and at most two quotes.
    let len = d.name.len() + d.args.iter().map(|a| a.len() + 3).sum::<usize>() + 2;
    let mut s = String::with_capacity(len);
    s.push_str(&d.name);
    for a in &d.args {
        s.push(' ');
        let plain = !a.is_empty()
            && !a.bytes().any(|b| {
                b.is_ascii_whitespace() || matches!(b, b';' | b'{' | b'}' | b'"' | b'\'' | b'#')
            });
        // Arguments keep nginx's escapes (crossplane's form), so quoting is all that is needed.
        if plain {
            s.push_str(a);
        } else if a.contains('"') {
            s.push('\'');
            s.push_str(a);
            s.push('\'');
        } else {
            s.push('"');
            s.push_str(a);
            s.push('"');
        }
    }
    s.push_str(if d.block.is_some() { " {" } else { ";" });
    s
}

/// Arguments as the model's owned strings.
fn strings(args: &[Text]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}
