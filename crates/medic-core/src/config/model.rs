//! The effective configuration: what each location that passes requests upstream will really
//! use, after nginx's inheritance (`ngx_http_*_merge_loc_conf`).
//!
//! Every value is an [`Eff`]: the value and the directive that set it, or `src: None` when it is
//! nginx's compiled-in default. Rules quote `src` as evidence, so a value the user never wrote is
//! reported as "default" rather than pinned on a line that does not exist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::values::Rate;

/// A name or argument as the config writes it: the parsed tree's own string type, which keeps
/// up to 24 bytes inline. The model copies most of its text from the tree, and a
/// 5,000-server config has 100,000s of such copies: as `String`s each was an allocation.
pub use medic_parse::config::Text;

/// A directive's arguments as the parsed tree keeps them: a slice of [`Text`].
pub use medic_parse::config::Args;

fn texts<S: serde::Serializer>(args: &Args, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(args.iter())
}

mod source;
pub(crate) use source::Sources;
pub use source::{Cited, Src};

/// An effective value and the directive that set it (`None`: nginx's default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Eff<T> {
    pub value: T,
    pub src: Option<Src>,
}

impl<T> Eff<T> {
    pub fn default_value(value: T) -> Eff<T> {
        Eff { value, src: None }
    }

    /// Whether the value comes from nginx's default rather than a directive.
    pub fn is_default(&self) -> bool {
        self.src.is_none()
    }
}

/// `http {}` or `stream {}`: upstream names and directives live in separate namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Stream,
}

/// The module of a `*_pass` directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PassKind {
    Proxy,
    Fastcgi,
    Uwsgi,
    Scgi,
    Grpc,
    Memcached,
}

impl PassKind {
    pub const ALL: [PassKind; 6] = [
        PassKind::Proxy,
        PassKind::Fastcgi,
        PassKind::Uwsgi,
        PassKind::Scgi,
        PassKind::Grpc,
        PassKind::Memcached,
    ];

    /// The module's directive prefix: `proxy` in `proxy_read_timeout`.
    pub fn prefix(self) -> &'static str {
        match self {
            PassKind::Proxy => "proxy",
            PassKind::Fastcgi => "fastcgi",
            PassKind::Uwsgi => "uwsgi",
            PassKind::Scgi => "scgi",
            PassKind::Grpc => "grpc",
            PassKind::Memcached => "memcached",
        }
    }

    /// `proxy_pass`, `fastcgi_pass`, ...
    pub fn directive(self) -> &'static str {
        match self {
            PassKind::Proxy => "proxy_pass",
            PassKind::Fastcgi => "fastcgi_pass",
            PassKind::Uwsgi => "uwsgi_pass",
            PassKind::Scgi => "scgi_pass",
            PassKind::Grpc => "grpc_pass",
            PassKind::Memcached => "memcached_pass",
        }
    }

    pub fn from_directive(name: &str) -> Option<PassKind> {
        PassKind::ALL.into_iter().find(|k| k.directive() == name)
    }
}

/// Where a `*_pass` sends requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// A host name or IP literal (`[::1]` bracketed) and the port nginx connects to (the
    /// scheme's default when not written; `None` when the module has none).
    Host { host: Text, port: Option<u16> },
    /// `unix:/path`.
    Unix { path: Text },
    /// An `upstream NAME {}` block: [`Model::upstreams`]`[index]`.
    Group { name: Text, index: usize },
    /// The URL holds variables: nginx builds it per request and resolves a host name at run
    /// time with `resolver` (unless it names an upstream group). `host` is the authority as
    /// written (`$backend`, `api.example.com`, `127.0.0.1:8080`).
    Dynamic { host: Text },
}

impl Target {
    /// The target as nginx names peers: `HOST:PORT`, `unix:/path`, the group name, or the
    /// authority as written for a dynamic one.
    pub fn display(&self) -> String {
        self.name().into_owned()
    }

    /// [`Target::display`], borrowed when the model holds it as is (a group, a host without
    /// port): rules that group thousands of passes by target compare these.
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Target::Host {
                host,
                port: Some(p),
            } => format!("{host}:{p}").into(),
            Target::Host { host, port: None } => host.as_str().into(),
            Target::Unix { path } => format!("unix:{path}").into(),
            Target::Group { name, .. } => name.as_str().into(),
            Target::Dynamic { host } => host.as_str().into(),
        }
    }
}

