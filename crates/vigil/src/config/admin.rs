//! The config of the admin API people use (`vigil proposals`, `approve`, `reject`, `kill`,
//! `silence`, `whoami`): how people authenticate (personal tokens, OIDC tokens, client
//! certificates), which groups hold which roles, and the rules their instructions must meet.
//! Raw structs (serde, unknown keys rejected) and their second stage.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use vigil_core::people::{PeopleRules, Role, normalize_name};
use vigil_core::problem::Problems;

use super::raw::RawSecret;
use super::validate::http_url;

/// The admin API on `listen`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminApi {
    /// No longer accepted: one token shared by everyone cannot say who did what. Present
    /// only to refuse it with a message that says what replaces it.
    pub token: Option<RawSecret>,
    /// Personal tokens, stored as SHA-256 hashes (`vigil admin-token add` writes it),
    /// relative to this file.
    pub tokens_file: Option<String>,
    /// OIDC / JWT bearer tokens from an identity provider.
    pub oidc: Option<RawOidc>,
    /// TLS client certificates, verified against `server.tls.client_ca_file`.
    pub mtls: Option<RawMtls>,
    /// Which groups hold each role. Absent: a group named like a role holds it.
    pub roles: Option<BTreeMap<String, Vec<String>>>,
    /// A team's on-call group, with `{team}` for the team (default `{team}-oncall`).
    #[serde(default = "default_oncall_group")]
    pub oncall_group: String,
    /// The on-call group of proposals whose target has no known owner (default `oncall`).
    #[serde(default = "default_unowned_oncall_group")]
    pub unowned_oncall_group: String,
    /// The longest silence anyone may set, in seconds (default 7 days).
    #[serde(default = "default_max_silence_secs")]
    pub max_silence_secs: u64,
    /// The longest `reason` accepted, in characters (default 1000).
    #[serde(default = "default_max_reason_chars")]
    pub max_reason_chars: usize,
}

fn default_oncall_group() -> String {
    PeopleRules::default().oncall_group
}

fn default_unowned_oncall_group() -> String {
    PeopleRules::default().unowned_oncall_group
}

fn default_max_silence_secs() -> u64 {
    u64::try_from(PeopleRules::default().max_silence_ms / 1000).unwrap_or(604_800)
}

fn default_max_reason_chars() -> usize {
    PeopleRules::default().max_reason_chars
}

/// OIDC: ID tokens or JWT access tokens, verified against the issuer's signing keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    /// The `iss` every token must carry, exactly.
    pub issuer: String,
    /// An `aud` every token must carry (vigil's client id at the identity provider).
    pub audience: String,
    /// The issuer's keys as a JWKS file, relative to this file (for air-gapped setups).
    pub jwks_file: Option<String>,
    /// The issuer's JWKS URL (`jwks_uri` in its discovery document).
    pub jwks_url: Option<String>,
    /// How often the keys at `jwks_url` are fetched again, in seconds (default 3600).
    #[serde(default = "default_jwks_refresh_secs")]
    pub jwks_refresh_secs: u64,
    /// The claim that names the person (default `email`).
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// The claim that lists their groups (default `groups`).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 60).
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
}

fn default_jwks_refresh_secs() -> u64 {
    3600
}

fn default_name_claim() -> String {
    "email".to_owned()
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_leeway_secs() -> u64 {
    60
}

/// Client certificates: which part of the certificate names the person.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMtls {
    /// `email` (a subjectAltName email, the default) or `common_name`.
    #[serde(default)]
    pub name_from: CertificateName,
}

/// Which part of a client certificate names the person. Their groups are the certificate
/// subject's organizational units (OU).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateName {
    /// The first rfc822Name of the subjectAltName.
    #[default]
    Email,
    /// The subject's common name (CN).
    CommonName,
}

/// The validated admin API.
#[derive(Debug, Clone)]
pub struct AdminApiConfig {
    /// The personal tokens file.
    pub tokens_file: Option<PathBuf>,
    /// OIDC tokens.
    pub oidc: Option<OidcConfig>,
    /// Client certificates.
    pub mtls: Option<MtlsConfig>,
    /// Which groups hold each role; `None`: a group named like a role holds it.
    pub roles: Option<BTreeMap<Role, BTreeSet<String>>>,
    /// The rules the engine holds instructions to.
    pub people: PeopleRules,
}

/// Where the OIDC issuer's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A file.
    File(PathBuf),
    /// A URL, fetched at start and every `refresh`.
    Url {
        /// The URL.
        url: Url,
        /// How often.
        refresh: Duration,
    },
}

/// Validated OIDC settings.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The exact `iss`.
    pub issuer: String,
    /// The `aud` required.
    pub audience: String,
    /// The keys.
    pub jwks: JwksSource,
    /// The name claim.
    pub name_claim: String,
    /// The groups claim.
    pub groups_claim: String,
    /// Tolerated clock skew.
    pub leeway: Duration,
}

/// Validated client-certificate settings.
#[derive(Debug, Clone, Copy)]
pub struct MtlsConfig {
    /// Which part names the person.
    pub name_from: CertificateName,
}

