//! Scenario tests of people's instructions in sessions that authenticate people: the
//! principal is required and must be the one named, names compare normalized, scopes and
//! durations are checked before any policy is asked, Cedar is asked with the right request,
//! and only an allowed instruction is carried out.

use expect_test::expect;

use super::tests::{NORMAL, RUNAWAY, Scenario, config, human as unauthenticated, proposal};
use super::*;
use crate::authz::{
    AttrValue, AuthzDecision, Effect, EntityRef, EntityType, HumanActionName, Mode,
};
use crate::people::{CredentialKind, PeopleRules, Principal, Role};

fn person(name: &str, groups: &[&str], roles: &[Role]) -> Principal {
    Principal {
        name: name.to_owned(),
        credential_id: format!("tok-{name}"),
        via: CredentialKind::Token,
        groups: groups.iter().map(|group| (*group).to_owned()).collect(),
        roles: roles.to_vec(),
    }
}

fn said(by: &str, principal: &Principal, reason: &str, command: HumanCommand) -> Event {
    Event::Human {
        by: by.to_owned(),
        reason: reason.to_owned(),
        command,
        principal: Some(principal.clone()),
    }
}

fn authenticated(mode: Mode) -> Scenario {
    let mut config = config(mode);
    config.runbooks[0].owner = "Alice".to_owned();
    config.people = Some(PeopleRules::default());
    Scenario::new(config)
}

/// Answers the `AuthorizeHuman` among `commands` as the policy engine would have.
fn decide(
    scenario: &mut Scenario,
    commands: &[Command],
    effect: Effect,
    policies: &[&str],
) -> Vec<Command> {
    let Some(Command::AuthorizeHuman {
        request_id,
        incident_id,
        ..
    }) = commands
        .iter()
        .find(|command| matches!(command, Command::AuthorizeHuman { .. }))
    else {
        panic!("no human authorization in {commands:?}");
    };
    scenario.feed(Event::HumanDecided {
        request_id: request_id.clone(),
        incident_id: incident_id.clone(),
        decision: AuthzDecision {
            effect,
            determining_policies: policies.iter().map(|id| (*id).to_owned()).collect(),
            errors: Vec::new(),
            policy_set_hash: "abc".to_owned(),
        },
    })
}

/// A scenario with a pending proposal to block the runaway key; its id and hash.
fn with_proposal() -> (Scenario, String, String) {
    let mut scenario = authenticated(Mode::Advisory);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    let (proposal_id, hash) = proposal(&commands);
    (scenario, proposal_id, hash)
}

#[test]
fn an_approval_is_put_to_cedar_as_the_person_and_the_proposal_and_runs_only_when_allowed() {
    let (mut scenario, proposal_id, hash) = with_proposal();
    let approve = HumanCommand::Approve {
        proposal_id: proposal_id.clone(),
        action_hash: hash,
    };
    let bob = person("bob", &["ml-oncall"], &[Role::Approver]);
    let commands = scenario.feed(said("bob", &bob, "checked", approve.clone()));
    let [
        Command::AuthorizeHuman {
            incident_id,
            request,
            ..
        },
    ] = commands.as_slice()
    else {
        panic!("{commands:?}")
    };
    assert_eq!(
        incident_id.as_deref(),
        proposal_id.split('/').next(),
        "the decision belongs to the proposal's incident"
    );
    assert_eq!(request.action, HumanActionName::Approve);
    let parents: Vec<String> = request
        .principal
        .parents
        .iter()
        .map(|parent| format!("{}:{}", parent.entity_type.cedar_name(), parent.id))
        .collect();
    assert_eq!(parents, ["Group:ml-oncall", "Role:approver", "Role:viewer"]);
    assert_eq!(
        request.principal.attrs.get("credential"),
        Some(&AttrValue::String("tok-bob".to_owned()))
    );
    let resource = &request.resource;
    assert_eq!(resource.uid.entity_type, EntityType::Proposal);
    let attr = |name: &str| resource.attrs.get(name).cloned();
    assert_eq!(
        attr("runbook"),
        Some(AttrValue::String("block-runaway-key".into()))
    );
    assert_eq!(attr("action"), Some(AttrValue::String("block".into())));
    assert_eq!(attr("target"), Some(AttrValue::String("h-batch".into())));
    assert_eq!(attr("owner"), Some(AttrValue::String("ml".into())));
    // The requester as configured (`Alice`), compared normalized.
    assert_eq!(
        attr("requested_by"),
        Some(AttrValue::String("alice".into()))
    );
    assert_eq!(
        attr("owner_oncall"),
        Some(AttrValue::Entity(EntityRef {
            entity_type: EntityType::Group,
            id: "ml-oncall".to_owned()
        }))
    );
    assert_eq!(
        resource.parents,
        [EntityRef {
            entity_type: EntityType::Team,
            id: "ml".to_owned()
        }]
    );

    // Denied: recorded with the policies that said no, and nothing runs.
    let commands = decide(
        &mut scenario,
        &commands,
        Effect::Deny,
        &["approver-must-be-on-call"],
    );
    assert_eq!(commands.len(), 1);
    assert!(matches!(
        &commands[0],
        Command::Record(Record::HumanAction { accepted: false, outcome, credential_id: Some(id), .. })
            if outcome.ends_with("denied by approver-must-be-on-call") && id == "tok-bob"
    ));
    // Asked again and allowed: the step runs.
    let commands = scenario.feed(said("bob", &bob, "checked", approve));
    let commands = decide(
        &mut scenario,
        &commands,
        Effect::Allow,
        &["on-call-approves"],
    );
    assert!(matches!(
        &commands[0],
        Command::Record(Record::HumanAction {
            accepted: true,
            credential_id: Some(_),
            ..
        })
    ));
    assert!(matches!(commands.last(), Some(Command::Execute { .. })));
}