/// A context of the `http {}` tree that handles requests: a `server`, or a `location` / `if` /
/// `limit_except` in it (nested ones included), with the settings rules care about.
#[derive(Clone, Debug, Serialize)]
pub struct Scope {
    pub protocol: Protocol,
    /// `server`, `location`, `if`, `limit_except`.
    pub kind: &'static str,
    /// The block's arguments (`= /api`, `($request_method = POST)`); empty for `server`. The
    /// tree's own type: a location's one argument is a copy, not an allocation.
    #[serde(serialize_with = "texts")]
    pub args: Args,
    /// [`Model::servers`] index of the enclosing server.
    pub server: usize,
    /// The enclosing scope (`None` for a server).
    pub parent: Option<usize>,
    pub src: Src,
    /// What is in effect here by inheritance. Shared with every scope whose settings come from
    /// the same directives: most scopes set none of these (a 5,000-server config has 20,000
    /// scopes and a few dozen distinct settings).
    #[serde(flatten)]
    pub settings: Arc<ScopeSettings>,
    /// The `*_pass` directives written in this scope: [`Model::passes`] indexes.
    pub passes: Vec<usize>,
}

/// The settings of a [`Scope`] that it inherits unless it writes them.
#[derive(Clone, Debug, Serialize)]
pub struct ScopeSettings {
    /// Effective `limit_req` list (inherited only when this level sets none).
    pub limit_req: Arc<[LimitReq]>,
    pub limit_req_status: Eff<u16>,
    pub limit_conn: Arc<[LimitConn]>,
    pub limit_conn_status: Eff<u16>,
    pub error_pages: Arc<[ErrorPage]>,
    /// Effective `resolver`: its addresses, or `None` when no level sets one.
    pub resolver: Option<Eff<Arc<[Text]>>>,
    /// Effective `resolver_timeout` (default 30s).
    pub resolver_timeout: Eff<Duration>,
}

/// A `server {}` block.
#[derive(Clone, Debug, Serialize)]
pub struct Server {
    pub protocol: Protocol,
    pub names: Vec<Text>,
    pub src: Src,
    /// [`Model::listens`] indexes.
    pub listens: Vec<usize>,
    /// Its [`Scope`] (the server-level one).
    pub scope: usize,
}

/// A `listen` directive.
#[derive(Clone, Debug, Serialize)]
pub struct Listen {
    pub protocol: Protocol,
    /// The address as written: `80`, `127.0.0.1:8080`, `[::]:443`, `unix:/path`.
    pub address: Text,
    /// The other arguments: `ssl`, `http2`, `default_server`, `backlog=N`, ...
    pub params: Vec<Text>,
    pub server: usize,
    pub src: Src,
}

/// One `limit_req` in effect, joined with its `limit_req_zone`.
#[derive(Clone, Debug, Serialize)]
pub struct LimitReq {
    pub zone: Text,
    /// `burst=N`; `None` when not written (nginx's burst is then 0).
    pub burst: Option<u64>,
    pub nodelay: bool,
    /// `delay=N`.
    pub delay: Option<u64>,
    pub src: Src,
    /// The zone's definition, when the config has it.
    pub zone_def: Option<LimitReqZone>,
}

/// `limit_req_zone KEY zone=NAME:SIZE rate=R;`
#[derive(Clone, Debug, Serialize)]
pub struct LimitReqZone {
    pub name: String,
    pub key: String,
    pub size: Option<u64>,
    #[serde(serialize_with = "rate_str")]
    pub rate: Option<Rate>,
    pub src: Src,
}

fn rate_str<S: serde::Serializer>(r: &Option<Rate>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => s.serialize_str(&r.to_string()),
        None => s.serialize_none(),
    }
}

/// One `limit_conn ZONE N;` in effect.
#[derive(Clone, Debug, Serialize)]
pub struct LimitConn {
    pub zone: Text,
    pub limit: Option<u64>,
    pub src: Src,
    /// The zone's `limit_conn_zone KEY zone=NAME:SIZE` line, when the config has it.
    pub zone_key: Option<Text>,
}

/// `error_page CODE... [=RESPONSE] URI;`
#[derive(Clone, Debug, Serialize)]
pub struct ErrorPage {
    pub codes: Vec<u16>,
    /// `=502`, `=` (the response's own status), or `None` (keep the code).
    pub response: Option<Text>,
    pub uri: Text,
    pub src: Src,
}

/// A header or parameter set for the upstream (`proxy_set_header`, `fastcgi_param`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Param {
    pub name: Text,
    pub value: Text,
    pub src: Src,
}

