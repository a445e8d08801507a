//! Builds the [`Model`] from the parsed [`Config`]: walks `http {}` and `stream {}` once,
//! carrying down what is in effect at each level ([`inherit::Inherited`]), from which each scope
//! and `*_pass` reads its settings.
//!
//! The two inheritance rules of `ngx_http_*_merge_loc_conf`:
//! - a scalar directive (`proxy_read_timeout`, `resolver`, ...) comes from the innermost level
//!   that sets it (`ngx_conf_merge_*_value`);
//! - an array-like one (`proxy_set_header`, `fastcgi_param`, `add_header`, `error_page`,
//!   `limit_req`, `limit_conn`, `access_log`) is taken whole from the innermost level that has at
//!   least one, and the outer ones are ignored (`if (conf->x == NULL) conf->x = prev->x`).
//!   This is why one `fastcgi_param` in a location silently drops every one set at `http` level.

mod inherit;
#[allow(unsafe_code)]
mod split;

use std::sync::Arc;
use std::time::Duration;

use medic_parse::config::{Config, Directive, FileId, Text};

use super::model::*;
use super::values::{
    is_ip_literal, parse_flag, parse_size, parse_time, split_host_port, split_pass_url, Rate,
};
use inherit::{Inherited, List, Scalar, MODULE_SETTINGS};
use split::{Lent, Out};

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

/// nginx's defaults of the list settings a pass reads.
#[derive(Clone, Copy)]
enum DefaultList {
    /// `*_next_upstream error timeout` (`ngx_http_proxy_merge_loc_conf`).
    NextUpstream,
    /// `proxy_next_upstream on` of the stream module.
    StreamNextUpstream,
    /// nginx 1.22's `*_ssl_protocols`; 1.23.4 added TLSv1.3.
    SslProtocols,
}

impl DefaultList {
    fn words(self) -> &'static [&'static str] {
        match self {
            DefaultList::NextUpstream => &["error", "timeout"],
            DefaultList::StreamNextUpstream => &["on"],
            DefaultList::SslProtocols => &["TLSv1", "TLSv1.1", "TLSv1.2"],
        }
    }
}

/// Includes deeper than this are treated as a loop (the parser should have cut it already).
const MAX_INCLUDE_DEPTH: usize = 64;

/// Builds the effective model. Pure: it reads the parsed tree only. The model keeps the tree:
/// its sources ([`Src`]) are read from it when a rule cites them.
pub fn build(cfg: &Arc<Config>, opts: &BuildOptions) -> Model {
    build_with(cfg, opts, PARALLEL_SERVERS)
}

/// A `http {}` or `stream {}` with at least this many servers builds its second half of them on
/// a second thread. The servers are independent once the definitions above them are read, and
/// the build is the larger half of `config lint`'s time on a big config.
const PARALLEL_SERVERS: usize = 64;

/// [`build`], splitting the servers across two threads from `parallel_from` servers on (tests
/// lower it to check that the split changes nothing).
pub(super) fn build_with(cfg: &Arc<Config>, opts: &BuildOptions, parallel_from: usize) -> Model {
    build_miscounted(cfg, opts, parallel_from, (0, 0))
}

/// [`build_with`], with the sizes of a split's parts off by `miscount` (added to the first
/// half's count, then to the second's bound): tests check that the model is the same.
pub(super) fn build_miscounted(
    cfg: &Arc<Config>,
    opts: &BuildOptions,
    parallel_from: usize,
    miscount: (isize, isize),
) -> Model {
    build_on(cfg, opts, parallel_from, miscount, true)
}

/// [`build`] with the upstream blocks built by the builder itself, as when their thread
/// cannot start: tests check that the model is the same.
#[cfg(test)]
pub(super) fn build_upstreams_here(cfg: &Arc<Config>, opts: &BuildOptions) -> Model {
    build_on(cfg, opts, PARALLEL_SERVERS, (0, 0), false)
}

fn build_on(
    cfg: &Arc<Config>,
    opts: &BuildOptions,
    parallel_from: usize,
    miscount: (isize, isize),
    upstream_thread: bool,
) -> Model {
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
    b.miscount = miscount;
    b.m.prefix = opts.prefix.clone();
    let Some(main) = cfg.files.first() else {
        return b.m;
    };
    let top = b.children(&main.parsed);
    if !upstream_thread {
        b.main(&top);
        return b.m;
    }
    // The upstream blocks are needed only at the servers, and are the larger part of what
    // comes before them (1,000 upstreams: 2.2 of 2.7 ms): another thread builds them while
    // this one reads the other definitions and counts the first half of the servers.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (files, top) = (b.sources.files().to_vec(), &top);
        let building = medic_thread::spawn_scoped(scope, "upstreams", move || {
            let _ = tx.send(upstream_blocks(cfg, files, top));
        });
        // Without a thread (the closure and its sender dropped) the builder builds them.
        drop(building);
        b.upstreams = Upstreams::Building(rx);
        b.main(top);
    });
    b.m
}

/// The upstream blocks of each protocol block, in the order of the tree.
type UpstreamBlocks = std::collections::VecDeque<Vec<Upstream>>;

/// Where [`Builder::protocol_block`] takes its upstream blocks from.
#[derive(Default)]
enum Upstreams {
    /// Being built on another thread ([`upstream_blocks`]).
    Building(std::sync::mpsc::Receiver<UpstreamBlocks>),
    Built(UpstreamBlocks),
    /// Built by this builder, block by block.
    #[default]
    Here,
}

/// The protocol of an `http {}` or `stream {}` block.
fn protocol_of(block_name: &str) -> Option<Protocol> {
    match block_name {
        "http" => Some(Protocol::Http),
        "stream" => Some(Protocol::Stream),
        _ => None,
    }
}

