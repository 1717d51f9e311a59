//! `kill -9` at many moments: while a client pushes eval results and vigil remediates a
//! runaway key (its block answered slowly, so some kills land while it is in flight), the
//! daemon is killed with SIGKILL again and again at varied, fixed delays and restarted.
//! After every kill the ledger verifies and holds every push that was acknowledged (a 2xx
//! is a promise that the event is durably recorded); at the end the key was blocked exactly
//! once, the incident resolved, and its replay matches every command across all sessions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crash::{Stack, block_calls};
use crate::ledger::read_rows;
use crate::serve::Served;
use crate::support::{TempDir, http_post_json, incident_ids, vigil};

/// The intake's token: 64 hex digits, strong enough for vigil's check.
const TOKEN: &str = "5d2f8c1a9e7b3046d1c8a5f2e9b7043c6a1d8e5f2b9c7043a6d1e8f5c2b9a704";

/// Clients pushing at once.
const PUSHERS: usize = 4;

/// How long a block takes to answer: a window for kills to land in.
const ADMIN_DELAY: Duration = Duration::from_millis(1500);

/// When each run is killed.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// As soon as the gateway has the block and before it answers: mid-remediation.
    WhenTheBlockIsInFlight,
    /// This many milliseconds after the run started answering (fixed, so runs compare).
    AfterMs(u64),
}

const KILLS: [Kill; 6] = [
    Kill::WhenTheBlockIsInFlight,
    Kill::AfterMs(1_300),
    Kill::AfterMs(2_200),
    Kill::AfterMs(700),
    Kill::AfterMs(2_900),
    Kill::AfterMs(1_100),
];

/// Pushes eval results (ids `durable-LABEL-nN`) to `served` until `stop` is set or the daemon
/// stops answering; returns the ids of the pushes that were acknowledged.
fn start_pusher(
    address: std::net::SocketAddr,
    label: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut acknowledged = Vec::new();
        // Bounded: one push every 10 ms for at most a minute.
        for n in 0..6_000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let id = format!("durable-{label}-n{n}");
            let body = format!(
                r#"{{"results":[{{"suite":"durability","case":"{id}","passed":true,"model":"m","prompt_name":"p","prompt_version":"v1"}}]}}"#
            );
            match http_post_json(address, "/v1/push/evals", Some(TOKEN), &body) {
                Ok(response) if (200..300).contains(&response.status) => acknowledged.push(id),
                Ok(_) => {}
                // The daemon is gone (killed): nothing more to push to.
                Err(_) => break,
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        acknowledged
    })
}