/// `*_buffers N SIZE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Buffers {
    pub count: u64,
    pub size: u64,
}

/// The `*_ssl_*` settings of a pass (`proxy_ssl_*`, `grpc_ssl_*`, `uwsgi_ssl_*`).
#[derive(Clone, Debug, Serialize)]
pub struct Ssl {
    /// `*_ssl_server_name` (default off: no SNI).
    pub server_name: Eff<bool>,
    /// `*_ssl_name` (default: the host of the pass URL, `$proxy_host`).
    pub name: Eff<Option<Text>>,
    /// `*_ssl_verify` (default off).
    pub verify: Eff<bool>,
    pub trusted_certificate: Eff<Option<Text>>,
    /// `*_ssl_protocols` (default `TLSv1 TLSv1.1 TLSv1.2 TLSv1.3` in 1.23+, without 1.3 before).
    /// Shared with every pass that inherits the same list.
    pub protocols: Eff<Arc<[Text]>>,
    pub certificate: Eff<Option<Text>>,
}

/// One `*_pass` directive and everything in effect where it is written.
#[derive(Clone, Debug, Serialize)]
pub struct Pass {
    pub kind: PassKind,
    pub protocol: Protocol,
    /// The `*_pass` directive itself.
    pub src: Src,
    /// Its argument as written.
    pub url: Text,
    /// `http`, `https`, `grpcs`, ... when written.
    pub scheme: Option<Text>,
    /// Whether nginx talks TLS to the upstream (`https://`, `grpcs://`, `suwsgi://`).
    pub tls: bool,
    pub target: Target,
    /// The [`Scope`] the directive is written in.
    pub scope: usize,
    /// What is in effect for it by inheritance. Shared with every pass of the same module
    /// whose settings come from the same directives.
    #[serde(flatten)]
    pub settings: Arc<PassSettings>,
}

/// The settings of a [`Pass`] that come from its module's directives, written at its level
/// or inherited.
#[derive(Clone, Debug, Serialize)]
pub struct PassSettings {
    pub connect_timeout: Eff<Duration>,
    /// `*_read_timeout`; for `stream` proxy, `proxy_timeout` (default 10m).
    pub read_timeout: Eff<Duration>,
    pub send_timeout: Eff<Duration>,
    pub buffer_size: Eff<u64>,
    pub buffers: Eff<Buffers>,
    /// `proxy_http_version` (default `1.0`); `None` for modules that have none.
    pub http_version: Option<Eff<Text>>,
    /// Effective `proxy_set_header` / `grpc_set_header` list.
    pub headers: Arc<[Param]>,
    /// The `Connection` header nginx sends: the effective `proxy_set_header Connection`, or
    /// nginx's `close`. `None` for modules that send no HTTP headers.
    pub connection_header: Option<Eff<Text>>,
    /// `fastcgi_keep_conn` (default off); `None` for other modules.
    pub keep_conn: Option<Eff<bool>>,
    /// Effective `fastcgi_param` / `uwsgi_param` / `scgi_param` list.
    pub params: Arc<[Param]>,
    pub next_upstream: Eff<Arc<[Text]>>,
    /// `*_next_upstream_tries` (0: unlimited).
    pub next_upstream_tries: Eff<u64>,
    /// `*_next_upstream_timeout` (0: unlimited).
    pub next_upstream_timeout: Eff<Duration>,
    /// TLS settings; `None` for modules without TLS to the upstream.
    /// Shared with every pass whose TLS settings come from the same directives.
    pub ssl: Option<Arc<Ssl>>,
}

/// A `server` line of an `upstream {}` block.
#[derive(Clone, Debug, Serialize)]
pub struct UpstreamServer {
    /// As written: `127.0.0.1:8080`, `app.internal`, `unix:/run/app.sock`.
    pub address: Text,
    /// Host (or IP literal) and port; `None` for a unix socket.
    pub host: Option<Text>,
    pub port: Option<u16>,
    /// `weight=`, `max_fails=`, `fail_timeout=`, `backup`, `down`, `resolve`, ...
    pub params: Vec<Text>,
    pub src: Src,
}

/// An `upstream NAME {}` block.
#[derive(Clone, Debug, Serialize)]
pub struct Upstream {
    pub name: String,
    pub protocol: Protocol,
    pub src: Src,
    pub servers: Vec<UpstreamServer>,
    /// `keepalive N` (idle connections cached per worker).
    pub keepalive: Option<Eff<u64>>,
    /// Other directives of the block (`least_conn`, `zone`, `hash`, ...): name and arguments.
    pub directives: Vec<(String, Vec<String>)>,
}

