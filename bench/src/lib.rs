//! Load tools for the ticketing system running on 127.0.0.1: a thin HTTP client of the
//! gateway's API ([`api`]), the seating plan of a generated event ([`plan`]), the on-sale
//! storm ([`storm`]), the raw ceilings of the servers underneath ([`ceilings`]), and the
//! plain-text report ([`report`]).
//!
//! Two binaries use it: `seed` (one published demo event) and `onsale` (the benchmark).

pub mod api;
pub mod ceilings;
pub mod cli;
pub mod plan;
pub mod procmem;
pub mod proofcost;
pub mod report;
pub mod storm;

use std::path::Path;

/// The admin password: the flag or environment value when given, otherwise the one
/// `scripts/up.sh` generated into `<run_dir>/../admin-password`.
/// A NATS identity's password: the one given, or the one scripts/servers.sh made in
/// `<run_dir>/../nats-auth/<user>.password`.
pub fn nats_password(given: Option<String>, user: &str, run_dir: &Path) -> anyhow::Result<String> {
    if let Some(p) = given.filter(|p| !p.is_empty()) {
        return Ok(p);
    }
    let file = run_dir
        .parent()
        .unwrap_or(Path::new("."))
        .join("nats-auth")
        .join(format!("{user}.password"));
    match std::fs::read_to_string(&file) {
        Ok(p) if !p.trim().is_empty() => Ok(p.trim().to_string()),
        _ => anyhow::bail!(
            "no NATS password for {user}: pass --nats-password, or start the servers with scripts/up.sh (it writes {})",
            file.display()
        ),
    }
}

pub fn admin_password(given: Option<String>, run_dir: &Path) -> anyhow::Result<String> {
    if let Some(p) = given.filter(|p| !p.is_empty()) {
        return Ok(p);
    }
    let file = run_dir
        .parent()
        .map(|d| d.join("admin-password"))
        .unwrap_or_else(|| Path::new("admin-password").to_path_buf());
    match std::fs::read_to_string(&file) {
        Ok(p) if !p.trim().is_empty() => Ok(p.trim().to_string()),
        _ => anyhow::bail!(
            "no admin password: pass --admin-password, set TICKETING_ADMIN_PASSWORD, or run scripts/up.sh (it writes {})",
            file.display()
        ),
    }
}

/// A progress note on stderr, so stdout stays the result.
pub fn note(msg: &str) {
    eprintln!("  .. {msg}");
}
