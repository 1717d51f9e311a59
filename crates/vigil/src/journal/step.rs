//! vigil's one rule, written once: the engine handles an event, Cedar answers its
//! authorization requests inline, and each answer is handed back to the engine.
//!
//! The daemon, the simulator and the driver conformance test call [`step`]; replay checks a
//! recorded answer with [`answer`], the same function `step` answers with. What a driver does
//! with the step's output (append it, schedule the world's answers, compare it with a ledger)
//! is its own business.

use std::collections::VecDeque;

use vigil_core::Timestamp;
use vigil_core::engine::{Command, Engine, Event, PushReport};
use vigil_policy::Authorizer;

/// What one event made of the engine: the event and every answer given inline, each with the
/// commands the engine issued for it, in the order the engine handled them.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The event first, then the inline answers (breadth first: the answers to the event's
    /// commands in their order, then the answers to those answers' commands).
    pub handled: Vec<(Event, Vec<Command>)>,
    /// For a pushed payload, the engine's account of it (series tracked, refused, why),
    /// taken right after the engine handled the push.
    pub push_report: Option<PushReport>,
}

/// Hands `event` to the engine at `now`, answers every `Authorize` and `AuthorizeHuman` it
/// issues with `authorizer`, and hands each answer back at the same `now`, until no command
/// asks for an inline answer.
///
/// Reads no clock and does no I/O apart from Cedar (which is pure too).
pub fn step(engine: &mut Engine, authorizer: &Authorizer, event: Event, now: Timestamp) -> Step {
    let mut handled = Vec::new();
    let mut push_report = None;
    let mut queue = VecDeque::from([event]);
    while let Some(event) = queue.pop_front() {
        let commands = engine.handle(&event, now);
        if handled.is_empty() {
            push_report = engine.push_report().cloned();
        }
        queue.extend(
            commands
                .iter()
                .filter_map(|command| answer(authorizer, command)),
        );
        handled.push((event, commands));
    }
    Step {
        handled,
        push_report,
    }
}

/// The event that answers `command` inline: Cedar's decision on an authorization request,
/// as [`Event::AuthorizationDecided`] or [`Event::HumanDecided`]. `None` for the commands
/// the world answers (actions, pages, wake-ups) and for records.
pub fn answer(authorizer: &Authorizer, command: &Command) -> Option<Event> {
    match command {
        Command::Authorize {
            request_id,
            incident_id,
            request,
        } => Some(Event::AuthorizationDecided {
            request_id: request_id.clone(),
            incident_id: incident_id.clone(),
            decision: authorizer.authorize(request),
        }),
        Command::AuthorizeHuman {
            request_id,
            incident_id,
            request,
        } => Some(Event::HumanDecided {
            request_id: request_id.clone(),
            incident_id: incident_id.clone(),
            decision: authorizer.authorize_human(request),
        }),
        Command::Record(_)
        | Command::Execute { .. }
        | Command::Page { .. }
        | Command::WakeAt { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use vigil_core::Timestamp;
    use vigil_core::engine::{Command, Engine, Event};

    use super::{answer, step};
    use crate::bundle::{self, Bundle};

    /// 2026-01-01T00:00:00Z.
    const NOW: Timestamp = Timestamp(1_767_225_600_000);

    fn scenario_bundle() -> Bundle {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/config/vigil.yaml");
        match bundle::load(&path) {
            Ok(bundle) => bundle,
            Err(problems) => panic!("the scenarios' config does not load:\n{problems}"),
        }
    }

    #[test]
    fn an_event_that_asks_for_no_decision_is_one_handled_event() {
        let bundle = scenario_bundle();
        let mut engine = Engine::new(bundle.engine.clone());
        let taken = step(&mut engine, &bundle.authorizer, Event::Tick, NOW);
        assert_eq!(taken.handled.len(), 1);
        assert_eq!(taken.handled[0].0, Event::Tick);
        assert_eq!(taken.push_report, None);
    }

    #[test]
    fn an_authorization_request_is_answered_by_cedar_and_handed_back() {
        let bundle = scenario_bundle();
        let mut engine = Engine::new(bundle.engine.clone());
        let event = Event::ScheduledRun {
            runbook_id: "gateway-readiness-check".to_owned(),
        };
        let taken = step(&mut engine, &bundle.authorizer, event.clone(), NOW);
        assert_eq!(taken.handled[0].0, event);
        let requests: Vec<&Command> = taken.handled[0]
            .1
            .iter()
            .filter(|command| matches!(command, Command::Authorize { .. }))
            .collect();
        assert_eq!(requests.len(), 1, "{:#?}", taken.handled[0].1);
        let Some(Event::AuthorizationDecided {
            request_id,
            decision,
            ..
        }) = taken.handled.get(1).map(|(event, _)| event)
        else {
            panic!("no decision handed back: {:#?}", taken.handled);
        };
        let Command::Authorize {
            request_id: asked,
            request,
            ..
        } = requests[0]
        else {
            panic!("not a request");
        };
        assert_eq!(request_id, asked);
        assert_eq!(decision, &bundle.authorizer.authorize(request));

        // The same events handed to a fresh engine one by one give the same commands: the
        // step adds the answers and nothing else.
        let mut by_hand = Engine::new(bundle.engine.clone());
        for (event, commands) in &taken.handled {
            assert_eq!(&by_hand.handle(event, NOW), commands);
        }
        // Every command of the step that asks for an answer got one, in order.
        let answers: Vec<Event> = taken
            .handled
            .iter()
            .flat_map(|(_, commands)| commands)
            .filter_map(|command| answer(&bundle.authorizer, command))
            .collect();
        let handed_back: Vec<&Event> = taken.handled.iter().skip(1).map(|(e, _)| e).collect();
        assert_eq!(handed_back, answers.iter().collect::<Vec<_>>());
    }

    #[test]
    fn only_authorization_requests_are_answered_inline() {
        let bundle = scenario_bundle();
        assert_eq!(
            answer(&bundle.authorizer, &Command::WakeAt { at: NOW }),
            None
        );
    }
}