pub(super) fn validate_admin(
    problems: &mut Problems,
    raw: Option<RawAdminApi>,
    base_dir: &Path,
) -> Option<AdminApiConfig> {
    let raw = raw?;
    if raw.token.is_some() {
        problems.push(
            "admin.token",
            "one token shared by everyone cannot say who approved what, so it is no longer accepted: give each person their own (`vigil admin-token add --tokens-file FILE --name NAME --role approver` and `admin.tokens_file: FILE`), or use `admin.oidc` or `admin.mtls`",
        );
    }
    if raw.tokens_file.is_none() && raw.oidc.is_none() && raw.mtls.is_none() {
        problems.push(
            "admin",
            "say how people authenticate: `tokens_file`, `oidc`, `mtls`, or several",
        );
    }
    let tokens_file = raw.tokens_file.map(|file| {
        if file.trim().is_empty() {
            problems.push("admin.tokens_file", "must name a file");
        }
        base_dir.join(file)
    });
    let oidc = raw
        .oidc
        .and_then(|oidc| validate_oidc(problems, oidc, base_dir));
    let mtls = raw.mtls.map(|mtls| MtlsConfig {
        name_from: mtls.name_from,
    });
    let roles = raw.roles.map(|roles| {
        let mut mapping = BTreeMap::new();
        for (name, groups) in roles {
            let path = format!("admin.roles.{name}");
            let Some(role) = Role::parse(&name) else {
                problems.push(path, "not a role: use viewer, approver, operator or admin");
                continue;
            };
            let mut normalized = BTreeSet::new();
            for (idx, group) in groups.iter().enumerate() {
                let group = normalize_name(group);
                if group.is_empty() || group.chars().any(char::is_control) {
                    problems.push(format!("{path}[{idx}]"), "must name a group");
                }
                normalized.insert(group);
            }
            mapping.insert(role, normalized);
        }
        mapping
    });
    if !raw.oncall_group.contains("{team}") {
        problems.push(
            "admin.oncall_group",
            format!(
                "`{}` must contain `{{team}}`, for the team's id",
                raw.oncall_group
            ),
        );
    }
    if normalize_name(&raw.unowned_oncall_group).is_empty() {
        problems.push("admin.unowned_oncall_group", "must name a group");
    }
    const MAX_SILENCE_SECS: u64 = 366 * 86_400;
    if !(60..=MAX_SILENCE_SECS).contains(&raw.max_silence_secs) {
        problems.push(
            "admin.max_silence_secs",
            format!("must be between 60 and {MAX_SILENCE_SECS} (a year)"),
        );
    }
    if !(1..=10_000).contains(&raw.max_reason_chars) {
        problems.push("admin.max_reason_chars", "must be between 1 and 10000");
    }
    Some(AdminApiConfig {
        tokens_file,
        oidc,
        mtls,
        roles,
        people: PeopleRules {
            max_silence_ms: i64::try_from(raw.max_silence_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            oncall_group: raw.oncall_group,
            unowned_oncall_group: raw.unowned_oncall_group,
            max_reason_chars: raw.max_reason_chars,
        },
    })
}

fn validate_oidc(problems: &mut Problems, raw: RawOidc, base_dir: &Path) -> Option<OidcConfig> {
    if raw.issuer.trim().is_empty() {
        problems.push("admin.oidc.issuer", "must not be empty");
    }
    if raw.audience.trim().is_empty() {
        problems.push("admin.oidc.audience", "must not be empty");
    }
    for (path, claim) in [
        ("admin.oidc.name_claim", &raw.name_claim),
        ("admin.oidc.groups_claim", &raw.groups_claim),
    ] {
        if claim.trim().is_empty() {
            problems.push(path, "must name a claim");
        }
    }
    if raw.leeway_secs > 600 {
        problems.push("admin.oidc.leeway_secs", "must be at most 600");
    }
    let jwks = match (raw.jwks_file, raw.jwks_url) {
        (Some(file), None) => Some(JwksSource::File(base_dir.join(file))),
        (None, Some(url)) => {
            if raw.jwks_refresh_secs < 60 {
                problems.push("admin.oidc.jwks_refresh_secs", "must be at least 60");
            }
            http_url(problems, "admin.oidc.jwks_url", &url).map(|url| JwksSource::Url {
                url,
                refresh: Duration::from_secs(raw.jwks_refresh_secs.max(60)),
            })
        }
        (Some(_), Some(_)) => {
            problems.push("admin.oidc", "set `jwks_file` or `jwks_url`, not both");
            None
        }
        (None, None) => {
            problems.push(
                "admin.oidc",
                "set `jwks_file` or `jwks_url`: the issuer's keys",
            );
            None
        }
    }?;
    Some(OidcConfig {
        issuer: raw.issuer,
        audience: raw.audience,
        jwks,
        name_claim: raw.name_claim,
        groups_claim: raw.groups_claim,
        leeway: Duration::from_secs(raw.leeway_secs),
    })
}
