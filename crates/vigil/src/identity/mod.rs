//! Who is talking to the admin API: the credential a request carries, turned into the
//! [`Principal`] that the engine records and Cedar authorizes.
//!
//! Three kinds of credential, each optional, any combination:
//! - a personal token (`Authorization: Bearer vigil_adm_...`), looked up by its SHA-256 in
//!   the tokens file (`tokens.rs`);
//! - an OIDC token (`Authorization: Bearer eyJ...`), a JWT verified against the issuer's
//!   keys (`oidc.rs`);
//! - a TLS client certificate the handshake verified against the client CA (`mtls.rs`).
//!
//! A bearer token wins over a client certificate. The name is normalized before anything
//! compares it; groups come from the credential, and roles from the groups through
//! `admin.roles` (or, without that mapping, a group named like a role holds it) and, for
//! personal tokens, from the token's own `roles`.

pub mod mtls;
pub mod oidc;
pub mod strength;
pub mod tokens;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, RwLock};

use vigil_core::people::{CredentialKind, Principal, Role, name_problem, normalize_name};

use crate::config::admin::{AdminApiConfig, MtlsConfig, OidcConfig};
use oidc::{Expectations, Jwks, TokenRefused};
use tokens::TokenDirectory;

/// What a request presented.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// The bearer token of `Authorization: Bearer ...`, if any.
    pub bearer: Option<&'a str>,
    /// The verified client certificate (DER), if the connection had one.
    pub client_cert: Option<&'a [u8]>,
}

/// Why a request was not authenticated. The messages say what was wrong with the credential,
/// never the credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential at all.
    Missing,
    /// A bearer token no tokens file entry has.
    UnknownToken,
    /// A personal token past its `expires_at`.
    Expired {
        /// The token's id.
        id: String,
    },
    /// An OIDC token refused.
    Oidc(TokenRefused),
    /// A JWT, but OIDC is not configured, or its keys have not been fetched yet.
    OidcUnavailable(&'static str),
    /// A client certificate that does not name anyone.
    Certificate(String),
    /// The credential's name cannot name a person.
    Name(String),
}

impl AuthFailure {
    /// A short, fixed label for metrics.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::UnknownToken => "unknown_token",
            AuthFailure::Expired { .. } => "expired",
            AuthFailure::Oidc(refused) => refused.label(),
            AuthFailure::OidcUnavailable(_) => "oidc_unavailable",
            AuthFailure::Certificate(_) => "certificate",
            AuthFailure::Name(_) => "name",
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Missing => write!(
                formatter,
                "no credential: send `Authorization: Bearer <your token>` or a client certificate"
            ),
            AuthFailure::UnknownToken => write!(formatter, "the token is not known"),
            AuthFailure::Expired { id } => write!(formatter, "token `{id}` has expired"),
            AuthFailure::Oidc(refused) => {
                write!(formatter, "the OIDC token was refused: {refused}")
            }
            AuthFailure::OidcUnavailable(why) => write!(formatter, "{why}"),
            AuthFailure::Certificate(why) => write!(formatter, "{why}"),
            AuthFailure::Name(why) => write!(formatter, "the credential's name: {why}"),
        }
    }
}

/// Which groups hold each role.
#[derive(Clone, Debug, Default)]
pub struct RoleMapping(Option<BTreeMap<Role, BTreeSet<String>>>);

impl RoleMapping {
    /// The mapping as configured (`None`: a group named like a role holds it).
    #[must_use]
    pub fn new(mapping: Option<BTreeMap<Role, BTreeSet<String>>>) -> Self {
        RoleMapping(mapping)
    }

    /// The roles of someone in `groups` (normalized) who also holds `direct`.
    #[must_use]
    pub fn roles(&self, groups: &[String], direct: &[Role]) -> Vec<Role> {
        let mut roles: BTreeSet<Role> = direct.iter().copied().collect();
        for role in Role::ALL {
            let holds = match &self.0 {
                Some(mapping) => mapping
                    .get(&role)
                    .is_some_and(|holders| groups.iter().any(|group| holders.contains(group))),
                None => groups.iter().any(|group| group == role.as_str()),
            };
            if holds {
                roles.insert(role);
            }
        }
        roles.into_iter().collect()
    }
}

/// The OIDC part: what tokens must say, and the issuer's keys (refreshed by the daemon when
/// they come from a URL).
#[derive(Debug)]
struct OidcState {
    expectations: Expectations,
    keys: Arc<RwLock<Option<Jwks>>>,
}

