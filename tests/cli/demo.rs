//! `vigil demo`: both stories, checked through the binary's output and then through the
//! ledger it wrote (`ledger verify`, `replay`, `ledger show`).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{Finished, TempDir, incident_ids, lines_with, run_vigil, vigil};

/// A hang guard for one demo run (they take about 15 s and 25 s).
const DEMO_LIMIT: Duration = Duration::from_secs(300);

/// A finished demo: what it printed and the ledger files it left.
pub struct DemoRun {
    /// The run.
    pub finished: Finished,
    /// The ledger's files (`demo.db` and any `-wal` or `-shm`) by suffix, with their bytes.
    pub ledger_files: Vec<(String, Vec<u8>)>,
    /// Every file the demo left in its working folder.
    pub files_left: Vec<String>,
}

impl DemoRun {
    /// The one incident the story is about.
    pub fn incident_id(&self) -> String {
        let ids = incident_ids(&lines_with(&self.finished.stdout, "OPENED").join("\n"));
        assert_eq!(
            ids.len(),
            1,
            "expected one OPENED incident: {}",
            self.finished
        );
        ids[0].clone()
    }

    /// Writes the ledger into `dir` as `name` (with its `-wal` and `-shm` files, if any).
    pub fn restore_ledger(&self, dir: &TempDir, name: &str) -> PathBuf {
        assert!(
            self.ledger_files
                .iter()
                .any(|(suffix, _)| suffix.is_empty()),
            "the demo left no ledger: {}",
            self.finished
        );
        for (suffix, bytes) in &self.ledger_files {
            std::fs::write(dir.join(&format!("{name}{suffix}")), bytes).expect("writing a copy");
        }
        dir.join(name)
    }
}

/// Runs `vigil demo --scenario SCENARIO --db demo.db` in a fresh folder.
pub fn run_demo(scenario: &str) -> DemoRun {
    let dir = TempDir::new(&format!("demo-{scenario}"));
    let db = dir.join("demo.db");
    let finished = run_vigil(
        [
            "demo".as_ref(),
            "--scenario".as_ref(),
            scenario.as_ref(),
            "--db".as_ref(),
            db.as_os_str(),
        ],
        dir.path(),
        DEMO_LIMIT,
    );
    let mut files_left = Vec::new();
    let mut ledger_files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("listing the demo folder") {
        let entry = entry.expect("an entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(suffix) = name.strip_prefix("demo.db") {
            let bytes = std::fs::read(entry.path()).expect("reading the ledger");
            ledger_files.push((suffix.to_owned(), bytes));
        }
        files_left.push(name);
    }
    files_left.sort();
    DemoRun {
        finished,
        ledger_files,
        files_left,
    }
}

/// The runaway-key demo, run once and shared by the tests that read its ledger.
pub fn runaway_demo() -> &'static DemoRun {
    static RUN: OnceLock<DemoRun> = OnceLock::new();
    RUN.get_or_init(|| run_demo("runaway-key"))
}

/// Asserts that the ledger at `db` verifies and that replaying `incident_id` matches.
fn assert_ledger_verifies_and_replays(dir: &TempDir, db: &str, incident_id: &str) {
    let verify = vigil(["ledger", "verify", "--db", db], dir.path());
    verify.assert_success("ledger verify");
    assert!(
        verify.stdout.contains("every hash link intact"),
        "ledger verify: {verify}"
    );
    let replay = vigil(
        ["replay", "--db", db, "--incident", incident_id],
        dir.path(),
    );
    replay.assert_success("replay");
    assert!(
        replay.stdout.contains("result: every command matches"),
        "replay: {replay}"
    );
    assert!(
        replay
            .stdout
            .contains(&format!("replaying incident {incident_id}")),
        "replay: {replay}"
    );
}

