//! Context and argument-count checks: crossplane 0.5.8's `analyzer.analyze()` over its own
//! directive table ([`super::directives`], generated from crossplane). nginx does the same
//! checks in `ngx_conf_handler()` (`src/core/ngx_conf_file.c`), with the same messages.

use super::directives::{
    CONTEXTS, DIRECTIVES, NGX_CONF_1MORE, NGX_CONF_2MORE, NGX_CONF_ANY, NGX_CONF_BLOCK,
    NGX_CONF_FLAG,
};
use super::ConfigErrorKind;
use foldhash::{HashMap, HashMapExt};
use std::sync::OnceLock;

/// A directive crossplane knows.
pub struct Known {
    /// Its name, made once per process: every directive of this name shares it.
    pub name: super::Name,
    /// The forms it takes ([`DIRECTIVES`]).
    pub masks: &'static [u32],
}

/// The directive crossplane knows by this name.
pub fn known(name: &str) -> Option<&'static Known> {
    // Looked up for every directive: SipHash was 5% of `config parse` (perf).
    static INDEX: OnceLock<HashMap<&'static str, Known>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            let mut index = HashMap::with_capacity(DIRECTIVES.len());
            index.extend(DIRECTIVES.iter().map(|&(name, masks)| {
                let shared = super::Name::from(name);
                // Static from now on: clones and drops of it touch no count, which two
                // parsing threads would otherwise contend for on every directive.
                shared.leak();
                (
                    name,
                    Known {
                        name: shared,
                        masks,
                    },
                )
            }));
            index
        })
        .get(name)
}

/// The masks of a directive crossplane knows.
pub fn masks(name: &str) -> Option<&'static [u32]> {
    known(name).map(|k| k.masks)
}

/// The context mask of a block path (`[]`, `["http"]`, `["http", "location", "if"]`, ...),
/// `None` for paths crossplane does not check (inside `map`, `types`, `if` in `server`...).
pub fn context_mask(ctx: &[String]) -> Option<u32> {
    CONTEXTS
        .iter()
        .find(|(path, _)| path.len() == ctx.len() && path.iter().zip(ctx).all(|(a, b)| a == b))
        .map(|(_, m)| *m)
}

/// `enter_block_ctx`: a `location` anywhere in `http` is `http > location`, every other block
/// appends its name.
pub fn enter_block(ctx: &[String], name: &str) -> Vec<String> {
    if ctx.first().map(String::as_str) == Some("http") && name == "location" {
        return vec!["http".into(), "location".into()];
    }
    let mut v = Vec::with_capacity(ctx.len() + 1);
    v.extend_from_slice(ctx);
    v.push(name.to_owned());
    v
}

/// A failed check: message without the ` in FILE:LINE` tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub message: String,
    pub kind: ConfigErrorKind,
}

impl Rejected {
    /// crossplane consumes the block of a directive that should have ended with `;`.
    pub fn not_terminated(&self) -> bool {
        self.message.ends_with(" is not terminated by \";\"")
    }
}

/// `analyze(stmt, term, ctx, strict=False, check_ctx, check_args)`. `term` is the token that
/// ended the arguments: `;`, `{` or `}`.
pub fn analyze(
    name: &str,
    args: &[impl AsRef<str>],
    term: &str,
    ctx: &[String],
    check_ctx: bool,
    check_args: bool,
) -> Result<(), Rejected> {
    analyze_in(name, args, term, context_mask(ctx), check_ctx, check_args)
}

/// [`analyze`] with the block's [`context_mask`] computed once by the caller.
pub fn analyze_in(
    name: &str,
    args: &[impl AsRef<str>],
    term: &str,
    ctx_mask: Option<u32>,
    check_ctx: bool,
    check_args: bool,
) -> Result<(), Rejected> {
    let known = ctx_mask.and_then(|_| known(name));
    analyze_known(name, known, args, term, ctx_mask, check_ctx, check_args)
}

