//! The assistant in game days: the OpenAI fake on loopback plays the investigator well and
//! in each way a real model misbehaves; vigil's actions and pages are those of the same
//! game day with the assistant off, every dropped claim is counted, and the ledger it writes
//! replays exactly with no model reachable.

use serde_json::Value;

use crate::support::{TempDir, repo_root, vigil};

/// The shipped `failed-fix` game day (a block that changes nothing: undone, one page) with
/// `assistant` set as given.
fn failed_fix(dir: &TempDir, assistant: Option<&str>) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo_root().join("tests/scenarios/failed-fix.yaml"))
        .expect("the shipped scenario");
    let config = repo_root().join("tests/scenarios/config/vigil.yaml");
    let mut text = text.replace(
        "config: config/vigil.yaml",
        &format!("config: \"{}\"", config.display()),
    );
    if let Some(play) = assistant {
        text.push_str(&format!("assistant: {{ play: {play}, on: all }}\n"));
    }
    let path = dir
        .path()
        .join(format!("{}.yaml", assistant.unwrap_or("off")));
    std::fs::write(&path, text).expect("write the scenario");
    path
}

/// The timeline as JSON lines.
fn timeline(path: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["simulate", "--json"];
    args.extend_from_slice(extra);
    let path = path.display().to_string();
    args.push(&path);
    let done = vigil(args, &repo_root());
    assert!(done.status.success(), "{}\n{}", done.stdout, done.stderr);
    done.stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// What the world saw: each action and page, in order, with its time.
fn effects(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| {
            matches!(line["kind"].as_str(), Some("action" | "page"))
                && line
                    .get("title")
                    .is_none_or(|_| line.get("assistant").is_none())
        })
        .filter(|line| line.get("resolved").is_none())
        .map(|line| {
            format!(
                "{} {} {}",
                line["t"],
                line["kind"],
                line.get("action")
                    .or_else(|| line.get("title"))
                    .or_else(|| line.get("detail"))
                    .map(Value::to_string)
                    .unwrap_or_default()
            )
        })
        .collect()
}

fn assistant_lines(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|line| line["kind"] == "assistant" && line.get("investigation").is_some())
        .filter(|line| line.get("claims").is_some() || line.get("failure").is_some())
        .collect()
}

#[test]
fn each_play_of_the_assistant_leaves_actions_and_pages_as_they_are_without_it() {
    let dir = TempDir::new("simulate-assistant");
    let off = timeline(&failed_fix(&dir, None), &[]);
    let baseline = effects(&off);
    assert!(baseline.len() >= 3, "{baseline:?}");
    let mut claims = 0;
    let mut dropped = 0;
    for play in [
        "good",
        "disagrees",
        "hallucinated",
        "malformed",
        "no_schema",
        "endless_tools",
        "rate_limited",
        "server_error",
        "slow",
        "closed",
    ] {
        let lines = timeline(&failed_fix(&dir, Some(play)), &[]);
        assert_eq!(effects(&lines), baseline, "{play}");
        let outcomes = assistant_lines(&lines);
        let [outcome] = outcomes.as_slice() else {
            panic!("{play}: one investigation, one outcome: {outcomes:?}");
        };
        match play {
            "good" => {
                assert_eq!(outcome["agrees"], true, "{play}: {outcome}");
                assert_eq!(outcome["dropped"], 0, "{play}: {outcome}");
            }
            "disagrees" => assert_eq!(outcome["agrees"], false, "{play}: {outcome}"),
            "hallucinated" | "malformed" | "no_schema" => {
                assert!(outcome["dropped"].as_u64() > Some(0), "{play}: {outcome}");
                assert!(
                    outcome.get("agrees").is_none_or(Value::is_null),
                    "{play}: {outcome}"
                );
                claims += outcome["claims"].as_u64().unwrap_or(0);
                dropped += outcome["dropped"].as_u64().unwrap_or(0);
            }
            "endless_tools" => assert_eq!(outcome["failure"], "exhausted", "{play}"),
            "slow" => assert_eq!(outcome["failure"], "deadline", "{play}"),
            _ => assert!(outcome.get("failure").is_some(), "{play}: {outcome}"),
        }
    }
    // Every claim of the misbehaving answers was dropped.
    assert_eq!(claims, dropped);
}