/// `user NAME [GROUP];` (default `nobody`, applied only when the master runs as root).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub group: Option<String>,
}

/// An `error_log` directive.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorLog {
    /// The path, resolved against the prefix when relative; `stderr`, `syslog:...`,
    /// `memory:...` as written.
    pub path: String,
    /// The level argument (`error` when omitted).
    pub level: String,
    /// `main`, `http`, `server`, `location`, `stream`.
    pub context: &'static str,
    pub src: Src,
}

/// An `access_log` with its `log_format`, for the log engine.
#[derive(Clone, Debug, Serialize)]
pub struct AccessLog {
    pub protocol: Protocol,
    /// Resolved against the prefix when relative; `syslog:...` as written.
    pub path: String,
    /// The format name (`combined` when omitted).
    pub format_name: String,
    /// The format string (arguments of `log_format` joined), `None` if the name is undefined.
    /// Shared with its [`LogFormatDef`]: every server of a big config names its own log.
    pub format: Option<Arc<str>>,
    /// `default`, `json`, `none` (`escape=`).
    pub escape: String,
    /// The other parameters: `buffer=`, `gzip`, `flush=`, `if=`.
    pub params: Vec<String>,
    pub src: Src,
}

/// The whole effective model.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Model {
    /// The prefix relative paths were resolved against, if known.
    pub prefix: Option<String>,
    /// The worker user (default `nobody`).
    pub user: Option<Eff<User>>,
    /// `pid` (default: the compiled-in path, unknown here).
    pub pid: Option<Eff<String>>,
    pub error_logs: Vec<ErrorLog>,
    pub access_logs: Vec<AccessLog>,
    /// `log_format` definitions by name, `combined` included.
    pub log_formats: Vec<LogFormatDef>,
    pub servers: Vec<Server>,
    pub listens: Vec<Listen>,
    pub scopes: Vec<Scope>,
    pub passes: Vec<Pass>,
    pub upstreams: Vec<Upstream>,
    pub limit_req_zones: Vec<LimitReqZone>,
    /// The values a variable can take, from `map` blocks and `set` directives (name without
    /// `$`). A variable that is also set another way (regex captures, modules) is not known
    /// completely; rules treat values that hold variables themselves as unknown.
    pub variables: BTreeMap<String, Vec<String>>,
}

/// `log_format NAME [escape=E] STRING...;`
#[derive(Clone, Debug, Serialize)]
pub struct LogFormatDef {
    pub protocol: Protocol,
    pub name: String,
    pub escape: String,
    pub format: Arc<str>,
    /// `None` for the predefined `combined`.
    pub src: Option<Src>,
}

impl Model {
    /// The worker user, with nginx's default.
    pub fn worker_user(&self) -> User {
        self.user.as_ref().map(|u| u.value.clone()).unwrap_or(User {
            name: "nobody".to_string(),
            group: None,
        })
    }

    /// The upstream group a pass targets, if any.
    pub fn group(&self, pass: &Pass) -> Option<&Upstream> {
        match &pass.target {
            Target::Group { index, .. } => self.upstreams.get(*index),
            _ => None,
        }
    }

    /// The scope a pass is written in.
    pub fn scope(&self, pass: &Pass) -> &Scope {
        &self.scopes[pass.scope]
    }

    /// `server_name ... / location ...` of a scope, for messages.
    pub fn describe_scope(&self, scope: usize) -> String {
        let mut chain = Vec::new();
        let mut cur = Some(scope);
        while let Some(i) = cur {
            let s = &self.scopes[i];
            match s.kind {
                "server" => {}
                // The parser drops the parentheses of `if (...)`.
                "if" => chain.push(format!("if ({})", s.args.join(" "))),
                kind => chain.push(format!("{kind} {}", s.args.join(" "))),
            }
            cur = s.parent;
        }
        chain.reverse();
        let server = &self.servers[self.scopes[scope].server];
        let name = server
            .names
            .first()
            .map_or("(no server_name)", |n| n.as_str());
        if chain.is_empty() {
            format!("server {name}")
        } else {
            format!("server {name} > {}", chain.join(" > "))
        }
    }
}

/// nginx's predefined `combined` format (`ngx_http_log_module.c`).
pub const COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";
