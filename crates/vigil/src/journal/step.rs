//! vigil's one rule, written once: the engine handles an event, the authorization requests it
//! issues are answered inline, and each answer is handed back to the engine.
//!
//! Who answers is the driver's choice ([`Answerer`]). The daemon, the simulator and the
//! driver conformance test call [`step`], where Cedar answers at the step's `now`
//! ([`CedarAnswers`], with [`answer`]). Replay and recovery call [`step_with`] through
//! [`super::rerun`], where the answers are the recorded ones, handed back at their recorded
//! times ([`RecordedAnswers`]). What a driver does with the step's output (append it,
//! schedule the world's answers, compare it with a ledger, rebuild an engine) is its own
//! business.

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
    /// When the engine handled each of `handled`, in the same order: the step's `now` for the
    /// event, and the time its [`Answerer`] gave for each answer.
    pub handled_at: Vec<Timestamp>,
    /// For a pushed payload, the engine's account of it (series tracked, refused, why),
    /// taken right after the engine handled the push.
    pub push_report: Option<PushReport>,
}

/// Who answers the commands a step answers inline.
pub trait Answerer {
    /// The event that answers `command`, issued at `now`, and when the engine is handed it;
    /// `None` leaves the command unanswered by the step (the world answers it later, if at
    /// all).
    fn answer(&mut self, command: &Command, now: Timestamp) -> Option<(Event, Timestamp)>;
}

/// Cedar answering every authorization request at once: the daemon's and the simulator's
/// answerer.
pub struct CedarAnswers<'authorizer>(pub &'authorizer Authorizer);

impl Answerer for CedarAnswers<'_> {
    fn answer(&mut self, command: &Command, now: Timestamp) -> Option<(Event, Timestamp)> {
        answer(self.0, command).map(|event| (event, now))
    }
}

/// The answers a ledger recorded after an event, handed back in the recorded order at the
/// recorded times: replay's and recovery's answerer.
///
/// A request is answered by the next recorded answer not handed back yet, if that answer is
/// to this request; otherwise it stays unanswered, and a later recorded answer is stepped as
/// an event of its own, when the driver reaches it. Answers are only ever taken in order, so
/// the engine is handed the recorded events in the recorded order.
#[derive(Debug, Default)]
pub struct RecordedAnswers {
    /// The recorded answers still to hand back, with their recorded times.
    answers: VecDeque<(Event, Timestamp)>,
    /// How many were handed back.
    n_taken: usize,
}

impl RecordedAnswers {
    /// The answers recorded after an event, in the order recorded.
    #[must_use]
    pub fn new(answers: impl IntoIterator<Item = (Event, Timestamp)>) -> RecordedAnswers {
        RecordedAnswers {
            answers: answers.into_iter().collect(),
            n_taken: 0,
        }
    }

    /// How many recorded answers were handed back: the first ones given to [`Self::new`].
    #[must_use]
    pub fn n_taken(&self) -> usize {
        self.n_taken
    }
}

impl Answerer for RecordedAnswers {
    fn answer(&mut self, command: &Command, _now: Timestamp) -> Option<(Event, Timestamp)> {
        let (next, _) = self.answers.front()?;
        let answers_it = match (command, next) {
            (
                Command::Authorize { request_id, .. },
                Event::AuthorizationDecided {
                    request_id: answered,
                    ..
                },
            )
            | (
                Command::AuthorizeHuman { request_id, .. },
                Event::HumanDecided {
                    request_id: answered,
                    ..
                },
            ) => request_id == answered,
            _ => false,
        };
        if !answers_it {
            return None;
        }
        self.n_taken += 1;
        self.answers.pop_front()
    }
}

/// Hands `event` to the engine at `now`, asks `answerer` to answer every command it issues,
/// and hands each answer back at the time the answerer gives, until no command gets an
/// answer.
///
/// Reads no clock and does no I/O apart from what the answerer does.
pub fn step_with(
    engine: &mut Engine,
    answerer: &mut impl Answerer,
    event: Event,
    now: Timestamp,
) -> Step {
    let mut handled = Vec::new();
    let mut handled_at = Vec::new();
    let mut push_report = None;
    let mut queue = VecDeque::from([(event, now)]);
    while let Some((event, at)) = queue.pop_front() {
        let commands = engine.handle(&event, at);
        if handled.is_empty() {
            push_report = engine.push_report().cloned();
        }
        queue.extend(
            commands
                .iter()
                .filter_map(|command| answerer.answer(command, at)),
        );
        handled.push((event, commands));
        handled_at.push(at);
    }
    Step {
        handled,
        handled_at,
        push_report,
    }
}