/// Authenticates admin API requests.
#[derive(Debug)]
pub struct Authenticator {
    /// The personal tokens, replaced whole on a reload (SIGHUP).
    tokens: Option<RwLock<Arc<TokenDirectory>>>,
    /// Where they are read from.
    tokens_file: Option<std::path::PathBuf>,
    oidc: Option<OidcState>,
    mtls: Option<MtlsConfig>,
    roles: RoleMapping,
}

impl Authenticator {
    /// Builds it from the config, with the tokens file read and the issuer's keys as given
    /// (read from `jwks_file`, or fetched from `jwks_url`; `None` until a fetch succeeds).
    ///
    /// # Errors
    ///
    /// When the tokens file cannot be read or has problems.
    pub fn load(config: &AdminApiConfig, jwks: Option<Jwks>) -> anyhow::Result<Authenticator> {
        let tokens = config
            .tokens_file
            .as_deref()
            .map(TokenDirectory::load)
            .transpose()?;
        Ok(Authenticator {
            tokens: tokens.map(|tokens| RwLock::new(Arc::new(tokens))),
            tokens_file: config.tokens_file.clone(),
            oidc: config.oidc.as_ref().map(|oidc| OidcState {
                expectations: expectations(oidc),
                keys: Arc::new(RwLock::new(jwks)),
            }),
            mtls: config.mtls,
            roles: RoleMapping::new(config.roles.clone()),
        })
    }

    /// An authenticator of personal tokens only (for tests and tools).
    #[must_use]
    pub fn with_tokens(tokens: TokenDirectory, roles: RoleMapping) -> Authenticator {
        Authenticator {
            tokens: Some(RwLock::new(Arc::new(tokens))),
            tokens_file: None,
            oidc: None,
            mtls: None,
            roles,
        }
    }

    /// The personal tokens in force, when configured.
    #[must_use]
    pub fn tokens(&self) -> Option<Arc<TokenDirectory>> {
        let tokens = self.tokens.as_ref()?;
        let held = tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(Arc::clone(&held))
    }

    /// Reads the tokens file again and puts it in force; a file with any problem is refused
    /// whole and the tokens in force stay. `Ok(None)` when no tokens file is configured.
    ///
    /// # Errors
    ///
    /// The file's problems.
    pub fn reload_tokens(&self) -> anyhow::Result<Option<usize>> {
        let (Some(tokens), Some(path)) = (&self.tokens, &self.tokens_file) else {
            return Ok(None);
        };
        let loaded = TokenDirectory::load(path)?;
        let n_tokens = loaded.len();
        let mut held = tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held = Arc::new(loaded);
        Ok(Some(n_tokens))
    }

    /// Where the daemon's refresher puts the issuer's keys, when OIDC is configured.
    #[must_use]
    pub fn jwks_slot(&self) -> Option<Arc<RwLock<Option<Jwks>>>> {
        self.oidc.as_ref().map(|oidc| Arc::clone(&oidc.keys))
    }

    /// Who presented `credentials` at `now_ms`.
    ///
    /// # Errors
    ///
    /// Why they are not authenticated.
    pub fn authenticate(
        &self,
        credentials: &Credentials<'_>,
        now_ms: i64,
    ) -> Result<Principal, AuthFailure> {
        if let Some(token) = credentials.bearer {
            if oidc::looks_like_jwt(token) {
                return self.authenticate_jwt(token, now_ms);
            }
            let tokens = self.tokens().ok_or(AuthFailure::UnknownToken)?;
            let entry = tokens.find(token).ok_or(AuthFailure::UnknownToken)?;
            if entry.expires_at_ms.is_some_and(|expires| now_ms >= expires) {
                return Err(AuthFailure::Expired {
                    id: entry.id.clone(),
                });
            }
            return self.principal(
                &entry.name,
                &entry.groups,
                &entry.roles,
                entry.id.clone(),
                CredentialKind::Token,
            );
        }
        if let (Some(der), Some(mtls)) = (credentials.client_cert, self.mtls) {
            let found = mtls::identity(der, mtls.name_from).map_err(AuthFailure::Certificate)?;
            return self.principal(
                &found.name,
                &found.groups,
                &[],
                found.credential_id,
                CredentialKind::Mtls,
            );
        }
        Err(AuthFailure::Missing)
    }