// The four-eyes bypass: `--as 'sre-platform '` or `--as Vigil` approved a proposal requested
// by `sre-platform` or `vigil`, because names were compared byte for byte.
#[test]
fn the_requester_cannot_approve_under_another_spelling_of_their_name() {
    let (mut scenario, proposal_id, hash) = with_proposal();
    for spelling in ["alice", "Alice ", "ALICE", "ａｌｉｃｅ", "al\u{200B}ice"] {
        let principal = person(
            &crate::people::normalize_name(spelling),
            &["ml-oncall"],
            &[Role::Admin],
        );
        let commands = scenario.feed(said(
            spelling,
            &principal,
            "lgtm",
            HumanCommand::Approve {
                proposal_id: proposal_id.clone(),
                action_hash: hash.clone(),
            },
        ));
        assert!(
            matches!(
                commands.as_slice(),
                [Command::Record(Record::HumanAction { accepted: false, outcome, .. })]
                    if outcome.contains("requested this step and cannot also approve it")
            ),
            "{spelling:?}: {commands:?}"
        );
    }
    // The same holds in sessions recorded before people were authenticated.
    let mut legacy = Scenario::new({
        let mut config = config(Mode::Advisory);
        config.runbooks[0].owner = "sre-platform".to_owned();
        config
    });
    legacy.scrapes(10, NORMAL);
    let commands = legacy.scrapes(2, RUNAWAY);
    let commands = legacy.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    let (proposal_id, action_hash) = proposal(&commands);
    let commands = legacy.feed(unauthenticated(
        "sre-platform ",
        "lgtm",
        HumanCommand::Approve {
            proposal_id,
            action_hash,
        },
    ));
    assert!(matches!(
        commands.as_slice(),
        [Command::Record(Record::HumanAction {
            accepted: false,
            ..
        })]
    ));
}