/// Hands `event` to the engine at `now`, answers every `Authorize` and `AuthorizeHuman` it
/// issues with `authorizer`, and hands each answer back at the same `now`, until no command
/// asks for an inline answer: [`step_with`] and [`CedarAnswers`].
///
/// Reads no clock and does no I/O apart from Cedar (which is pure too).
pub fn step(engine: &mut Engine, authorizer: &Authorizer, event: Event, now: Timestamp) -> Step {
    step_with(engine, &mut CedarAnswers(authorizer), event, now)
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
        | Command::ResolvePage { .. }
        | Command::UpdatePage { .. }
        | Command::Investigate { .. }
        | Command::Notify { .. }
        | Command::WakeAt { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use vigil_core::Timestamp;
    use vigil_core::engine::{Command, Engine, Event};

    use super::{RecordedAnswers, answer, step, step_with};
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

    /// The request a scheduled run's first step puts to Cedar, and Cedar's answer to it.
    fn scheduled_request(bundle: &Bundle) -> (Event, Command, Event) {
        let event = Event::ScheduledRun {
            runbook_id: "gateway-readiness-check".to_owned(),
        };
        let issued = Engine::new(bundle.engine.clone()).handle(&event, NOW);
        let Some(request) = issued
            .into_iter()
            .find(|command| matches!(command, Command::Authorize { .. }))
        else {
            panic!("the scheduled run asks for no authorization");
        };
        let Some(decided) = answer(&bundle.authorizer, &request) else {
            panic!("Cedar does not answer {request:?}");
        };
        (event, request, decided)
    }

    #[test]
    fn a_recorded_answer_is_handed_back_at_its_recorded_time() {
        let bundle = scenario_bundle();
        let (event, request, decided) = scheduled_request(&bundle);
        // Older ledgers recorded an inline answer a few milliseconds after its event.
        let later = Timestamp(NOW.0 + 7);
        let mut answerer = RecordedAnswers::new([(decided.clone(), later)]);
        let mut engine = Engine::new(bundle.engine.clone());
        let taken = step_with(&mut engine, &mut answerer, event.clone(), NOW);
        assert_eq!(answerer.n_taken(), 1);
        assert_eq!(taken.handled.len(), 2, "{:#?}", taken.handled);
        assert!(taken.handled[0].1.contains(&request));
        assert_eq!(taken.handled[1].0, decided);
        assert_eq!(taken.handled_at, [NOW, later]);
        // What the engine issued is what it issues when handed the same events at those times.
        let mut by_hand = Engine::new(bundle.engine.clone());
        assert_eq!(by_hand.handle(&event, NOW), taken.handled[0].1);
        assert_eq!(by_hand.handle(&decided, later), taken.handled[1].1);
    }

    #[test]
    fn a_request_without_its_recorded_answer_next_stays_unanswered() {
        let bundle = scenario_bundle();
        let (event, request, decided) = scheduled_request(&bundle);
        let Event::AuthorizationDecided {
            incident_id,
            decision,
            ..
        } = decided.clone()
        else {
            panic!("not a decision: {decided:?}");
        };
        let another_request = Event::AuthorizationDecided {
            request_id: "another-request".to_owned(),
            incident_id,
            decision,
        };
        // No answer recorded (a crash before it), and an answer to another request next (to
        // be stepped as an event of its own, after this one's commands).
        for recorded in [vec![], vec![(another_request, NOW)]] {
            let n_recorded = recorded.len();
            let mut answerer = RecordedAnswers::new(recorded);
            let mut engine = Engine::new(bundle.engine.clone());
            let taken = step_with(&mut engine, &mut answerer, event.clone(), NOW);
            assert_eq!(answerer.n_taken(), 0, "{n_recorded} recorded");
            assert_eq!(taken.handled.len(), 1, "{:#?}", taken.handled);
            assert_eq!(taken.handled_at, [NOW]);
            assert!(taken.handled[0].1.contains(&request));
        }
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