/// [`analyze_in`] with the directive already looked up ([`known`]).
pub fn analyze_known(
    name: &str,
    known: Option<&Known>,
    args: &[impl AsRef<str>],
    term: &str,
    ctx_mask: Option<u32>,
    check_ctx: bool,
    check_args: bool,
) -> Result<(), Rejected> {
    // Unknown directives and unknown contexts are not analysed (non-strict crossplane).
    let (Some(ctx_mask), Some(all)) = (ctx_mask, known.map(|k| k.masks)) else {
        return Ok(());
    };
    // The forms of the directive allowed in this context (all of them without the check).
    let allowed = |m: &&u32| !check_ctx || *m & ctx_mask != 0;
    if !all.iter().any(|m| allowed(&m)) {
        return Err(Rejected {
            message: format!("\"{name}\" directive is not allowed here"),
            kind: ConfigErrorKind::Context,
        });
    }
    if !check_args {
        return Ok(());
    }
    let n = args.len();
    let valid_flag = |a: &str| a.eq_ignore_ascii_case("on") || a.eq_ignore_ascii_case("off");
    let mut reason = String::new();
    // In reverse, as crossplane does: the message reported is that of the first mask.
    for &mask in all.iter().rev().filter(allowed) {
        if mask & NGX_CONF_BLOCK != 0 && term != "{" {
            reason = format!("directive \"{name}\" has no opening \"{{\"");
            continue;
        }
        if mask & NGX_CONF_BLOCK == 0 && term != ";" {
            reason = format!("directive \"{name}\" is not terminated by \";\"");
            continue;
        }
        if (n <= 7 && (mask >> n) & 1 == 1)
            || (mask & NGX_CONF_FLAG != 0 && n == 1 && valid_flag(args[0].as_ref()))
            || mask & NGX_CONF_ANY != 0
            || (mask & NGX_CONF_1MORE != 0 && n >= 1)
            || (mask & NGX_CONF_2MORE != 0 && n >= 2)
        {
            return Ok(());
        } else if mask & NGX_CONF_FLAG != 0 && n == 1 {
            reason = format!(
                "invalid value \"{}\" in \"{name}\" directive, it must be \"on\" or \"off\"",
                args[0].as_ref()
            );
        } else {
            reason = format!("invalid number of arguments in \"{name}\" directive");
        }
    }
    Err(Rejected {
        message: reason,
        kind: ConfigErrorKind::Args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(DIRECTIVES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(masks("proxy_pass").is_some());
        assert!(masks("content_by_lua_block").is_none());
    }

    #[test]
    fn context_and_args() {
        let a = |n: &str, args: &[&str], t: &str, c: &[&str]| {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            analyze(n, &args, t, &ctx(c), true, true).map_err(|e| e.message)
        };
        assert_eq!(a("server", &[], "{", &["http"]), Ok(()));
        assert_eq!(
            a("server", &[], "{", &[]),
            Err("\"server\" directive is not allowed here".into())
        );
        assert_eq!(
            a("user", &["a", "b", "c"], ";", &[]),
            Err("invalid number of arguments in \"user\" directive".into())
        );
        assert_eq!(
            a("proxy_pass", &["x", "y"], "}", &["http", "location"]),
            Err("directive \"proxy_pass\" is not terminated by \";\"".into())
        );
        assert_eq!(
            a("gzip", &["yes"], ";", &["http"]),
            Err("invalid value \"yes\" in \"gzip\" directive, it must be \"on\" or \"off\"".into())
        );
        assert_eq!(
            a("http", &[], ";", &[]),
            Err("directive \"http\" has no opening \"{\"".into())
        );
        assert_eq!(a("frobnicate", &[], ";", &[]), Ok(()));
        assert_eq!(a("listen", &[], ";", &["map"]), Ok(()));
        assert_eq!(
            enter_block(&ctx(&["http", "server"]), "location"),
            ctx(&["http", "location"])
        );
    }
}