#[test]
fn demo_resolves_a_runaway_key_without_a_page() {
    let run = runaway_demo();
    let out = &run.finished.stdout;
    run.finished.assert_success("vigil demo");
    for step in ["DETECTED", "ACTED", "VERIFIED", "RESOLVED"] {
        assert_eq!(
            lines_with(out, step).len(),
            1,
            "expected one {step} line: {}",
            run.finished
        );
    }
    assert!(
        out.contains("AUTHORIZED by policy block-single-runaway-key"),
        "{}",
        run.finished
    );
    assert!(
        lines_with(out, "PAGING").is_empty() && lines_with(out, "PAGE SENT").is_empty(),
        "the runaway-key story must not page: {}",
        run.finished
    );
    assert!(out.contains("Pages: 0."), "{}", run.finished);
    let incident_id = run.incident_id();
    assert!(
        lines_with(out, "RESOLVED")[0].contains(&incident_id),
        "{}",
        run.finished
    );
    // `--db` is honoured: nothing but the ledger is left in the working folder.
    assert!(
        run.files_left
            .iter()
            .all(|name| name.starts_with("demo.db")),
        "the demo left {:?}",
        run.files_left
    );

    let dir = TempDir::new("runaway-ledger");
    let db = run.restore_ledger(&dir, "demo.db");
    let db = db.to_str().expect("a UTF-8 path");
    assert_ledger_verifies_and_replays(&dir, db, &incident_id);

    let replay = vigil(
        ["replay", "--db", db, "--incident", &incident_id],
        dir.path(),
    );
    for command in [
        "record incident_opened",
        "authorize block-runaway-key block",
        "execute block key",
        "record verification_passed",
        "record incident_resolved",
    ] {
        assert!(
            replay.stdout.contains(command),
            "replay does not list `{command}`: {replay}"
        );
    }

    let show = vigil(
        ["ledger", "show", "--db", db, "--incident", &incident_id],
        dir.path(),
    );
    show.assert_success("ledger show --incident");
    let lines: Vec<&str> = show.stdout.lines().collect();
    assert!(
        lines.iter().all(|line| line.contains(&incident_id)),
        "ledger show --incident lists another incident's entries: {show}"
    );
    for entry in [
        "\"record\":\"incident_opened\"",
        "\"record\":\"runbook_selected\"",
        "event authorization_decided",
        "\"type\":\"execute\"",
        "event action_finished",
        "\"record\":\"incident_resolved\"",
    ] {
        assert_eq!(
            lines_with(&show.stdout, entry).len(),
            1,
            "expected one `{entry}` entry: {show}"
        );
    }
    // Any entry's inclusion proof verifies against the tree head that `verify` prints.
    let verify = vigil(["ledger", "verify", "--db", db], dir.path());
    let head = verify
        .stdout
        .split("RFC 6962 tree head ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_hexdigit()).next())
        .expect("a tree head")
        .to_owned();
    for seq in ["0", "5"] {
        let proved = vigil(["ledger", "prove", "--db", db, seq], dir.path());
        proved.assert_success("ledger prove");
        let proof: serde_json::Value = serde_json::from_str(&proved.stdout).unwrap();
        assert_eq!(proof["tree_head"].as_str(), Some(head.as_str()), "{proved}");
        let decode = |value: &serde_json::Value| hex::decode(value.as_str().unwrap()).unwrap();
        let components: Vec<Vec<u8>> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(decode)
            .collect();
        let components: Vec<&[u8]> = components.iter().map(Vec::as_slice).collect();
        vigil_ledger::merkle::verify_inclusion(
            proof["seq"].as_u64().unwrap(),
            proof["tree_size"].as_u64().unwrap(),
            &decode(&proof["leaf_hash"]),
            &components,
            &decode(&proof["tree_head"]),
        )
        .unwrap();
    }
    // Exported with proofs, the ledger verifies offline, with the same tree head; an edited,
    // deleted or reordered line is found and named.
    let exported = dir.join("ledger.export");
    let exported_text = exported.to_str().unwrap();
    vigil(
        ["ledger", "export", "--db", db, "--out", exported_text],
        dir.path(),
    )
    .assert_success("ledger export");
    let offline = vigil(["ledger", "verify", "--export", exported_text], dir.path());
    offline.assert_success("ledger verify --export");
    assert!(offline.stdout.contains(&head), "{offline}");
    let original = std::fs::read_to_string(&exported).unwrap();
    let export_lines: Vec<&str> = original.lines().collect();
    let edited = export_lines[3].replacen("\"at_ms\":", "\"at_ms\":1", 1);
    let mut deleted = export_lines.clone();
    deleted.remove(2);
    let mut swapped = export_lines.clone();
    swapped.swap(2, 3);
    let mut changed = export_lines.clone();
    changed[3] = &edited;
    for (what, tampered, expected) in [
        ("edited", changed, "line 4: entry 3 was modified"),
        (
            "deleted",
            deleted,
            "line 3: entry 3 where entry 2 should be",
        ),
        (
            "swapped",
            swapped,
            "line 3: entry 3 where entry 2 should be",
        ),
    ] {
        std::fs::write(&exported, tampered.join("\n")).unwrap();
        let run = vigil(["ledger", "verify", "--export", exported_text], dir.path());
        assert_eq!(run.code(), 1, "{what}: {run}");
        assert!(run.stdout.contains(expected), "{what}: {run}");
    }

    let missing = vigil(["ledger", "prove", "--db", db, "999999"], dir.path());
    assert_eq!(missing.code(), 1, "{missing}");
    assert!(
        missing.stderr.contains("there is no entry 999999"),
        "{missing}"
    );

    // The verified run counts towards the runbook's trust: (1 + 1) / (1 + 2).
    let trust = vigil(["trust", "--db", db], dir.path());
    trust.assert_success("vigil trust");
    assert!(
        trust
            .stdout
            .lines()
            .any(|line| line.contains("block-runaway-key")
                && line.contains("67%  (1 verified, 0 failed)")),
        "{trust}"
    );
    let all = vigil(["ledger", "show", "--db", db], dir.path());
    all.assert_success("ledger show");
    assert!(
        all.stdout.lines().count() > lines.len(),
        "the whole ledger should hold more than the incident: {all}"
    );
}

#[test]
fn ledger_show_names_the_type_of_every_session_entry() {
    let run = runaway_demo();
    run.finished.assert_success("vigil demo");
    let dir = TempDir::new("runaway-show");
    let db = run.restore_ledger(&dir, "demo.db");
    let show = vigil(
        ["ledger", "show", "--db", db.to_str().expect("a UTF-8 path")],
        dir.path(),
    );
    show.assert_success("ledger show");
    let sessions = lines_with(&show.stdout, " session ");
    assert_eq!(sessions.len(), 2, "{show}");
    assert!(sessions[0].contains("session_started"), "{show}");
    assert!(sessions[1].contains("session_ended"), "{show}");
}

#[test]
fn demo_failed_fix_compensates_and_pages_exactly_once() {
    let run = run_demo("failed-fix");
    let out = &run.finished.stdout;
    run.finished
        .assert_success("vigil demo --scenario failed-fix");
    for step in ["NOT FIXED", "UNDOING", "PAGING", "PAGE SENT", "ESCALATED"] {
        assert_eq!(
            lines_with(out, step).len(),
            1,
            "expected exactly one {step} line: {}",
            run.finished
        );
    }
    assert!(
        out.contains("AUTHORIZED by policy compensate-own-block"),
        "the unblock must be authorized as a compensation: {}",
        run.finished
    );
    assert!(
        lines_with(out, "RESOLVED").is_empty(),
        "a fix that did not work must not resolve: {}",
        run.finished
    );
    assert!(out.contains("Pages at the sink: 1."), "{}", run.finished);
    // The story's order: the fix fails, is undone, then a human is paged.
    let position = |step: &str| out.find(step).unwrap_or_else(|| panic!("no {step}"));
    assert!(
        position("ACTED") < position("NOT FIXED")
            && position("NOT FIXED") < position("UNDOING")
            && position("UNDOING") < position("PAGING")
            && position("PAGING") < position("ESCALATED"),
        "steps out of order: {}",
        run.finished
    );
    let incident_id = run.incident_id();
    assert!(
        lines_with(out, "ESCALATED")[0].contains(&incident_id),
        "{}",
        run.finished
    );

    let dir = TempDir::new("failed-fix-ledger");
    let db = run.restore_ledger(&dir, "demo.db");
    assert_ledger_verifies_and_replays(&dir, db.to_str().expect("a UTF-8 path"), &incident_id);

    // The failed verification counts against the runbook's trust: (0 + 1) / (1 + 2).
    let trust = vigil(["trust", "--db", db.to_str().expect("UTF-8")], dir.path());
    trust.assert_success("vigil trust");
    assert!(
        trust
            .stdout
            .lines()
            .any(|line| line.contains("block-runaway-key")
                && line.contains("33%  (0 verified, 1 failed)")),
        "{trust}"
    );
}

/// `vigil demo --assistant`: the same story with the assistant on, played by the local fake
/// of the OpenAI API; it investigates beside the runbook, its answer is checked and
/// recorded, the outcome is the same, and the ledger replays with the fake gone.
#[test]
fn demo_with_the_assistant_investigates_beside_the_runbook_and_changes_nothing() {
    let dir = TempDir::new("demo-assistant");
    let finished = run_vigil(
        ["demo", "--assistant", "--db", "demo.db"],
        dir.path(),
        DEMO_LIMIT,
    );
    finished.assert_success("vigil demo --assistant");
    let out = &finished.stdout;
    assert!(
        out.contains("playing the investigator `good`"),
        "{finished}"
    );
    assert_eq!(lines_with(out, "RESOLVED").len(), 1, "{finished}");
    let checked = lines_with(out, "CHECKED");
    assert_eq!(checked.len(), 1, "{finished}");
    assert!(
        checked[0].contains("agrees with the diagnosis; 0 of 5 claims dropped"),
        "{finished}"
    );
    assert!(out.contains("Pages: 0."), "{finished}");
    let incident = incident_ids(&lines_with(out, "OPENED").join("\n"));
    assert_ledger_verifies_and_replays(&dir, "demo.db", &incident[0]);
}