#[test]
fn instructions_without_their_authenticated_principal_are_refused_before_any_policy() {
    let (mut scenario, proposal_id, hash) = with_proposal();
    let approve = HumanCommand::Approve {
        proposal_id,
        action_hash: hash,
    };
    let bob = person("bob", &["ml-oncall"], &[Role::Approver]);
    let forger = person("bob\ninfo forged", &[], &[Role::Approver]);
    let events = [
        unauthenticated("bob", "no credential", approve.clone()),
        said("carol", &bob, "bob's token, carol's name", approve.clone()),
        said("bob\nINFO forged", &forger, "", approve),
    ];
    let mut outcomes = Vec::new();
    for event in events {
        for command in scenario.feed(event) {
            match command {
                Command::Record(Record::HumanAction {
                    accepted: false,
                    outcome,
                    ..
                }) => outcomes.push(outcome),
                other => panic!("{other:?}"),
            }
        }
    }
    expect![[r#"
        the instruction carries no authenticated principal; vigil takes instructions only from people its admin API authenticated
        the instruction names `carol`, but its credential belongs to `bob`
        the authenticated name is not usable: the name holds control characters"#]]
    .assert_eq(&outcomes.join("\n"));
}

#[test]
fn silences_need_a_scope_a_reason_and_at_most_the_longest_duration() {
    let mut scenario = authenticated(Mode::Autonomous);
    let oscar = person("oscar", &["sre"], &[Role::Operator]);
    let now = scenario.now;
    let silence = |id: &str, detector: Option<&str>, subject: Option<&str>, hours: i64| {
        HumanCommand::Silence {
            silence_id: id.to_owned(),
            detector: detector.map(str::to_owned),
            subject: subject.map(str::to_owned),
            expires_at: now.plus_millis(hours * 3_600_000),
        }
    };
    let cases = [
        (silence("s1", None, None, 1), "maintenance"),
        (
            silence("s2", Some("no-such-detector"), None, 1),
            "maintenance",
        ),
        (
            silence("s3", Some("token-spike"), None, 24 * 7 + 1),
            "maintenance",
        ),
        (silence("s4", Some("token-spike"), None, 1), ""),
        (silence("", Some("token-spike"), None, 1), "maintenance"),
    ];
    for (command, reason) in cases {
        let commands = scenario.feed(said("oscar", &oscar, reason, command));
        assert!(
            matches!(
                commands.as_slice(),
                [Command::Record(Record::HumanAction {
                    accepted: false,
                    ..
                })]
            ),
            "{commands:?}"
        );
    }
    let refusals: Vec<&str> = scenario
        .log
        .iter()
        .map(|line| line.split(" -> refused ").nth(1).unwrap_or(line))
        .collect();
    expect![[r#"
        (a silence needs a scope: a detector, a subject, or both; muting everything is what the kill switch is for)
        (no detector `no-such-detector` is configured)
        (a silence may last at most 7 d (admin.max_silence_secs); this one would last 7.04 d)
        (a silence needs a reason)
        (a silence needs an id of printable text)"#]]
    .assert_eq(&refusals.join("\n"));

    // A scoped silence of 36 h is asked about with its duration, and holds once allowed.
    let commands = scenario.feed(said(
        "oscar",
        &oscar,
        "migrating the batch fleet",
        silence("batch", Some("token-spike"), Some("h-batch"), 36),
    ));
    let Some(Command::AuthorizeHuman { request, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(request.context.duration_secs, 36 * 3600);
    assert_eq!(request.resource.uid.entity_type, EntityType::Silence);
    let commands = decide(
        &mut scenario,
        &commands,
        Effect::Allow,
        &["operators-silence"],
    );
    assert!(matches!(
        &commands[0],
        Command::Record(Record::HumanAction { accepted: true, .. })
    ));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(3, RUNAWAY);
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::Authorize { .. } | Command::Page { .. })),
        "the silence mutes the runaway key's finding: {commands:?}"
    );
}

#[test]
fn kill_switches_name_a_configured_runbook_or_a_target_runbooks_act_on() {
    let mut scenario = authenticated(Mode::Autonomous);
    let oscar = person("oscar", &["sre"], &[Role::Operator]);
    let refused = [
        KillScope::Runbook {
            id: "no-such-runbook".to_owned(),
        },
        KillScope::Target {
            entity_type: EntityType::Human,
            id: "bob".to_owned(),
        },
        KillScope::Target {
            entity_type: EntityType::ApiKey,
            id: " ".to_owned(),
        },
    ];
    for scope in refused {
        let commands = scenario.feed(said("oscar", &oscar, "stop", HumanCommand::Kill { scope }));
        assert!(
            matches!(
                commands.as_slice(),
                [Command::Record(Record::HumanAction {
                    accepted: false,
                    ..
                })]
            ),
            "{commands:?}"
        );
    }
    let commands = scenario.feed(said(
        "oscar",
        &oscar,
        "stop",
        HumanCommand::Kill {
            scope: KillScope::Runbook {
                id: "block-runaway-key".to_owned(),
            },
        },
    ));
    let Some(Command::AuthorizeHuman { request, .. }) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(request.resource.uid.id, "runbook:block-runaway-key");
    assert_eq!(
        request.resource.attrs.get("runbook"),
        Some(&AttrValue::String("block-runaway-key".to_owned()))
    );
    // Denied: the switch is not on.
    decide(&mut scenario, &commands, Effect::Deny, &[]);
    assert!(
        scenario.log.last().is_some_and(|line| line.contains(
            "no policy permits you to kill switch on for runbook block-runaway-key (default deny)"
        )),
        "{:?}",
        scenario.log.last()
    );
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::Authorize { .. }))
    );
}

#[test]
fn a_rejection_needs_a_reason() {
    let (mut scenario, proposal_id, _) = with_proposal();
    let bob = person("bob", &["ml-oncall"], &[Role::Approver]);
    let commands = scenario.feed(said("bob", &bob, " ", HumanCommand::Reject { proposal_id }));
    assert!(matches!(
        commands.as_slice(),
        [Command::Record(Record::HumanAction { accepted: false, outcome, .. })] if outcome.starts_with("a rejection needs a reason")
    ));
}