#[test]
fn a_game_day_with_the_assistant_replays_exactly_with_no_model_reachable() {
    let dir = TempDir::new("simulate-assistant-replay");
    let scenario = failed_fix(&dir, Some("good"));
    let db = dir.path().join("ledger.db");
    let db = db.display().to_string();
    timeline(&scenario, &["--ledger", &db]);
    // The fake is gone with the simulation: replay reads the recorded answer.
    let replay = vigil(["replay", "--db", &db, "--all"], &repo_root());
    assert!(
        replay.status.success(),
        "{}\n{}",
        replay.stdout,
        replay.stderr
    );
    let verify = vigil(["ledger", "verify", "--db", &db], &repo_root());
    assert!(
        verify.status.success(),
        "{}\n{}",
        verify.stdout,
        verify.stderr
    );
    let show = vigil(["ledger", "show", "--db", &db], &repo_root());
    assert!(show.status.success(), "{}", show.stderr);
    // The investigation shows with what survived and where its transcript is.
    assert!(
        show.stdout.contains("assistant answered"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("hypothesis (the assistant's): runaway_key"),
        "{}",
        show.stdout
    );
    let transcript = show
        .stdout
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("transcript: vigil ledger blob --db LEDGER ")
        })
        .expect("the transcript's blob")
        .to_owned();
    let blob = vigil(["ledger", "blob", "--db", &db, &transcript], &repo_root());
    assert!(blob.status.success(), "{}", blob.stderr);
    assert!(
        blob.stdout.contains("\"tool\": \"incident_evidence\""),
        "{}",
        blob.stdout
    );
}

/// The shipped scenario config with an assistant block pointing at `base_url`, switched off.
fn config_with_assistant(dir: &TempDir, base_url: &str) -> std::path::PathBuf {
    let shipped = repo_root().join("tests/scenarios/config/vigil.yaml");
    let text = std::fs::read_to_string(&shipped).expect("the shipped config");
    let block = format!(
        "diagnosis:\n  assistant:\n    enabled: false\n    base_url: {base_url}\n    model: vigil-fake\n    deadline_secs: 20\n    request_timeout_secs: 10\n"
    );
    let text = text.replacen("diagnosis:\n", &block, 1);
    let path = dir.path().join("vigil.yaml");
    std::fs::write(&path, text).expect("write the config");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn investigate_runs_after_the_fact_against_the_recorded_state_and_writes_nothing() {
    let dir = TempDir::new("investigate-after");
    let db = dir.path().join("ledger.db").display().to_string();
    let scenario = failed_fix(&dir, None);
    let scenario_path = scenario.display().to_string();
    let done = vigil(
        ["simulate", "--quiet", "--ledger", &db, &scenario_path],
        &repo_root(),
    );
    assert!(done.status.success(), "{}", done.stderr);
    let shown = vigil(["ledger", "show", "--db", &db], &repo_root());
    let incident = crate::support::incident_ids(&shown.stdout)
        .into_iter()
        .next()
        .expect("an incident");
    let entries_before = shown.stdout.lines().count();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let stop = tokio_util::sync::CancellationToken::new();
    let fake = vigil_sim::OpenAiFake::start(listener, vigil_sim::Play::Good.script(), stop.clone())
        .await
        .expect("the fake");
    let config = config_with_assistant(&dir, &fake.base_url());
    let config = config.display().to_string();
    let transcript = dir.path().join("transcript.json");
    let transcript_arg = transcript.display().to_string();
    let args = [
        "investigate",
        "--db",
        &db,
        "--incident",
        &incident,
        "--config",
        &config,
        "--transcript",
        &transcript_arg,
    ];
    let done = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        move || vigil(args, &repo_root())
    })
    .await
    .expect("the command ran");
    assert!(done.status.success(), "{}\n{}", done.stdout, done.stderr);
    assert!(
        done.stdout
            .contains("The assistant agrees with vigil's diagnosis (runaway_key)"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("0 of 5 claims dropped"),
        "{}",
        done.stdout
    );
    assert!(transcript.exists());
    // Its tools read the state the ledger rebuilt: the evidence it cites is vigil's own.
    assert!(
        done.stdout.contains("token spike on key batch-job"),
        "{}",
        done.stdout
    );
    // Nothing was written to the ledger.
    let after = vigil(["ledger", "show", "--db", &db], &repo_root());
    assert_eq!(after.stdout.lines().count(), entries_before);
    stop.cancel();
}
