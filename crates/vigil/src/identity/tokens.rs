//! Personal admin tokens: one per person (or system), each stored only as its SHA-256 in the
//! file `admin.tokens_file` names, with the person's name, groups and roles.
//!
//! ```yaml
//! # written by `vigil admin-token add`; a token is shown once, when it is made
//! - id: alice-2026-12          # the credential id the ledger records
//!   name: alice@example.com
//!   sha256: 3b1f...            # of the token, 64 hex digits
//!   groups: [search-oncall]
//!   roles: [approver]
//!   expires_at: 2027-06-01T00:00:00Z   # optional
//! ```
//!
//! A presented token is hashed and looked up by its hash, so the comparison never touches
//! the secret; tokens are 256 random bits, so a fast hash is enough.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use vigil_core::people::{Role, name_problem, normalize_name};
use vigil_core::problem::Problems;

use crate::config::{Problems as LocatedProblems, locate, parse_yaml};

/// What a token's prefix says: a vigil admin token (so secret scanners can find leaked ones).
pub const TOKEN_PREFIX: &str = "vigil_adm_";

/// The most entries a tokens file may hold.
const MAX_ENTRIES: usize = 10_000;

/// One entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    name: String,
    sha256: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    expires_at: Option<String>,
}

/// One person's token, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// The credential id.
    pub id: String,
    /// The normalized name.
    pub name: String,
    /// Normalized groups.
    pub groups: Vec<String>,
    /// Roles granted directly.
    pub roles: Vec<Role>,
    /// When it stops working, in milliseconds since the epoch.
    pub expires_at_ms: Option<i64>,
}

/// Every token of a tokens file, by the SHA-256 of the token.
#[derive(Debug, Clone, Default)]
pub struct TokenDirectory {
    by_digest: BTreeMap<[u8; 32], TokenEntry>,
}

impl TokenDirectory {
    /// Whether some entry has the id `id`.
    #[must_use]
    pub fn has_id(&self, id: &str) -> bool {
        self.by_digest.values().any(|entry| entry.id == id)
    }
}

impl TokenDirectory {
    /// Reads and validates a tokens file.
    ///
    /// # Errors
    ///
    /// When it cannot be read, or every problem in it, each with its line and key path.
    pub fn load(path: &Path) -> anyhow::Result<TokenDirectory> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the admin tokens file {}", path.display()))?;
        TokenDirectory::parse(&text, &path.display().to_string()).map_err(|problems| {
            anyhow::anyhow!("the admin tokens file {}:\n{problems}", path.display())
        })
    }

    /// Parses and validates the text of a tokens file (`file` names it in problems).
    ///
    /// # Errors
    ///
    /// Every problem, each with its line and key path.
    pub fn parse(text: &str, file: &str) -> Result<TokenDirectory, LocatedProblems> {
        let raw: Option<Vec<RawEntry>> =
            parse_yaml(text, file).map_err(|problem| LocatedProblems(vec![problem]))?;
        let raw = raw.unwrap_or_default();
        let mut problems = Problems::default();
        if raw.len() > MAX_ENTRIES {
            problems.push("", format!("holds more than {MAX_ENTRIES} tokens"));
        }
        let mut by_digest = BTreeMap::new();
        let mut ids = BTreeSet::new();
        for (idx, entry) in raw.into_iter().enumerate().take(MAX_ENTRIES) {
            let path = format!("[{idx}]");
            if entry.id.trim().is_empty()
                || entry.id.chars().count() > 128
                || entry
                    .id
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace())
            {
                problems.push(
                    format!("{path}.id"),
                    "must be 1 to 128 printable characters without spaces",
                );
            } else if !ids.insert(entry.id.clone()) {
                problems.push(
                    format!("{path}.id"),
                    format!("`{}` is used twice", entry.id),
                );
            }
            if let Some(problem) = name_problem(&entry.name) {
                problems.push(format!("{path}.name"), problem);
            }
            let digest: Option<[u8; 32]> = hex::decode(&entry.sha256)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .filter(|_| entry.sha256.bytes().all(|b| !b.is_ascii_uppercase()));
            let Some(digest) = digest else {
                problems.push(
                    format!("{path}.sha256"),
                    "must be the token's SHA-256 as 64 lowercase hex digits (never the token)",
                );
                continue;
            };
            let mut roles = Vec::new();
            for (role_idx, role) in entry.roles.iter().enumerate() {
                match Role::parse(role) {
                    Some(role) => roles.push(role),
                    None => problems.push(
                        format!("{path}.roles[{role_idx}]"),
                        format!("`{role}` is not a role: use viewer, approver, operator or admin"),
                    ),
                }
            }
            let mut groups = Vec::new();
            for (group_idx, group) in entry.groups.iter().enumerate() {
                let group = normalize_name(group);
                if group.is_empty() || group.chars().any(char::is_control) {
                    problems.push(format!("{path}.groups[{group_idx}]"), "must name a group");
                }
                groups.push(group);
            }
            groups.sort();
            groups.dedup();
            let expires_at_ms = entry.expires_at.as_deref().and_then(|text| {
                match vigil_core::datetime::parse_timestamp_ms(text) {
                    Ok(ms) => Some(ms),
                    Err(error) => {
                        problems.push(format!("{path}.expires_at"), error.to_string());
                        None
                    }
                }
            });
            let token = TokenEntry {
                id: entry.id,
                name: normalize_name(&entry.name),
                groups,
                roles,
                expires_at_ms,
            };
            if let Some(other) = by_digest.insert(digest, token) {
                problems.push(
                    format!("{path}.sha256"),
                    format!(
                        "the same token as `{}`: two people must not share a token",
                        other.id
                    ),
                );
            }
        }
        problems
            .finish(TokenDirectory { by_digest })
            .map_err(|found| locate(file, text, found))
    }

    /// The entry of `token`, if any.
    #[must_use]
    pub fn find(&self, token: &str) -> Option<&TokenEntry> {
        self.by_digest.get(&digest(token))
    }

    /// Whether some entry's token has this SHA-256.
    #[must_use]
    pub fn holds_digest(&self, digest: &[u8; 32]) -> bool {
        self.by_digest.contains_key(digest)
    }

    /// How many tokens the file holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// The SHA-256 of a token.
