//! What is in effect at a level: the table the build carries down from `http {}` to each
//! `location`, so that a `*_pass` reads each of its forty settings with one index.
//!
//! nginx's two merge rules (`ngx_http_*_merge_loc_conf`) decide what a level holds:
//! - a scalar directive comes from the innermost level that sets it, and within a level from
//!   its first directive of that name;
//! - a list directive is taken whole from the innermost level that has at least one.
//!
//! So a child level's table is its parent's, overwritten by what the child itself writes: one
//! pass over the child's directives, each name looked up once. Before, every pass searched
//! every enclosing level for each setting, through a per-level index built for it (a fifth of
//! `config lint` on a 5,000-server config).

use std::collections::HashMap;
use std::sync::LazyLock;

use medic_parse::config::Directive;

use crate::config::model::PassKind;

/// Scalar settings every module shares or that belong to one module only.
const COMMON: [&str; 8] = [
    "resolver",
    "resolver_timeout",
    "limit_req_status",
    "limit_conn_status",
    "proxy_ssl",
    "proxy_timeout",
    "fastcgi_keep_conn",
    "proxy_http_version",
];

/// The settings a pass reads from its own module, named `{prefix}_{setting}`.
pub(super) const MODULE_SETTINGS: [&str; 14] = [
    "connect_timeout",
    "read_timeout",
    "send_timeout",
    "buffer_size",
    "buffers",
    "next_upstream",
    "next_upstream_tries",
    "next_upstream_timeout",
    "ssl_protocols",
    "ssl_server_name",
    "ssl_name",
    "ssl_verify",
    "ssl_trusted_certificate",
    "ssl_certificate",
];

/// The list settings, in the order of [`List`]'s constants.
const LISTS: [&str; 8] = [
    "limit_req",
    "limit_conn",
    "error_page",
    "proxy_set_header",
    "grpc_set_header",
    "fastcgi_param",
    "uwsgi_param",
    "scgi_param",
];

const SCALARS: usize = COMMON.len() + PassKind::ALL.len() * MODULE_SETTINGS.len();

/// A scalar setting, as an index into [`Inherited`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Scalar(u8);

impl Scalar {
    pub const RESOLVER: Scalar = Scalar(0);
    pub const RESOLVER_TIMEOUT: Scalar = Scalar(1);
    pub const LIMIT_REQ_STATUS: Scalar = Scalar(2);
    pub const LIMIT_CONN_STATUS: Scalar = Scalar(3);
    pub const PROXY_SSL: Scalar = Scalar(4);
    pub const PROXY_TIMEOUT: Scalar = Scalar(5);
    pub const FASTCGI_KEEP_CONN: Scalar = Scalar(6);
    pub const PROXY_HTTP_VERSION: Scalar = Scalar(7);

    /// `{prefix}_{MODULE_SETTINGS[setting]}` of a module.
    pub const fn module(kind: PassKind, setting: usize) -> Scalar {
        Scalar((COMMON.len() + kind as usize * MODULE_SETTINGS.len() + setting) as u8)
    }

    /// The directive's name.
    pub fn name(self) -> String {
        let i = self.0 as usize;
        match i.checked_sub(COMMON.len()) {
            None => COMMON[i].to_string(),
            Some(j) => format!(
                "{}_{}",
                PassKind::ALL[j / MODULE_SETTINGS.len()].prefix(),
                MODULE_SETTINGS[j % MODULE_SETTINGS.len()]
            ),
        }
    }
}

/// A list setting, as an index into [`Inherited`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct List(u8);

impl List {
    pub const LIMIT_REQ: List = List(0);
    pub const LIMIT_CONN: List = List(1);
    pub const ERROR_PAGE: List = List(2);
    pub const PROXY_SET_HEADER: List = List(3);
    pub const GRPC_SET_HEADER: List = List(4);
    pub const FASTCGI_PARAM: List = List(5);
    pub const UWSGI_PARAM: List = List(6);
    pub const SCGI_PARAM: List = List(7);

    /// The directive's name.
    pub fn name(self) -> &'static str {
        LISTS[self.0 as usize]
    }
}

#[derive(Clone, Copy)]
enum Setting {
    Scalar(Scalar),
    List(List),
}

/// Every setting by its directive name, and which (first byte, length) pairs the names have.
struct Names {
    by_name: HashMap<String, Setting, foldhash::fast::FixedState>,
    /// Bit `len` of `lengths[first byte]`: most directives of a level (`listen`, `root`,
    /// `location`, `include`) are told apart from every setting here, without hashing.
    lengths: [u64; 256],
}

impl Names {
    fn get(&self, name: &str) -> Option<Setting> {
        let (Some(&first), len) = (name.as_bytes().first(), name.len()) else {
            return None;
        };
        if len >= 64 || self.lengths[usize::from(first)] & (1 << len) == 0 {
            return None;
        }
        self.by_name.get(name).copied()
    }
}

static BY_NAME: LazyLock<Names> = LazyLock::new(|| {
    let scalars = (0..SCALARS as u8).map(|i| (Scalar(i).name(), Setting::Scalar(Scalar(i))));
    let lists =
        (0..LISTS.len() as u8).map(|i| (LISTS[i as usize].to_string(), Setting::List(List(i))));
    let by_name: HashMap<_, _, _> = scalars.chain(lists).collect();
    let mut lengths = [0u64; 256];
    for name in by_name.keys() {
        // Every name is under 64 bytes (the test checks).
        lengths[usize::from(name.as_bytes()[0])] |= 1 << name.len();
    }
    Names { by_name, lengths }
});