/// The upstream blocks of every `http {}` and `stream {}` of the main file's `top` level, in
/// the order [`Builder::main`] reaches them.
fn upstream_blocks(cfg: &Arc<Config>, files: Vec<Arc<str>>, top: &[&Directive]) -> UpstreamBlocks {
    let b = Builder::new(
        cfg,
        Seed {
            files,
            ..Seed::default()
        },
    );
    top.iter()
        .filter_map(|d| Some((protocol_of(&d.name)?, d.block.as_deref()?)))
        .map(|(proto, block)| {
            b.children(block)
                .into_iter()
                .filter(|d| d.name == "upstream")
                .filter_map(|d| b.upstream(proto, d))
                .collect()
        })
        .collect()
}

/// Inherited lists already built, by their first directive (which identifies the level that
/// sets them): a 5,000-server config repeats the same `fastcgi_param`s, `error_page`s and
/// `limit_req`s in every location.
type Shared<T> = std::cell::RefCell<foldhash::HashMap<*const Directive, Arc<[T]>>>;

/// The empty list, one per cache (under the null key): most scopes and passes have no
/// `limit_req`, `limit_conn` or headers, and each empty `Arc` was an allocation of its own.
fn empty<T>(cache: &Shared<T>) -> Arc<[T]> {
    cache
        .borrow_mut()
        .entry(std::ptr::null())
        .or_insert_with(|| Arc::from(Vec::new()))
        .clone()
}

/// The (file, format) pairs of the access logs listed so far, as `LEN:fileformat` (the
/// length keeps any two pairs apart).
#[derive(Clone, Default)]
struct SeenAccessLogs {
    seen: foldhash::HashSet<String>,
    key: String,
}

impl SeenAccessLogs {
    /// Whether the pair is new (then it is recorded). A pair seen before costs no allocation.
    fn first(&mut self, path: &str, format: &str) -> bool {
        self.key.clear();
        // Not `write!`: the join of a split makes a key for each of the other half's logs
        // (2,500 on a 5,000-server config), and the formatter's machinery is the slow part
        // of a small one.
        self.key.push_str(itoa::Buffer::new().format(path.len()));
        self.key.push(':');
        self.key.push_str(path);
        self.key.push_str(format);
        if self.seen.contains(self.key.as_str()) {
            return false;
        }
        self.seen.insert(self.key.clone())
    }
}

struct Builder<'a, 'v> {
    cfg: &'a Arc<Config>,
    /// The directives of the levels from the protocol block to the one being built, includes
    /// spliced in: each level is a range of it, pushed on entering the block and cut on leaving.
    stack: Vec<&'a Directive>,
    /// The protocol block's `limit_conn_zone`s: zone name and key.
    limit_conn_zones: Vec<(&'a str, &'a str)>,
    /// The tree and its file names, referred to by every `Src` this builder makes.
    sources: Arc<Sources>,
    /// The (file, format) pairs of `access_logs` so far.
    seen_access_logs: SeenAccessLogs,
    /// [`Model::upstreams`] by protocol and name: every pass looks its group up (a linear
    /// search of 1,000 upstreams for each of 5,000 passes was a tenth of the build).
    upstream_index: foldhash::HashMap<(Protocol, String), usize>,
    shared_params: Shared<Param>,
    shared_error_pages: Shared<ErrorPage>,
    shared_limit_req: Shared<LimitReq>,
    shared_limit_conn: Shared<LimitConn>,
    /// The arguments of `resolver`, `*_next_upstream`, `*_ssl_protocols` directives.
    shared_args: Shared<Text>,
    /// The TLS settings of passes, by the directives that set them (null: the default).
    shared_ssl: std::cell::RefCell<foldhash::HashMap<[*const Directive; 6], Arc<Ssl>>>,
    /// The inherited settings of scopes, likewise.
    shared_scope_settings:
        std::cell::RefCell<foldhash::HashMap<[*const Directive; 7], Arc<ScopeSettings>>>,
    /// The inherited settings of passes, by module and [`PassSettingsKey`].
    shared_pass_settings: std::cell::RefCell<foldhash::HashMap<PassSettingsKey, Arc<PassSettings>>>,
    /// nginx's defaults of the last two, by [`DefaultList`].
    default_lists: [std::cell::OnceCell<Arc<[Text]>>; 3],
    prefix: Option<String>,
    /// Servers from which a protocol block is split across two threads.
    parallel_from: usize,
    /// See [`build_miscounted`].
    miscount: (isize, isize),
    /// The upstream blocks not yet added to the model.
    upstreams: Upstreams,
    /// Where scopes and passes go: [`Model::scopes`] and [`Model::passes`], but while a
    /// protocol block is split ([`split`]).
    scopes_out: Out<'v, Scope>,
    passes_out: Out<'v, Pass>,
    /// The index of this builder's first server in the whole model (the second half's are
    /// numbered after the first's).
    server_base: usize,
    m: Model,
}

/// What building a server reads besides the tree: the definitions made before the servers,
/// handed to the builder of the other half. Owned, so it can move to that thread.
#[derive(Default)]
struct Seed<'a> {
    /// The protocol block's level, at the same place in the stack as in this builder's.
    stack: Vec<&'a Directive>,
    limit_conn_zones: Vec<(&'a str, &'a str)>,
    files: Vec<Arc<str>>,
    prefix: Option<String>,
    upstream_index: foldhash::HashMap<(Protocol, String), usize>,
    seen_access_logs: SeenAccessLogs,
    log_formats: Vec<LogFormatDef>,
    limit_req_zones: Vec<LimitReqZone>,
}

impl<'a, 'v> Builder<'a, 'v> {
    fn new(cfg: &'a Arc<Config>, seed: Seed<'a>) -> Builder<'a, 'v> {
        Builder {
            cfg,
            sources: Sources::of(Arc::clone(cfg), seed.files),
            stack: seed.stack,
            limit_conn_zones: seed.limit_conn_zones,
            seen_access_logs: seed.seen_access_logs,
            upstream_index: seed.upstream_index,
            shared_params: Default::default(),
            shared_error_pages: Default::default(),
            shared_limit_req: Default::default(),
            shared_limit_conn: Default::default(),
            shared_args: Default::default(),
            shared_ssl: Default::default(),
            shared_scope_settings: Default::default(),
            shared_pass_settings: Default::default(),
            default_lists: Default::default(),
            prefix: seed.prefix.clone(),
            parallel_from: usize::MAX,
            miscount: (0, 0),
            upstreams: Upstreams::Here,
            scopes_out: Out::default(),
            passes_out: Out::default(),
            server_base: 0,
            m: Model {
                prefix: seed.prefix,
                log_formats: seed.log_formats,
                limit_req_zones: seed.limit_req_zones,
                ..Model::default()
            },
        }
    }

