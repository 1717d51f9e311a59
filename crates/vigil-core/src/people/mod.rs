//! People who give vigil instructions: who they are as the admin API authenticated them
//! ([`Principal`]), their [`Role`]s, how names are compared ([`normalize_name`]), and the
//! rules the engine holds every human instruction to ([`PeopleRules`]).
//!
//! The edge (the binary's admin API) authenticates a credential and builds the principal;
//! the engine never trusts a name a client merely claims. Names are compared only after
//! [`normalize_name`], so `Sre-Platform `, `ｓｒｅ-platform` and `sre-platform` are one person.

mod command;
mod instruction;

pub use command::{HumanCommand, KillScope};
pub use instruction::{Instruction, InstructionLimits, MAX_INSTRUCTION_BYTES, parse_instruction};

use serde::{Deserialize, Serialize};

/// What a person may do through the admin API, before Cedar decides each instruction.
///
/// Closed. A role implies the roles below it ([`Role::implied`]): an admin is also an
/// operator, an approver and a viewer; operators and approvers are viewers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads proposals and the controls in force.
    Viewer,
    /// Approves and rejects proposals (Cedar decides which).
    Approver,
    /// Turns kill switches and silences on and off.
    Operator,
    /// Everything, including silences longer than a day (as the shipped policies say).
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Approver, Role::Operator, Role::Admin];

    /// The role's name, as configs, tokens and Cedar (`Vigil::Role::"approver"`) spell it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` (exactly as [`as_str`](Role::as_str) spells it).
    #[must_use]
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// This role and every role it implies.
    #[must_use]
    pub fn implied(self) -> &'static [Role] {
        match self {
            Role::Viewer => &[Role::Viewer],
            Role::Approver => &[Role::Approver, Role::Viewer],
            Role::Operator => &[Role::Operator, Role::Viewer],
            Role::Admin => &Role::ALL,
        }
    }
}

/// How a principal proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A personal bearer token, stored as its SHA-256 in the tokens file.
    Token,
    /// An OIDC ID token or JWT access token, verified against the issuer's keys.
    Oidc,
    /// A TLS client certificate, verified against the configured client CA.
    Mtls,
    /// A person in a game-day scenario (`vigil simulate`); never accepted by the admin API.
    Scenario,
}

impl CredentialKind {
    /// The name policies see as `principal.via`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Token => "token",
            CredentialKind::Oidc => "oidc",
            CredentialKind::Mtls => "mtls",
            CredentialKind::Scenario => "scenario",
        }
    }
}

/// An authenticated person (or system) behind a human instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The name, normalized ([`normalize_name`]); what the ledger records as `by`.
    pub name: String,
    /// Which credential proved it: a token's id, `issuer#subject` of a JWT, a certificate's
    /// SHA-256 fingerprint. Never the secret itself.
    pub credential_id: String,
    /// What kind of credential.
    pub via: CredentialKind,
    /// The groups the credential says the principal is in (normalized), for example
    /// `search-oncall`; policies see them as `principal in Vigil::Group::"search-oncall"`.
    pub groups: Vec<String>,
    /// The roles granted, as given (the implied ones are added when policies see them).
    pub roles: Vec<Role>,
}

impl Principal {
    /// Whether the principal holds `role`, directly or implied by a stronger one.
    #[must_use]
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|held| held.implied().contains(&role))
    }

    /// Every role held, implied ones included, sorted and without repeats.
    #[must_use]
    pub fn all_roles(&self) -> Vec<Role> {
        let mut roles: Vec<Role> = self
            .roles
            .iter()
            .flat_map(|role| role.implied().iter().copied())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }
}

/// The rules the engine holds people's instructions to. Absent from the configs of sessions
/// recorded before people were authenticated: those sessions replay as they ran then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleRules {
    /// The longest silence anyone may set, in milliseconds.
    pub max_silence_ms: i64,
    /// The on-call group of a team, with `{team}` standing for the team's id (for example
    /// `{team}-oncall`); proposals carry it as `resource.owner_oncall`.
    pub oncall_group: String,
    /// The on-call group of proposals whose target has no known owner.
    pub unowned_oncall_group: String,
    /// The longest `reason` accepted, in characters.
    pub max_reason_chars: usize,
}

impl Default for PeopleRules {
    fn default() -> Self {
        PeopleRules {
            max_silence_ms: 7 * 24 * 3600 * 1000,
            oncall_group: "{team}-oncall".to_owned(),
            unowned_oncall_group: "oncall".to_owned(),
            max_reason_chars: 1000,
        }
    }
}

impl PeopleRules {
    /// The on-call group of `team` (normalized), or the unowned one when `team` is empty.
    #[must_use]
    pub fn oncall_group_of(&self, team: &str) -> String {
        let team = normalize_name(team);
        if team.is_empty() {
            normalize_name(&self.unowned_oncall_group)
        } else {
            normalize_name(&self.oncall_group.replace("{team}", &team))
        }
    }
}