/// The directives of a list setting's level: where in the builder's stack of flattened levels
/// they are, and the first of them (which names the list: levels that include the same snippet
/// share one list).
#[derive(Clone, Copy, Debug)]
pub(super) struct ListAt<'a> {
    pub first: &'a Directive,
    pub level: (u32, u32),
}

/// What is in effect at one level.
#[derive(Clone, Debug)]
pub(super) struct Inherited<'a> {
    scalars: [Option<&'a Directive>; SCALARS],
    lists: [Option<ListAt<'a>>; LISTS.len()],
}

impl Default for Inherited<'_> {
    fn default() -> Self {
        Inherited {
            scalars: [None; SCALARS],
            lists: [None; LISTS.len()],
        }
    }
}

impl<'a> Inherited<'a> {
    /// The table of a level whose directives (includes spliced in) are `level`, at `at` in the
    /// builder's stack, inside a level whose table is `self`.
    pub fn enter(&self, level: &[&'a Directive], at: usize) -> Inherited<'a> {
        let mut inner = self.clone();
        let span = (at as u32, (at + level.len()) as u32);
        // Backwards, so that the first directive of a name is the one left in the table.
        for &d in level.iter().rev() {
            match BY_NAME.get(d.name.as_str()) {
                Some(Setting::Scalar(s)) => inner.scalars[s.0 as usize] = Some(d),
                Some(Setting::List(l)) => {
                    inner.lists[l.0 as usize] = Some(ListAt {
                        first: d,
                        level: span,
                    })
                }
                None => {}
            }
        }
        inner
    }

    /// The directive that sets a scalar here, if any level does.
    pub fn scalar(&self, s: Scalar) -> Option<&'a Directive> {
        self.scalars[s.0 as usize]
    }

    /// The level whose directives make a list here, if any level has one.
    pub fn list(&self, l: List) -> Option<ListAt<'a>> {
        self.lists[l.0 as usize]
    }

    /// Which directive sets a scalar here (null: none does). Two levels where the same
    /// directives set a group of settings have the same values for all of them, so the build
    /// makes those values once for each such key.
    pub fn scalar_key(&self, s: Scalar) -> *const Directive {
        self.scalar(s).map_or(std::ptr::null(), |d| d)
    }

    /// Which directive starts a list here (null: no level has one); see [`Inherited::scalar_key`].
    pub fn list_key(&self, l: List) -> *const Directive {
        self.list(l).map_or(std::ptr::null(), |at| at.first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every setting has a name of its own, and looking the name up gives the setting back (a
    /// name written twice would leave one setting that no directive can set).
    #[test]
    fn names_are_distinct_and_found() {
        assert_eq!(BY_NAME.by_name.len(), SCALARS + LISTS.len());
        assert!(BY_NAME
            .by_name
            .keys()
            .all(|n| !n.is_empty() && n.len() < 64));
        for name in [
            "listen",
            "location",
            "root",
            "include",
            "",
            "proxy_pass",
            "error_log",
        ] {
            assert!(BY_NAME.get(name).is_none(), "{name}");
        }
        for i in 0..SCALARS as u8 {
            let name = Scalar(i).name();
            assert!(
                matches!(BY_NAME.get(&name), Some(Setting::Scalar(s)) if s == Scalar(i)),
                "{name}"
            );
        }
        for i in 0..LISTS.len() as u8 {
            let name = List(i).name();
            assert!(
                matches!(BY_NAME.get(name), Some(Setting::List(l)) if l == List(i)),
                "{name}"
            );
        }
        assert_eq!(
            Scalar::module(PassKind::Grpc, 1).name(),
            "grpc_read_timeout"
        );
        assert_eq!(Scalar::PROXY_HTTP_VERSION.name(), "proxy_http_version");
        assert_eq!(List::SCGI_PARAM.name(), "scgi_param");
    }

    /// The table after a level: its first scalar of a name, and for a list its first directive
    /// and its place in the stack; what it does not set stays the parent's.
    #[test]
    fn a_level_overrides_what_it_sets() {
        let d = |name: &str, arg: &str| Directive {
            name: name.into(),
            args: medic_parse::config::Args::One(arg.into()),
            ..Directive::default()
        };
        let outer = [d("proxy_read_timeout", "1s"), d("proxy_set_header", "A")];
        let inner = [
            d("root", "/srv"),
            d("proxy_read_timeout", "2s"),
            d("proxy_read_timeout", "3s"),
            d("fastcgi_param", "X"),
            d("fastcgi_param", "Y"),
        ];
        let read = Scalar::module(PassKind::Proxy, 1);
        let top = Inherited::default().enter(&outer.iter().collect::<Vec<_>>(), 0);
        let here = top.enter(&inner.iter().collect::<Vec<_>>(), 2);
        assert_eq!(top.scalar(read).map(|d| d.args[0].as_str()), Some("1s"));
        assert_eq!(here.scalar(read).map(|d| d.args[0].as_str()), Some("2s"));
        let headers = here.list(List::PROXY_SET_HEADER).unwrap();
        assert_eq!(
            (headers.first.args[0].as_str(), headers.level),
            ("A", (0, 2))
        );
        let params = here.list(List::FASTCGI_PARAM).unwrap();
        assert_eq!((params.first.args[0].as_str(), params.level), ("X", (2, 7)));
        assert!(top.list(List::FASTCGI_PARAM).is_none());
        assert!(here.scalar(Scalar::RESOLVER).is_none());
    }
}
