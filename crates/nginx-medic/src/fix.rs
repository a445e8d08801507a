pub mod apply;
pub mod journal;