    fn authenticate_jwt(&self, token: &str, now_ms: i64) -> Result<Principal, AuthFailure> {
        let Some(oidc) = &self.oidc else {
            return Err(AuthFailure::OidcUnavailable(
                "OIDC tokens are not accepted here (admin.oidc is not configured)",
            ));
        };
        let verified = {
            let keys = oidc
                .keys
                .read()
                .map_err(|_| AuthFailure::OidcUnavailable("the issuer's keys are unavailable"))?;
            let Some(keys) = keys.as_ref() else {
                return Err(AuthFailure::OidcUnavailable(
                    "the issuer's keys have not been fetched yet; try again shortly",
                ));
            };
            oidc::verify(token, keys, &oidc.expectations, now_ms.div_euclid(1000))
                .map_err(AuthFailure::Oidc)?
        };
        self.principal(
            &verified.name,
            &verified.groups,
            &[],
            verified.credential_id,
            CredentialKind::Oidc,
        )
    }

    fn principal(
        &self,
        name: &str,
        groups: &[String],
        direct_roles: &[Role],
        credential_id: String,
        via: CredentialKind,
    ) -> Result<Principal, AuthFailure> {
        if let Some(problem) = name_problem(name) {
            return Err(AuthFailure::Name(problem));
        }
        let mut groups: Vec<String> = groups
            .iter()
            .map(|group| normalize_name(group))
            .filter(|group| !group.is_empty() && !group.chars().any(char::is_control))
            .collect();
        groups.sort();
        groups.dedup();
        let roles = self.roles.roles(&groups, direct_roles);
        Ok(Principal {
            name: normalize_name(name),
            credential_id,
            via,
            groups,
            roles,
        })
    }
}

fn expectations(oidc: &OidcConfig) -> Expectations {
    Expectations {
        issuer: oidc.issuer.clone(),
        audience: oidc.audience.clone(),
        name_claim: oidc.name_claim.clone(),
        groups_claim: oidc.groups_claim.clone(),
        leeway_secs: i64::try_from(oidc.leeway.as_secs()).unwrap_or(60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(entries: &str) -> TokenDirectory {
        TokenDirectory::parse(entries, "tokens.yaml").unwrap()
    }

    #[test]
    fn a_personal_token_authenticates_its_owner_with_groups_and_roles() {
        let token = tokens::new_token().unwrap();
        let text = tokens::entry_yaml(
            "ada-1",
            " Ada ",
            &token,
            &["SRE-Leads".to_owned(), "search-oncall".to_owned()],
            &[Role::Viewer],
            Some("2030-01-01T00:00:00Z"),
        );
        let mapping = BTreeMap::from([
            (Role::Admin, BTreeSet::from(["sre-leads".to_owned()])),
            (Role::Approver, BTreeSet::from(["search-oncall".to_owned()])),
        ]);
        let authenticator =
            Authenticator::with_tokens(directory(&text), RoleMapping::new(Some(mapping)));
        let credentials = Credentials {
            bearer: Some(&token),
            client_cert: None,
        };
        let principal = authenticator
            .authenticate(&credentials, 1_800_000_000_000)
            .unwrap();
        assert_eq!(principal.name, "ada");
        assert_eq!(principal.credential_id, "ada-1");
        assert_eq!(principal.via, CredentialKind::Token);
        assert_eq!(principal.groups, ["search-oncall", "sre-leads"]);
        assert_eq!(principal.roles, [Role::Viewer, Role::Approver, Role::Admin]);
        // After it expires, and with someone else's guess.
        assert_eq!(
            authenticator.authenticate(&credentials, 1_893_456_000_000),
            Err(AuthFailure::Expired {
                id: "ada-1".to_owned()
            })
        );
        let guess = Credentials {
            bearer: Some("vigil_adm_guess"),
            client_cert: None,
        };
        assert_eq!(
            authenticator.authenticate(&guess, 0),
            Err(AuthFailure::UnknownToken)
        );
        assert_eq!(
            authenticator.authenticate(&Credentials::default(), 0),
            Err(AuthFailure::Missing)
        );
        let jwt = Credentials {
            bearer: Some("eyJ.eyJ.sig"),
            client_cert: None,
        };
        assert!(matches!(
            authenticator.authenticate(&jwt, 0),
            Err(AuthFailure::OidcUnavailable(_))
        ));
    }

    #[test]
    fn without_a_mapping_a_group_named_like_a_role_holds_it() {
        let mapping = RoleMapping::default();
        assert_eq!(
            mapping.roles(&["approver".to_owned(), "search-oncall".to_owned()], &[]),
            [Role::Approver]
        );
        assert!(mapping.roles(&["admins".to_owned()], &[]).is_empty());
    }
}