#[test]
fn kill_9_at_many_moments_loses_no_acknowledged_push_and_the_remediation_completes_once() {
    let dir = TempDir::new("durability");
    let token_file = dir.join("push-token");
    crate::support::write_secret(&token_file, TOKEN);
    let stack = Stack::start(
        &dir,
        "autonomous",
        &format!(
            "intake:\n  bearer_token: {{ file: \"{}\" }}\n",
            token_file.display()
        ),
    );
    stack.gateway.set_admin_delay(ADMIN_DELAY);
    let shown = stack.ledger.to_str().expect("a UTF-8 path").to_owned();
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));

    // The first run learns the baselines before the key runs away.
    let first = Served::start(&stack.config, dir.path());
    let runaway = stack.runaway_after_warmup(&first);
    let mut served = Some(first);
    for (cycle, kill) in KILLS.iter().enumerate() {
        let running = served
            .take()
            .unwrap_or_else(|| Served::start(&stack.config, dir.path()));
        let stop = Arc::new(AtomicBool::new(false));
        // Several clients at once, so that pushes are also recorded in batches.
        let pushers: Vec<_> = (0..PUSHERS)
            .map(|client| {
                start_pusher(
                    running.address,
                    format!("c{cycle}-t{client}"),
                    Arc::clone(&stop),
                )
            })
            .collect();
        match kill {
            Kill::WhenTheBlockIsInFlight => {
                let deadline = Instant::now() + Duration::from_secs(120);
                while block_calls(&stack.gateway) == 0 {
                    assert!(Instant::now() < deadline, "the block was never sent");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Kill::AfterMs(ms) => std::thread::sleep(Duration::from_millis(*ms)),
        }
        let (code, stderr) = running.stop_with("KILL");
        stop.store(true, Ordering::Relaxed);
        let pushed: Vec<String> = pushers
            .into_iter()
            .flat_map(|pusher| pusher.join().expect("a pusher"))
            .collect();
        assert_eq!(code, None, "vigil was killed by a signal:\n{stderr}");

        // The log verifies and holds every acknowledged push.
        vigil(["ledger", "verify", "--db", &shown], dir.path())
            .assert_success(&format!("verify after kill {cycle}"));
        let rows = stack.runtime.block_on(read_rows(&stack.ledger));
        let lost: Vec<&String> = pushed
            .iter()
            .filter(|id| {
                let needle = format!("\"{id}\"");
                !rows.iter().any(|row| row.payload.contains(&needle))
            })
            .collect();
        assert!(
            lost.is_empty(),
            "kill {cycle} lost {} acknowledged pushes: {lost:?}",
            lost.len()
        );
        acknowledged.lock().expect("the list").extend(pushed);
        assert!(
            block_calls(&stack.gateway) <= 1,
            "the block was repeated by kill {cycle}:\n{stderr}"
        );
    }
    let n_acknowledged = acknowledged.lock().expect("the list").len();
    assert!(
        n_acknowledged >= KILLS.len(),
        "{n_acknowledged} pushes acknowledged"
    );

    // The last run carries the remediation to its end (unless a killed run already did).
    let last = Served::start(&stack.config, dir.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    let resolved = |rows: &[crate::ledger::Row]| {
        rows.iter()
            .any(|row| row.payload.contains("\"record\":\"incident_resolved\""))
    };
    while !resolved(&stack.runtime.block_on(read_rows(&stack.ledger))) {
        assert!(
            Instant::now() < deadline,
            "the incident was never resolved:\n{}",
            vigil(["ledger", "show", "--db", &shown], dir.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, stderr) = last.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stack.gateway.is_blocked(&runaway), "{stderr}");
    assert_eq!(block_calls(&stack.gateway), 1, "{stderr}");

    vigil(["ledger", "verify", "--db", &shown], dir.path()).assert_success("the final verify");
    let show = vigil(["ledger", "show", "--db", &shown], dir.path());
    let incidents = incident_ids(&show.stdout);
    assert_eq!(incidents.len(), 1, "{show}");
    let rows = stack.runtime.block_on(read_rows(&stack.ledger));
    let sessions = rows
        .iter()
        .filter(|row| row.payload.contains("\"type\":\"session_started\""))
        .count();
    assert_eq!(sessions, KILLS.len() + 1, "{show}");
    // The kill mid-remediation left an action whose answer the ledger never got: the next
    // session read the key back instead of blocking it again.
    let finished: Vec<&str> = rows
        .iter()
        .filter(|row| row.payload.contains("\"type\":\"action_finished\""))
        .map(|row| row.payload.as_str())
        .collect();
    assert_eq!(finished.len(), 1, "{show}");
    assert!(
        finished[0].contains("reconciled, not repeated"),
        "{}",
        finished[0]
    );
    for id in acknowledged.lock().expect("the list").iter() {
        let needle = format!("\"{id}\"");
        assert!(
            rows.iter().any(|row| row.payload.contains(&needle)),
            "acknowledged push {id} is missing at the end"
        );
    }
    let replay = vigil(
        ["replay", "--db", &shown, "--incident", &incidents[0]],
        dir.path(),
    );
    replay.assert_success("replay across every killed session");
    assert!(
        replay.stdout.contains("result: every command matches"),
        "{replay}"
    );
}
