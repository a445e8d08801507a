//! Bundles: `nginx-medic collect` packs what `diagnose` used on a host (config, `nginx -V`,
//! logs, the recorded probe and supervisor facts), redacted, into one tar.gz;
//! `nginx-medic diagnose --bundle FILE` diagnoses it on any machine.

pub mod archive;
pub mod collect;
pub mod redact;
