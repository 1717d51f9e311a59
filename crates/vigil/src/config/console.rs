//! The config's `console:` block: the web console `vigil serve` serves at `/` (off when
//! absent). People sign in with the admin API's credentials, so it needs `admin:`.
//!
//! ```yaml
//! console:
//!   session_ttl_secs: 28800     # a sign-in lasts 8 hours (at most 7 days)
//!   max_sessions: 1000          # sessions held at once; the oldest is ended past it
//!   max_live_clients: 32        # pages following the live stream at once
//! ```

use std::time::Duration;

use serde::Deserialize;
use vigil_core::problem::Problems;

/// The longest a session may last.
const MAX_SESSION_TTL_SECS: u64 = 7 * 86_400;
/// The most sessions a config may ask to hold.
const MAX_SESSIONS: usize = 100_000;
/// The most live streams a config may ask for.
const MAX_LIVE_CLIENTS: usize = 1024;

/// The block as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    /// How long a sign-in lasts, in seconds (default 8 hours).
    #[serde(default = "default_session_ttl_secs")]
    pub session_ttl_secs: u64,
    /// Sessions held at once (default 1000); signing in past it ends the oldest session.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Pages following the live stream at once (default 32); more are answered 503 and
    /// still work, without live updates.
    #[serde(default = "default_max_live_clients")]
    pub max_live_clients: usize,
}

fn default_session_ttl_secs() -> u64 {
    8 * 3600
}

fn default_max_sessions() -> usize {
    1000
}

fn default_max_live_clients() -> usize {
    32
}

/// The console, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Sessions held at once.
    pub max_sessions: usize,
    /// Live streams at once.
    pub max_live_clients: usize,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_ttl: Duration::from_secs(default_session_ttl_secs()),
            max_sessions: default_max_sessions(),
            max_live_clients: default_max_live_clients(),
        }
    }
}

/// Validates the block; `None` when absent or when a problem was recorded. `has_admin`:
/// whether the config has `admin:`, whose identities the console signs people in with.
pub(super) fn validate_console(
    problems: &mut Problems,
    raw: Option<RawConsole>,
    has_admin: bool,
) -> Option<ConsoleConfig> {
    let raw = raw?;
    let before = problems.len();
    if !has_admin {
        problems.push(
            "console",
            "needs `admin:`: people sign in to the console with the admin API's tokens, OIDC tokens or client certificates, and hold its roles",
        );
    }
    if !(60..=MAX_SESSION_TTL_SECS).contains(&raw.session_ttl_secs) {
        problems.push(
            "console.session_ttl_secs",
            format!("must be 60 to {MAX_SESSION_TTL_SECS} (7 days)"),
        );
    }
    if !(1..=MAX_SESSIONS).contains(&raw.max_sessions) {
        problems.push(
            "console.max_sessions",
            format!("must be 1 to {MAX_SESSIONS}"),
        );
    }
    if !(1..=MAX_LIVE_CLIENTS).contains(&raw.max_live_clients) {
        problems.push(
            "console.max_live_clients",
            format!("must be 1 to {MAX_LIVE_CLIENTS}"),
        );
    }
    (problems.len() == before).then(|| ConsoleConfig {
        session_ttl: Duration::from_secs(raw.session_ttl_secs),
        max_sessions: raw.max_sessions,
        max_live_clients: raw.max_live_clients,
    })
}