#[must_use]
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new token: the prefix and 256 random bits, base64url.
///
/// # Errors
///
/// When the system has no randomness to give.
pub fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The YAML of one entry, as `vigil admin-token add` appends it.
#[must_use]
pub fn entry_yaml(
    id: &str,
    name: &str,
    token: &str,
    groups: &[String],
    roles: &[Role],
    expires_at: Option<&str>,
) -> String {
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
    let list = |items: Vec<String>| format!("[{}]", items.join(", "));
    let mut yaml = format!(
        "- id: {}\n  name: {}\n  sha256: {}\n  groups: {}\n  roles: {}\n",
        quote(id),
        quote(name),
        hex::encode(digest(token)),
        list(groups.iter().map(|group| quote(group)).collect()),
        list(roles.iter().map(|role| role.as_str().to_owned()).collect()),
    );
    if let Some(expires_at) = expires_at {
        yaml.push_str(&format!("  expires_at: {}\n", quote(expires_at)));
    }
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_by_entry_yaml_reads_back_and_finds_its_tokens() {
        let alice = new_token().unwrap();
        let bob = new_token().unwrap();
        assert!(alice.starts_with(TOKEN_PREFIX));
        assert_eq!(alice.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(alice, bob);
        let text = format!(
            "# tokens\n{}{}",
            entry_yaml(
                "alice-1",
                "Alice@Example.com",
                &alice,
                &["Search-OnCall".to_owned()],
                &[Role::Approver],
                None
            ),
            entry_yaml(
                "bob-1",
                "bob",
                &bob,
                &[],
                &[Role::Operator, Role::Viewer],
                Some("2027-06-01T00:00:00Z")
            ),
        );
        let directory = TokenDirectory::parse(&text, "tokens.yaml").unwrap();
        assert_eq!(directory.len(), 2);
        let found = directory.find(&alice).unwrap();
        assert_eq!(found.name, "alice@example.com");
        assert_eq!(found.groups, ["search-oncall"]);
        assert_eq!(found.roles, [Role::Approver]);
        assert!(directory.find(&bob).unwrap().expires_at_ms.is_some());
        assert!(directory.find("vigil_adm_guess").is_none());
        assert!(!text.contains(&alice), "the file holds no token");
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let hash = hex::encode(digest("t"));
        let text = format!(
            "- id: a\n  name: alice\n  sha256: {hash}\n- id: a\n  name: \"\\u200b\"\n  sha256: {hash}\n  roles: [root]\n- id: c\n  name: carol\n  sha256: NOTAHASH\n"
        );
        let problems = TokenDirectory::parse(&text, "tokens.yaml").unwrap_err();
        expect_test::expect![[r#"
            5 problems:
              tokens.yaml:4: `[1].id`: `a` is used twice
              tokens.yaml:5: `[1].name`: the name is empty
              tokens.yaml:7: `[1].roles[0]`: `root` is not a role: use viewer, approver, operator or admin
              tokens.yaml:6: `[1].sha256`: the same token as `a`: two people must not share a token
              tokens.yaml:10: `[2].sha256`: must be the token's SHA-256 as 64 lowercase hex digits (never the token)
        "#]]
        .assert_eq(&problems.to_string());
        let shared = format!(
            "- id: a\n  name: alice\n  sha256: {hash}\n- id: b\n  name: bob\n  sha256: {hash}\n"
        );
        let problems = TokenDirectory::parse(&shared, "tokens.yaml").unwrap_err();
        assert!(
            problems
                .to_string()
                .contains("the same token as `a`: two people must not share a token"),
            "{problems}"
        );
        let unknown = "- id: a\n  name: alice\n  token: t\n";
        assert!(TokenDirectory::parse(unknown, "tokens.yaml").is_err());
        assert!(TokenDirectory::parse("", "tokens.yaml").unwrap().is_empty());
    }
}