/// The longest name accepted, in characters, after normalization.
pub const MAX_NAME_CHARS: usize = 256;

/// A name as vigil compares it: Unicode NFKC, case-folded, NFKC again (NFKC_Casefold in
/// spirit), without default-ignorable code points (zero-width spaces, joiners, soft hyphens,
/// variation selectors, bidirectional controls), and trimmed of white space.
///
/// Two spellings that people read as the same name normalize to the same string: `Vigil`,
/// `vigil `, `ｖｉｇｉｌ` (full width) and `vi\u{200B}gil` all become `vigil`.
#[must_use]
pub fn normalize_name(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let first: String = raw.nfkc().collect();
    let folded = caseless::default_case_fold_str(&first);
    let second: String = folded
        .nfkc()
        .filter(|c| !is_default_ignorable(*c))
        .collect();
    second.trim().to_owned()
}

/// Why `raw` cannot name a person, if it cannot: empty once normalized, too long, or holding
/// control characters (which could forge log lines).
#[must_use]
pub fn name_problem(raw: &str) -> Option<String> {
    let normalized = normalize_name(raw);
    if normalized.is_empty() {
        return Some("the name is empty".to_owned());
    }
    if normalized.chars().count() > MAX_NAME_CHARS {
        return Some(format!(
            "the name is longer than {MAX_NAME_CHARS} characters"
        ));
    }
    if normalized.chars().any(char::is_control) {
        return Some("the name holds control characters".to_owned());
    }
    None
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt), the ranges that can
/// hide inside a name: invisible, they would make two names look alike and compare unlike.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // The four-eyes bypass: `sre-platform ` and `Vigil` were different people from
    // `sre-platform` and `vigil` because names were compared byte for byte.
    #[test]
    fn names_people_read_as_the_same_normalize_to_the_same() {
        let cases = [
            ("sre-platform", "sre-platform"),
            ("sre-platform ", "sre-platform"),
            ("  SRE-Platform\t", "sre-platform"),
            ("Vigil", "vigil"),
            ("ＶＩＧＩＬ", "vigil"),
            ("vi\u{200B}gil", "vigil"),
            ("vi\u{00AD}gil", "vigil"),
            ("\u{FEFF}vigil", "vigil"),
            ("vigil\u{FE0F}", "vigil"),
            ("Straße", "strasse"),
            ("ＳＴＲＡＳＳＥ", "strasse"),
            ("ﬁle", "file"),
            ("ΌΣΟΣ", "όσοσ"),
            ("Kelvin\u{212A}", "kelvink"),
            ("alice@Example.COM", "alice@example.com"),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_name(raw), expected, "{raw:?}");
        }
        assert_ne!(normalize_name("alice"), normalize_name("alice2"));
        assert_ne!(normalize_name("a lice"), normalize_name("alice"));
    }

    #[test]
    fn names_that_cannot_name_anyone_are_refused_with_a_reason() {
        assert_eq!(
            name_problem(" \u{200B} ").as_deref(),
            Some("the name is empty")
        );
        assert_eq!(
            name_problem("alice\nINFO forged line").as_deref(),
            Some("the name holds control characters")
        );
        assert!(name_problem(&"a".repeat(MAX_NAME_CHARS + 1)).is_some());
        assert_eq!(name_problem("alice@example.com"), None);
    }

    #[test]
    fn roles_imply_the_weaker_ones() {
        let principal = |roles: Vec<Role>| Principal {
            name: "p".to_owned(),
            credential_id: "c".to_owned(),
            via: CredentialKind::Token,
            groups: Vec::new(),
            roles,
        };
        let admin = principal(vec![Role::Admin]);
        assert!(Role::ALL.iter().all(|role| admin.has_role(*role)));
        let approver = principal(vec![Role::Approver]);
        assert!(approver.has_role(Role::Viewer));
        assert!(!approver.has_role(Role::Operator));
        assert_eq!(
            principal(vec![Role::Operator, Role::Approver]).all_roles(),
            vec![Role::Viewer, Role::Approver, Role::Operator]
        );
        assert!(!principal(Vec::new()).has_role(Role::Viewer));
    }

    #[test]
    fn the_oncall_group_of_a_team_follows_the_template() {
        let rules = PeopleRules::default();
        assert_eq!(rules.oncall_group_of("Search"), "search-oncall");
        assert_eq!(rules.oncall_group_of(""), "oncall");
        let rules = PeopleRules {
            oncall_group: "oncall-{team}".to_owned(),
            ..PeopleRules::default()
        };
        assert_eq!(rules.oncall_group_of("payments"), "oncall-payments");
    }
}