    /// The seed of a builder for other servers of this config.
    fn seed(&self) -> Seed<'a> {
        Seed {
            stack: self.stack.clone(),
            limit_conn_zones: self.limit_conn_zones.clone(),
            files: self.sources.files().to_vec(),
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

    /// Where a setting comes from: a place in the tree, read when a rule cites it.
    fn src(&self, d: &Directive) -> Src {
        self.sources.src(d)
    }

    fn path(&self, p: &str) -> String {
        resolve(self.prefix.as_deref(), p)
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
            let (Some(proto), Some(block)) = (protocol_of(&d.name), &d.block) else {
                continue;
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
                format: Arc::from(COMBINED),
                src: None,
            });
        }
        for d in &level {
            match d.name.as_str() {
                // Built on their own thread ([`upstream_blocks`]), added below.
                "upstream" => {}
                "log_format" => self.log_format(proto, d),
                "limit_req_zone" => self.limit_req_zone(d),
                "error_log" => self.error_log(d, context),
                "map" => self.map(d),
                _ => {}
            }
        }
        // The protocol block is the stack's first level.
        self.stack.clear();
        self.stack.extend_from_slice(&level);
        let top = Inherited::default().enter(&self.stack, 0);
        self.limit_conn_zones = level
            .iter()
            .filter(|d| d.name == "limit_conn_zone")
            .filter_map(|d| {
                let key = d.args.first()?;
                let zone = d.args.iter().find_map(|a| a.strip_prefix("zone="))?;
                Some((zone.split(':').next().unwrap_or(zone), key.as_str()))
            })
            .collect();
        self.access_logs(proto, 0..level.len());
        let servers: Vec<&'a Directive> = level
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
        // Counted, not estimated: the second half's scopes and passes go into this model's
        // vectors right after the first half's ([`split`]). Counted before the upstreams are
        // taken, while their thread builds them.
        let counted = (!theirs.is_empty()).then(|| count(self.cfg, mine));
        self.add_upstreams(proto, &level);
        if theirs.is_empty() {
            self.servers(proto, mine, &top);
            return;
        }
        // Room for every server, and for two listens and an access log per server (most have
        // no more): the other half's are appended at the join, where growing the vectors
        // copied this half's (0.4 of the join's 1.2 ms on 5,000 servers).
        self.m.servers.reserve(servers.len());
        self.m.listens.reserve(2 * servers.len());
        self.m.access_logs.reserve(servers.len());
        let (my_scopes, my_passes) = counted.unwrap_or_default();
        let (their_scopes, their_passes) = (
            bound(my_scopes, mine.len(), theirs.len()),
            bound(my_passes, mine.len(), theirs.len()),
        );
        let (off_mine, off_theirs) = self.miscount;
        let (my_scopes, my_passes) = (
            my_scopes.saturating_add_signed(off_mine),
            my_passes.saturating_add_signed(off_mine),
        );
        let (their_scopes, their_passes) = (
            their_scopes.saturating_add_signed(off_theirs),
            their_passes.saturating_add_signed(off_theirs),
        );
        let scope_base = self.m.scopes.len() + my_scopes;
        let pass_base = self.m.passes.len() + my_passes;
        // SAFETY: until the joins below, this builder pushes scopes and passes only through
        // `scopes_out` and `passes_out`, limited at the lent parts' bases, and nothing else
        // reads, grows or drops the two vectors.
        #[allow(unsafe_code)]
        let lent = unsafe {
            (
                Lent::lend(&mut self.m.scopes, scope_base, their_scopes),
                Lent::lend(&mut self.m.passes, pass_base, their_passes),
            )
        };
        self.scopes_out = Out::Own {
            limit: lent.0.base(),
            overflow: Vec::new(),
        };
        self.passes_out = Out::Own {
            limit: lent.1.base(),
            overflow: Vec::new(),
        };
        let (cfg, seed) = (self.cfg, self.seed());
        let server_base = self.m.servers.len() + mine.len();
        let their_top = top.clone();
        let (done, part) = std::sync::mpsc::sync_channel(1);
        std::thread::scope(|scope| {
            let other = medic_thread::spawn_scoped(scope, "model", move || {
                let mut b = Builder::new(cfg, seed);
                b.server_base = server_base;
                b.scopes_out = Out::Lent(lent.0);
                b.passes_out = Out::Lent(lent.1);
                b.servers(proto, theirs, &their_top);
                let _ = done.send((b.m, b.scopes_out, b.passes_out));
                // The rest of the builder (its caches: 0.65 ms to free on the 5,000-server
                // config) is dropped here, while the other builder joins what was sent.
            });
            self.servers(proto, mine, &top);
            match medic_thread::recv(&part) {
                Ok((part, scopes, passes)) => self.join(part, scopes, passes),
                // The thread did not start (the lent parts were dropped unwritten with the
                // closure), or it panicked before it was done.
                Err(_) => {
                    if let Ok(Err(panic)) = other.map(|handle| handle.join()) {
                        std::panic::resume_unwind(panic);
                    }
                    self.join(Model::default(), Out::default(), Out::default());
                    self.servers(proto, theirs, &top);
                }
            }
        });
    }

    fn servers(&mut self, proto: Protocol, servers: &[&'a Directive], top: &Inherited<'a>) {
        for s in servers {
            self.server(proto, s, top);
        }
    }

    /// Pushes a block's directives (includes spliced in) onto the stack: the level's range.
    fn push_level(&mut self, block: &'a [Directive]) -> std::ops::Range<usize> {
        let start = self.stack.len();
        let mut stack = std::mem::take(&mut self.stack);
        self.flatten(block, &mut stack, 0);
        self.stack = stack;
        start..self.stack.len()
    }

    /// Ends a split: takes back the parts of the scope and pass vectors lent to the builder of
    /// the other servers, and appends what else it made, in the order one builder would have
    /// made them. Its scopes and passes are renumbered only when the counts were off
    /// ([`split::give_back`]); its servers already are (from [`Builder::server_base`]), its
    /// listens are shifted past this model's, access logs already listed here dropped, `set`
    /// values come after this model's.
    fn join(&mut self, part: Model, scopes: Out<'v, Scope>, passes: Out<'v, Pass>) {
        let own_scopes = std::mem::take(&mut self.scopes_out);
        let own_passes = std::mem::take(&mut self.passes_out);
        let scopes = split::give_back(&mut self.m.scopes, own_scopes, scopes);
        let passes = split::give_back(&mut self.m.passes, own_passes, passes);
        let shift = |i: &mut usize, by: isize| *i = i.wrapping_add_signed(by);
        if scopes.shift != 0 || passes.shift != 0 {
            for s in &mut self.m.scopes[scopes.start..] {
                if let Some(p) = &mut s.parent {
                    shift(p, scopes.shift);
                }
                s.passes.iter_mut().for_each(|p| shift(p, passes.shift));
            }
            for p in &mut self.m.passes[passes.start..] {
                shift(&mut p.scope, scopes.shift);
            }
        }
        let listens = self.m.listens.len();
        self.m.servers.extend(part.servers.into_iter().map(|mut s| {
            s.listens.iter_mut().for_each(|l| *l += listens);
            shift(&mut s.scope, scopes.shift);
            s
        }));
        self.m.listens.extend(part.listens);
        self.m.error_logs.extend(part.error_logs);
        self.seen_access_logs.seen.reserve(part.access_logs.len());
        for log in part.access_logs {
            if self.seen_access_logs.first(&log.path, &log.format_name) {
                self.m.access_logs.push(log);
            }
        }
        for (name, values) in part.variables {
            self.m.variables.entry(name).or_default().extend(values);
        }
    }

    /// This protocol block's upstream blocks, from their thread, or built here.
    fn add_upstreams(&mut self, proto: Protocol, level: &[&'a Directive]) {
        if let Upstreams::Building(rx) = &self.upstreams {
            self.upstreams = match medic_thread::recv(rx) {
                Ok(blocks) => Upstreams::Built(blocks),
                // The thread did not start: the sender went with its closure.
                Err(_) => Upstreams::Here,
            };
        }
        let built = match &mut self.upstreams {
            Upstreams::Built(blocks) => blocks.pop_front().unwrap_or_default(),
            _ => level
                .iter()
                .filter(|d| d.name == "upstream")
                .filter_map(|d| self.upstream(proto, d))
                .collect(),
        };
        for u in built {
            // The first block of a name is the one nginx uses (a second is "duplicate
            // upstream").
            let index = self.m.upstreams.len();
            self.upstream_index
                .entry((proto, u.name.clone()))
                .or_insert(index);
            self.m.upstreams.push(u);
        }
    }

    fn upstream(&self, proto: Protocol, d: &'a Directive) -> Option<Upstream> {
        let (Some(name), Some(block)) = (d.args.first(), &d.block) else {
            return None;
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
                    let address = c.args[0].clone();
                    let (host, port) = match address.strip_prefix("unix:") {
                        Some(_) => (None, None),
                        None => match split_host_port(&address) {
                            Some((h, p)) => (
                                Some(Text::from(h)),
                                p.or((proto == Protocol::Http).then_some(80)),
                            ),
                            None => (Some(address.clone()), None),
                        },
                    };
                    u.servers.push(UpstreamServer {
                        address,
                        host,
                        port,
                        params: c.args[1..].to_vec(),
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
        Some(u)
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
            format: Arc::from(rest.concat()),
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
    fn access_logs(&mut self, proto: Protocol, level: std::ops::Range<usize>) {
        for i in level {
            let d = self.stack[i];
            if d.name != "access_log" {
                continue;
            }
            let Some(path) = d.args.first() else { continue };
            if path == "off" {
                continue;
            }
            let (format_name, params) = match d.args.get(1) {
                Some(f) if !f.contains('=') && f != "gzip" => (f.as_str(), &d.args[2..]),
                _ => ("combined", &d.args[1..]),
            };
            let path = self.path(path);
            // One entry per (file, format): a set, since every server may name its own log.
            if !self.seen_access_logs.first(&path, format_name) {
                continue;
            }
            let def = self
                .m
                .log_formats
                .iter()
                .find(|f| f.protocol == proto && f.name == format_name);
            let log = AccessLog {
                protocol: proto,
                path,
                format: def.map(|f| f.format.clone()),
                escape: def
                    .map(|f| f.escape.clone())
                    .unwrap_or_else(|| "default".to_string()),
                format_name: format_name.to_owned(),
                params: strings(params),
                src: self.src(d),
            };
            self.m.access_logs.push(log);
        }
    }

    fn server(&mut self, proto: Protocol, d: &'a Directive, top: &Inherited<'a>) {
        let server_index = self.server_base + self.m.servers.len();
        let level = self.push_level(d.block.as_deref().unwrap_or_default());
        let directives = &self.stack[level.clone()];
        let names = directives
            .iter()
            .filter(|c| c.name == "server_name")
            .flat_map(|c| c.args.iter().cloned())
            .collect();
        let mut listens = Vec::new();
        for i in level.clone() {
            let c = self.stack[i];
            if c.name != "listen" {
                continue;
            }
            let Some(address) = c.args.first() else {
                continue;
            };
            listens.push(self.m.listens.len());
            self.m.listens.push(Listen {
                protocol: proto,
                address: address.clone(),
                params: c.args[1..].to_vec(),
                server: server_index,
                src: self.src(c),
            });
        }
        self.m.servers.push(Server {
            protocol: proto,
            names,
            src: self.src(d),
            listens,
            scope: self.scopes_out.next_index(&self.m.scopes),
        });
        let inherited = top.enter(&self.stack[level.clone()], level.start);
        self.scope(proto, d, "server", server_index, None, level, &inherited);
    }

    /// One request-handling level: its settings, its passes, then its nested blocks. `level` is
    /// its range of the stack, `inh` what is in effect in it; the range is cut on return.
    #[allow(clippy::too_many_arguments)]
    fn scope(
        &mut self,
        proto: Protocol,
        d: &'a Directive,
        kind: &'static str,
        server: usize,
        parent: Option<usize>,
        level: std::ops::Range<usize>,
        inh: &Inherited<'a>,
    ) {
        let index = self.scopes_out.next_index(&self.m.scopes);
        for i in level.clone() {
            let c = self.stack[i];
            if c.name == "error_log" {
                let ctx = if kind == "server" {
                    "server"
                } else {
                    "location"
                };
                self.error_log(c, ctx);
            }
        }
        self.access_logs(proto, level.clone());
        let mut scope = Scope {
            protocol: proto,
            kind,
            args: if kind == "server" {
                Args::default()
            } else {
                d.args.clone()
            },
            server,
            parent,
            src: self.src(d),
            settings: self.scope_settings(inh),
            passes: Vec::new(),
        };
        for i in level.clone() {
            let c = self.stack[i];
            if c.name != "set" {
                continue;
            }
            if let (Some(var), Some(value)) = (c.args.first(), c.args.get(1)) {
                if let Some(var) = var.strip_prefix('$') {
                    self.m
                        .variables
                        .entry(var.to_string())
                        .or_default()
                        .push(value.as_str().to_owned());
                }
            }
        }
        let mut passes = Vec::new();
        for i in level.clone() {
            let c = self.stack[i];
            if let Some(kind) = PassKind::from_directive(&c.name) {
                if !c.args.is_empty() {
                    let p = self.pass(proto, kind, c, index, inh);
                    passes.push(self.passes_out.next_index(&self.m.passes));
                    self.passes_out.push(&mut self.m.passes, p);
                }
            }
        }
        // Pushed with its passes: a split's second builder cannot reach back into a scope
        // it has written ([`split`]).
        scope.passes = passes;
        debug_assert_eq!(index, self.scopes_out.next_index(&self.m.scopes));
        self.scopes_out.push(&mut self.m.scopes, scope);
        for i in level.clone() {
            let c = self.stack[i];
            let kind = match c.name.as_str() {
                "location" => "location",
                "if" => "if",
                "limit_except" => "limit_except",
                _ => continue,
            };
            let Some(block) = &c.block else { continue };
            let inner = self.push_level(block);
            let inherited = inh.enter(&self.stack[inner.clone()], inner.start);
            self.scope(proto, c, kind, server, Some(index), inner, &inherited);
        }
        self.stack.truncate(level.start);
    }

    /// What a scope inherits, made once for each set of directives that sets it.
    fn scope_settings(&self, inh: &Inherited<'a>) -> Arc<ScopeSettings> {
        let key = [
            inh.list_key(List::LIMIT_REQ),
            inh.scalar_key(Scalar::LIMIT_REQ_STATUS),
            inh.list_key(List::LIMIT_CONN),
            inh.scalar_key(Scalar::LIMIT_CONN_STATUS),
            inh.list_key(List::ERROR_PAGE),
            inh.scalar_key(Scalar::RESOLVER),
            inh.scalar_key(Scalar::RESOLVER_TIMEOUT),
        ];
        if let Some(settings) = self.shared_scope_settings.borrow().get(&key) {
            return settings.clone();
        }
        let settings = Arc::new(ScopeSettings {
            limit_req: self.limit_req(inh),
            limit_req_status: self.status(inh, Scalar::LIMIT_REQ_STATUS),
            limit_conn: self.limit_conn(inh),
            limit_conn_status: self.status(inh, Scalar::LIMIT_CONN_STATUS),
            error_pages: self.error_pages(inh),
            resolver: inh.scalar(Scalar::RESOLVER).map(|r| Eff {
                value: self.args(r, true),
                src: Some(self.src(r)),
            }),
            resolver_timeout: self.time(inh, Scalar::RESOLVER_TIMEOUT, Duration::from_secs(30)),
        });
        self.shared_scope_settings
            .borrow_mut()
            .insert(key, settings.clone());
        settings
    }

    fn eff_src(&self, d: Option<&Directive>) -> Option<Src> {
        d.map(|d| self.src(d))
    }

    /// A directive's arguments, those without `=` only when `plain`, made once per directive
    /// and shared by every scope and pass that inherits it (a `resolver` at `http` level was a
    /// list in each of 20,000 scopes).
    fn args(&self, d: &Directive, plain: bool) -> Arc<[Text]> {
        let key: *const Directive = d;
        if let Some(list) = self.shared_args.borrow().get(&key) {
            return list.clone();
        }
        let list: Arc<[Text]> = d
            .args
            .iter()
            .filter(|a| !plain || !a.contains('='))
            .cloned()
            .collect();
        self.shared_args.borrow_mut().insert(key, list.clone());
        list
    }

    /// One of nginx's default lists, made once per builder.
    fn default_list(&self, list: DefaultList) -> Arc<[Text]> {
        self.default_lists[list as usize]
            .get_or_init(|| list.words().iter().map(|&w| Text::const_new(w)).collect())
            .clone()
    }

    fn time(&self, inh: &Inherited<'a>, s: Scalar, default: Duration) -> Eff<Duration> {
        match inh.scalar(s) {
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

    fn flag(&self, inh: &Inherited<'a>, s: Scalar) -> Eff<bool> {
        match inh.scalar(s) {
            Some(d) => Eff {
                value: d.args.first().and_then(|a| parse_flag(a)).unwrap_or(false),
                src: Some(self.src(d)),
            },
            None => Eff::default_value(false),
        }
    }

    fn string(&self, inh: &Inherited<'a>, s: Scalar) -> Eff<Option<Text>> {
        let d = inh.scalar(s);
        Eff {
            value: d.and_then(|d| d.args.first().cloned()),
            src: self.eff_src(d),
        }
    }

    fn status(&self, inh: &Inherited<'a>, s: Scalar) -> Eff<u16> {
        let d = inh.scalar(s);
        Eff {
            value: d
                .and_then(|d| d.args.first())
                .and_then(|a| a.parse().ok())
                .unwrap_or(503),
            src: self.eff_src(d),
        }
    }

    /// The list in effect, built once per level that sets it and shared (see [`Shared`]).
    fn shared<T>(
        &self,
        cache: &Shared<T>,
        inh: &Inherited<'a>,
        l: List,
        build: impl FnOnce(Vec<&'a Directive>) -> Vec<T>,
    ) -> Arc<[T]> {
        let Some(at) = inh.list(l) else {
            return empty(cache);
        };
        let key: *const Directive = at.first;
        if let Some(list) = cache.borrow().get(&key) {
            return list.clone();
        }
        let name = l.name();
        let found = self.stack[at.level.0 as usize..at.level.1 as usize]
            .iter()
            .copied()
            .filter(|d| d.name == name)
            .collect();
        let list: Arc<[T]> = Arc::from(build(found));
        cache.borrow_mut().insert(key, list.clone());
        list
    }

    fn params(&self, inh: &Inherited<'a>, l: List) -> Arc<[Param]> {
        self.shared(&self.shared_params, inh, l, |found| {
            found
                .into_iter()
                .filter(|d| !d.args.is_empty())
                .map(|d| Param {
                    name: d.args[0].clone(),
                    value: d.args.get(1).cloned().unwrap_or_default(),
                    src: self.src(d),
                })
                .collect()
        })
    }

    fn limit_req(&self, inh: &Inherited<'a>) -> Arc<[LimitReq]> {
        self.shared(&self.shared_limit_req, inh, List::LIMIT_REQ, |found| {
            found
                .into_iter()
                .filter_map(|d| {
                    let mut l = LimitReq {
                        zone: Text::default(),
                        burst: None,
                        nodelay: false,
                        delay: None,
                        src: self.src(d),
                        zone_def: None,
                    };
                    for a in &d.args {
                        if let Some(z) = a.strip_prefix("zone=") {
                            l.zone = Text::from(z);
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
        })
    }

    fn limit_conn(&self, inh: &Inherited<'a>) -> Arc<[LimitConn]> {
        self.shared(&self.shared_limit_conn, inh, List::LIMIT_CONN, |found| {
            found
                .into_iter()
                .filter_map(|d| {
                    let zone = d.args.first()?.clone();
                    Some(LimitConn {
                        limit: d.args.get(1).and_then(|a| a.parse().ok()),
                        zone_key: self
                            .limit_conn_zones
                            .iter()
                            .find(|(z, _)| *z == zone)
                            .map(|(_, k)| Text::from(*k)),
                        zone,
                        src: self.src(d),
                    })
                })
                .collect()
        })
    }

    fn error_pages(&self, inh: &Inherited<'a>) -> Arc<[ErrorPage]> {
        self.shared(&self.shared_error_pages, inh, List::ERROR_PAGE, |found| {
            found
                .into_iter()
                .filter_map(|d| {
                    let uri = d.args.last()?.clone();
                    let mut codes = Vec::new();
                    let mut response = None;
                    for a in &d.args[..d.args.len() - 1] {
                        if a.starts_with('=') {
                            response = Some(a.clone());
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
        })
    }

    fn pass(
        &self,
        proto: Protocol,
        kind: PassKind,
        d: &'a Directive,
        scope: usize,
        inh: &Inherited<'a>,
    ) -> Pass {
        let url = &d.args[0];
        let u = split_pass_url(url);
        let stream = proto == Protocol::Stream;
        let tls = if stream {
            self.flag(inh, Scalar::PROXY_SSL).value
        } else {
            matches!(u.scheme.as_deref(), Some("https" | "grpcs" | "suwsgi"))
        };
        let target = self.target(proto, url, &u);
        Pass {
            kind,
            protocol: proto,
            src: self.src(d),
            url: url.clone(),
            scheme: u.scheme,
            tls,
            target,
            scope,
            settings: self.pass_settings(kind, stream, inh),
        }
    }

    /// What a pass inherits, made once for each module and set of directives that sets it.
    fn pass_settings(
        &self,
        kind: PassKind,
        stream: bool,
        inh: &Inherited<'a>,
    ) -> Arc<PassSettings> {
        let key = (
            kind,
            stream,
            std::array::from_fn(|i| match i.checked_sub(MODULE_SETTINGS.len()) {
                None => inh.scalar_key(Scalar::module(kind, i)),
                Some(j) => match PASS_SCALARS.get(j) {
                    Some(&s) => inh.scalar_key(s),
                    None => inh.list_key(PASS_LISTS[j - PASS_SCALARS.len()]),
                },
            }),
        );
        if let Some(settings) = self.shared_pass_settings.borrow().get(&key) {
            return settings.clone();
        }
        let name = ModuleDirectives::of(kind);
        let read_timeout = if stream {
            self.time(inh, Scalar::PROXY_TIMEOUT, DEFAULT_STREAM_TIMEOUT)
        } else {
            self.time(inh, name.read_timeout, DEFAULT_TIMEOUT)
        };
        let send_timeout = if stream {
            read_timeout.clone()
        } else {
            self.time(inh, name.send_timeout, DEFAULT_TIMEOUT)
        };
        let buffer_size = {
            let d = inh.scalar(name.buffer_size);
            match d.and_then(|d| d.args.first()).and_then(|a| parse_size(a)) {
                Some(v) => Eff {
                    value: v,
                    src: self.eff_src(d),
                },
                None => Eff::default_value(PAGE),
            }
        };
        let buffers = {
            let d = inh.scalar(name.buffers);
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
            let v = self.string(inh, Scalar::PROXY_HTTP_VERSION);
            Eff {
                value: v.value.unwrap_or_else(|| Text::const_new("1.0")),
                src: v.src,
            }
        });
        let headers = match kind {
            PassKind::Proxy if !stream => self.params(inh, List::PROXY_SET_HEADER),
            PassKind::Grpc => self.params(inh, List::GRPC_SET_HEADER),
            _ => empty(&self.shared_params),
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
                None => Eff::default_value(Text::const_new("close")),
            }
        });
        let keep_conn =
            (kind == PassKind::Fastcgi).then(|| self.flag(inh, Scalar::FASTCGI_KEEP_CONN));
        let params = match kind {
            PassKind::Fastcgi => self.params(inh, List::FASTCGI_PARAM),
            PassKind::Uwsgi => self.params(inh, List::UWSGI_PARAM),
            PassKind::Scgi => self.params(inh, List::SCGI_PARAM),
            _ => empty(&self.shared_params),
        };
        let next_upstream = {
            let d = inh.scalar(name.next_upstream);
            Eff {
                value: match d {
                    Some(d) => self.args(d, false),
                    None if stream => self.default_list(DefaultList::StreamNextUpstream),
                    None => self.default_list(DefaultList::NextUpstream),
                },
                src: self.eff_src(d),
            }
        };
        let next_upstream_tries = {
            let d = inh.scalar(name.next_upstream_tries);
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
            let written = [
                name.ssl_server_name,
                name.ssl_name,
                name.ssl_verify,
                name.ssl_trusted_certificate,
                name.ssl_protocols,
                name.ssl_certificate,
            ]
            .map(|s| {
                inh.scalar(s)
                    .map_or(std::ptr::null(), |d| d as *const Directive)
            });
            if let Some(ssl) = self.shared_ssl.borrow().get(&written) {
                return ssl.clone();
            }
            let protocols = inh.scalar(name.ssl_protocols);
            let ssl = Arc::new(Ssl {
                server_name: self.flag(inh, name.ssl_server_name),
                name: self.string(inh, name.ssl_name),
                verify: self.flag(inh, name.ssl_verify),
                trusted_certificate: self.string(inh, name.ssl_trusted_certificate),
                protocols: Eff {
                    // nginx 1.22's default; 1.23.4 added TLSv1.3.
                    value: match protocols {
                        Some(d) => self.args(d, false),
                        None => self.default_list(DefaultList::SslProtocols),
                    },
                    src: self.eff_src(protocols),
                },
                certificate: self.string(inh, name.ssl_certificate),
            });
            self.shared_ssl.borrow_mut().insert(written, ssl.clone());
            ssl
        });
        let settings = Arc::new(PassSettings {
            connect_timeout: self.time(inh, name.connect_timeout, DEFAULT_TIMEOUT),
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
            next_upstream_timeout: self.time(inh, name.next_upstream_timeout, Duration::ZERO),
            ssl,
        });
        self.shared_pass_settings
            .borrow_mut()
            .insert(key, settings.clone());
        settings
    }

    /// What a pass URL points at, following `ngx_http_upstream_add`: a name without a port
    /// that matches an `upstream {}` block of the same protocol is that group.
    fn target(&self, proto: Protocol, url: &str, u: &super::values::PassUrl) -> Target {
        if let Some(path) = u.unix {
            return Target::Unix {
                path: Text::from(path),
            };
        }
        let group = |name: &str| {
            self.upstream_index
                .get(&(proto, name.to_string()))
                .map(|&index| Target::Group {
                    name: Text::from(name),
                    index,
                })
        };
        if u.authority.contains('$') {
            return Target::Dynamic {
                host: Text::from(u.authority),
            };
        }
        let Some((host, port)) = split_host_port(u.authority) else {
            return Target::Dynamic {
                host: Text::from(u.authority),
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
                host: Text::from(u.authority),
            };
        }
        let default_port = match u.scheme.as_deref() {
            Some("http" | "grpc") => Some(80),
            Some("https" | "grpcs") => Some(443),
            _ => None,
        };
        Target::Host {
            host: Text::from(host),
            port: port.or(default_port),
        }
    }
}

/// The settings a pass reads besides its module's own ([`MODULE_SETTINGS`]).
const PASS_SCALARS: [Scalar; 3] = [
    Scalar::PROXY_TIMEOUT,
    Scalar::FASTCGI_KEEP_CONN,
    Scalar::PROXY_HTTP_VERSION,
];
const PASS_LISTS: [List; 5] = [
    List::PROXY_SET_HEADER,
    List::GRPC_SET_HEADER,
    List::FASTCGI_PARAM,
    List::UWSGI_PARAM,
    List::SCGI_PARAM,
];

/// What a pass's settings depend on: its module, whether it is in `stream {}`, and the
/// directive that sets each of its module's settings, [`PASS_SCALARS`] and [`PASS_LISTS`]
/// (null where none does).
type PassSettingsKey = (
    PassKind,
    bool,
    [*const Directive; MODULE_SETTINGS.len() + PASS_SCALARS.len() + PASS_LISTS.len()],
);

/// The module settings a pass reads (`proxy_read_timeout`, `fastcgi_read_timeout`, ...), as
/// [`Scalar`]s of one module.
struct ModuleDirectives {
    connect_timeout: Scalar,
    read_timeout: Scalar,
    send_timeout: Scalar,
    buffer_size: Scalar,
    buffers: Scalar,
    next_upstream: Scalar,
    next_upstream_tries: Scalar,
    next_upstream_timeout: Scalar,
    ssl_protocols: Scalar,
    ssl_server_name: Scalar,
    ssl_name: Scalar,
    ssl_verify: Scalar,
    ssl_trusted_certificate: Scalar,
    ssl_certificate: Scalar,
}

impl ModuleDirectives {
    /// In the order of [`MODULE_SETTINGS`].
    fn of(kind: PassKind) -> ModuleDirectives {
        let s = |i| Scalar::module(kind, i);
        ModuleDirectives {
            connect_timeout: s(0),
            read_timeout: s(1),
            send_timeout: s(2),
            buffer_size: s(3),
            buffers: s(4),
            next_upstream: s(5),
            next_upstream_tries: s(6),
            next_upstream_timeout: s(7),
            ssl_protocols: s(8),
            ssl_server_name: s(9),
            ssl_name: s(10),
            ssl_verify: s(11),
            ssl_trusted_certificate: s(12),
            ssl_certificate: s(13),
        }
    }
}

/// Each module directive a pass reads and the setting it names, for the test that the names
/// follow [`PassKind::prefix`].
#[cfg(test)]
pub(super) fn module_directives_of(kind: PassKind) -> Vec<(String, &'static str)> {
    let d = ModuleDirectives::of(kind);
    let read = [
        d.connect_timeout,
        d.read_timeout,
        d.send_timeout,
        d.buffer_size,
        d.buffers,
        d.next_upstream,
        d.next_upstream_tries,
        d.next_upstream_timeout,
        d.ssl_protocols,
        d.ssl_server_name,
        d.ssl_name,
        d.ssl_verify,
        d.ssl_trusted_certificate,
        d.ssl_certificate,
    ];
    read.iter()
        .zip(inherit::MODULE_SETTINGS)
        .map(|(s, setting)| (s.name(), setting))
        .collect()
}

/// How many scopes (server, location, if, limit_except blocks) and `*_pass` directives the build
/// will make for some servers: the first half of a split, whose count places the second half
/// in the model's vectors ([`split`]). A file included N times counts N times (a snippet of
/// locations included by every server makes scopes in each); each file is walked once.
///
/// Only the first half is walked: the second half's part is a bound made from it, and
/// capacity reserved and never written costs no memory. Walking every file for both halves
/// was 2.7 ms of the 5,000-server build, on the one thread, before the split.
pub(super) fn count(cfg: &Config, servers: &[&Directive]) -> (usize, usize) {
    fn walk(
        cfg: &Config,
        ds: &[Directive],
        files: &mut [Option<(usize, usize)>],
        depth: usize,
        n: &mut (usize, usize),
    ) {
        for d in ds {
            match count_as(d) {
                Counted::Scope => n.0 += 1,
                Counted::Pass => n.1 += 1,
                // The build stops following includes at the same depth.
                Counted::Include if depth < MAX_INCLUDE_DEPTH => {
                    for &f in d.includes() {
                        let (s, p) = file(cfg, f, files, depth + 1);
                        *n = (n.0 + s, n.1 + p);
                    }
                }
                Counted::Include | Counted::Nothing => {}
            }
            if let Some(b) = &d.block {
                walk(cfg, b, files, depth, n);
            }
        }
    }
    fn file(
        cfg: &Config,
        f: FileId,
        files: &mut [Option<(usize, usize)>],
        depth: usize,
    ) -> (usize, usize) {
        let (Some(known), Some(parsed)) = (files.get(f).copied(), cfg.files.get(f)) else {
            return (0, 0);
        };
        if let Some(n) = known {
            return n;
        }
        // Counted as nothing while it is walked, so a cycle in a hand-made tree ends (the
        // parser's trees have none).
        files[f] = Some((0, 0));
        let mut n = (0, 0);
        walk(cfg, &parsed.parsed, files, depth, &mut n);
        files[f] = Some(n);
        n
    }
    let mut files = vec![None; cfg.files.len()];
    let mut n = (0, 0);
    for &d in servers {
        walk(cfg, std::slice::from_ref(d), &mut files, 0, &mut n);
    }
    n
}

/// Room for the second half of a split, from the first half's count: twice as much per server.
/// Too little only costs the join a move ([`split::give_back`]).
fn bound(first: usize, first_servers: usize, second_servers: usize) -> usize {
    (first * 2).div_ceil(first_servers.max(1)) * second_servers + 64
}

/// What a directive adds to [`count`].
enum Counted {
    Scope,
    Pass,
    Include,
    Nothing,
}

fn count_as(d: &Directive) -> Counted {
    match d.name.as_str() {
        // An upstream's `server` lines are no scope.
        "server" | "location" | "if" | "limit_except" if d.block.is_some() => Counted::Scope,
        "include" => Counted::Include,
        name if PassKind::from_directive(name).is_some() => Counted::Pass,
        _ => Counted::Nothing,
    }
}

/// A log or pid path as nginx opens it: relative ones against the prefix, `stderr`,
/// `syslog:...` and `memory:...` as written.
pub(super) fn resolve(prefix: Option<&str>, p: &str) -> String {
    let special =
        p == "stderr" || p.starts_with("syslog:") || p.starts_with("memory:") || p.starts_with('/');
    match prefix {
        // `Path::join`, by hand: its display was a tenth of listing the access logs.
        Some(prefix) if !special && !prefix.is_empty() => {
            let mut joined = String::with_capacity(prefix.len() + 1 + p.len());
            joined.push_str(prefix);
            if !prefix.ends_with('/') {
                joined.push('/');
            }
            joined.push_str(p);
            joined
        }
        _ => p.to_string(),
    }
}

/// A directive as one line of nginx.conf: `name arg "arg with space";` (or `... {` for a
/// block), quoting what the lexer would otherwise split.
pub fn directive_text(d: &Directive) -> String {
    let mut s = String::new();
    write_directive_text(d, &mut s);
    s
}

/// The bytes that make an argument need quotes: ASCII whitespace and what the lexer splits on.
const NEEDS_QUOTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_whitespace() || matches!(b, b';' | b'{' | b'}' | b'"' | b'\'' | b'#');
        i += 1;
    }
    t
};

/// [`directive_text`], appended to `s`.
fn write_directive_text(d: &Directive, s: &mut String) {
    // Each argument gains a space and at most two quotes.
    s.reserve(d.name.len() + d.args.iter().map(|a| a.len() + 3).sum::<usize>() + 2);
    s.push_str(&d.name);
    for a in &d.args {
        s.push(' ');
        let plain = !a.is_empty() && !a.bytes().any(|b| NEEDS_QUOTES[usize::from(b)]);
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
}

/// Arguments as the model's owned strings.
fn strings(args: &[Text]) -> Vec<String> {
    // Not `to_string`: that goes through `Display` and the formatter's padding (a tenth of
    // building the model of a 5,000-server config, callgrind).
    args.iter().map(|a| a.as_str().to_owned()).collect()
}
