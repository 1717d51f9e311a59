//! The config's `heartbeat:` block: a dead man's switch (off when absent). Every replica
//! POSTs `{"replica":..,"leader":..,"ledger_entries":..}` to the URL every interval, so that
//! the service watching the URL pages someone when vigil itself goes silent.
//!
//! ```yaml
//! heartbeat:
//!   url: https://hc-ping.com/<uuid>     # healthchecks.io, Dead Man's Snitch, a webhook
//!   interval_secs: 60
//!   timeout_secs: 10
//!   bearer_token: { env: VIGIL_HEARTBEAT_TOKEN }   # optional
//! ```

use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use vigil_connectors::secret::SecretSource;
use vigil_core::problem::Problems;

use super::raw::RawSecret;

/// The longest interval: a switch that expects a beat less than daily is no switch.
const MAX_INTERVAL_SECS: u64 = 86_400;

/// The block as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    /// Where each heartbeat is POSTed (http or https).
    pub url: String,
    /// Seconds between two heartbeats (default 60); the watching service's period should be
    /// a few of these.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// Seconds one heartbeat may take (default 10, at most the interval).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// A bearer token the receiver needs, from an environment variable or a file.
    pub bearer_token: Option<RawSecret>,
}

fn default_interval_secs() -> u64 {
    60
}

fn default_timeout_secs() -> u64 {
    10
}

/// The heartbeat, validated.
#[derive(Debug, Clone)]
pub struct HeartbeatConfig {
    /// Where each heartbeat goes.
    pub url: Url,
    /// Between two heartbeats.
    pub interval: Duration,
    /// One heartbeat's deadline.
    pub timeout: Duration,
    /// The receiver's bearer token, if any.
    pub bearer: Option<SecretSource>,
}

/// Validates the block; `None` when absent or when a problem was recorded.
pub(super) fn validate_heartbeat(
    problems: &mut Problems,
    raw: Option<RawHeartbeat>,
    base_dir: &Path,
) -> Option<HeartbeatConfig> {
    let raw = raw?;
    let url = super::validate::http_url(problems, "heartbeat.url", &raw.url);
    if !(1..=MAX_INTERVAL_SECS).contains(&raw.interval_secs) {
        problems.push(
            "heartbeat.interval_secs",
            format!("must be 1 to {MAX_INTERVAL_SECS} (a day)"),
        );
    }
    if raw.timeout_secs == 0 || raw.timeout_secs > raw.interval_secs.max(1) {
        problems.push(
            "heartbeat.timeout_secs",
            "must be at least 1 and at most `interval_secs`, so that one heartbeat ends before the next",
        );
    }
    let bearer = raw.bearer_token.map(|secret| {
        super::validate::secret(problems, "heartbeat.bearer_token", secret, base_dir)
    });
    Some(HeartbeatConfig {
        url: url?,
        interval: Duration::from_secs(raw.interval_secs),
        timeout: Duration::from_secs(raw.timeout_secs),
        bearer,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn check(yaml: &str) -> Result<HeartbeatConfig, Vec<String>> {
        let raw: RawHeartbeat = crate::config::parse_yaml(yaml, "vigil.yaml")
            .map_err(|problem| vec![problem.to_string()])?;
        let mut problems = Problems::default();
        let validated = validate_heartbeat(&mut problems, Some(raw), Path::new("/etc/vigil"));
        match problems.finish(()) {
            Ok(()) => validated.ok_or_else(|| vec!["no config and no problem".to_owned()]),
            Err(problems) => Err(problems
                .into_iter()
                .map(|problem| format!("{}: {}", problem.path, problem.message))
                .collect()),
        }
    }

    #[test]
    fn defaults_and_a_token_from_a_file() {
        let config =
            check("url: https://hc-ping.com/abc\nbearer_token: { file: token }\n").unwrap();
        assert_eq!(config.url.as_str(), "https://hc-ping.com/abc");
        assert_eq!(config.interval, Duration::from_secs(60));
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(
            config.bearer,
            Some(SecretSource::File("/etc/vigil/token".into()))
        );
    }

    /// The commented block in `examples/vigil.yaml`, uncommented, is a valid heartbeat.
    #[test]
    fn the_example_configs_block_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/vigil.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let block: String = text
            .lines()
            .skip_while(|line| *line != "# heartbeat:")
            .skip(1)
            .map_while(|line| line.strip_prefix("#   "))
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(block.contains("interval_secs: 60"), "{block}");
        let config = check(&block).unwrap();
        assert_eq!(config.interval, Duration::from_secs(60));
        assert_eq!(
            config.bearer,
            Some(SecretSource::Env("VIGIL_HEARTBEAT_TOKEN".to_owned()))
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        assert_eq!(
            check("url: ftp://x\ninterval_secs: 0\ntimeout_secs: 5\nbearer_token: {}\n")
                .unwrap_err(),
            [
                "heartbeat.url: `ftp://x` must be an http or https URL with a host",
                "heartbeat.interval_secs: must be 1 to 86400 (a day)",
                "heartbeat.timeout_secs: must be at least 1 and at most `interval_secs`, so that one heartbeat ends before the next",
                "heartbeat.bearer_token: set `env` (a variable name) or `file` (a path)",
            ]
        );
        let unknown = check("url: http://127.0.0.1:1/\nevery_secs: 5\n").unwrap_err();
        assert!(unknown[0].contains("every_secs"), "{unknown:?}");
    }
}
