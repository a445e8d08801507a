//! Helpers several causes share, so a rule file holds its rule and nothing else.

pub(crate) mod fpm;
pub(crate) mod timeouts;
pub(crate) mod tls;
