//! The ledger commands on PostgreSQL: a game day written to a schema verifies with the same
//! tree head as on SQLite and replays; editing, deleting or reordering a row with SQL makes
//! `vigil ledger verify --db URL --schema S` fail and name the entry.
//!
//! Needs `VIGIL_TEST_DATABASE_URL`; without it the test says it skipped, except under `CI`,
//! where it fails. Each case uses a schema of its own, dropped at the end.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection as _, Executor as _, PgConnection};

use crate::support::{Finished, TempDir, repo_root, simulate_scenario, vigil};

const DATABASE_URL_VARIABLE: &str = "VIGIL_TEST_DATABASE_URL";

/// The test database's URL, or `None` (after saying so) when the test must skip.
fn database_url() -> Option<String> {
    match std::env::var(DATABASE_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{DATABASE_URL_VARIABLE} is not set but CI is: the PostgreSQL CLI tests must run"
            );
            eprintln!("skipping the PostgreSQL CLI tests: {DATABASE_URL_VARIABLE} is not set");
            None
        }
    }
}

/// A schema name no other test or run uses.
fn unique_schema(label: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "vigil_cli_{label}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The schemas a test made, dropped when it ends, failed or not.
struct Schemas {
    url: String,
    names: Vec<String>,
}

impl Schemas {
    /// A new schema name, dropped with the others.
    fn new_schema(&mut self, label: &str) -> String {
        let name = unique_schema(label);
        self.names.push(name.clone());
        name
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let (url, names) = (self.url.clone(), std::mem::take(&mut self.names));
        // A runtime of its own, on a thread of its own: this may run inside the test's.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&url).await.expect("connecting");
                for name in names {
                    let _ = connection
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                        )))
                        .await;
                }
            });
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop the test's PostgreSQL schemas");
        }
    }
}

/// Runs `statements` against `schema`.
async fn execute(url: &str, schema: &str, statements: &[&str]) {
    let mut connection = PgConnection::connect(url).await.expect("connecting");
    connection
        .execute(sqlx::AssertSqlSafe(format!(
            "SET search_path TO \"{schema}\""
        )))
        .await
        .expect("setting the search path");
    for statement in statements {
        connection
            .execute(sqlx::AssertSqlSafe((*statement).to_owned()))
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
    connection.close().await.expect("closing");
}

/// The first entry at or after `from` whose payload contains `text`.
async fn first_seq_naming(url: &str, schema: &str, text: &str, from: i64) -> i64 {
    let mut connection = PgConnection::connect(url).await.expect("connecting");
    connection
        .execute(sqlx::AssertSqlSafe(format!(
            "SET search_path TO \"{schema}\""
        )))
        .await
        .expect("setting the search path");
    let seq: Option<i64> = sqlx::query_scalar(
        "SELECT min(seq) FROM ledger_entries WHERE seq >= $1 AND payload LIKE '%' || $2 || '%'",
    )
    .bind(from)
    .bind(text)
    .fetch_one(&mut connection)
    .await
    .expect("finding an entry");
    connection.close().await.expect("closing");
    seq.unwrap_or_else(|| panic!("no entry from {from} on names {text}"))
}

/// Writes the runaway-key game day's ledger to `schema`.
fn simulate_into(url: &str, schema: &str) {
    let scenario = repo_root().join("tests/scenarios/runaway-key.yaml");
    vigil(
        [
            "simulate",
            scenario.to_str().expect("UTF-8"),
            "--quiet",
            "--ledger",
            url,
            "--schema",
            schema,
        ],
        &repo_root(),
    )
    .assert_success("simulate --ledger postgres");
}

fn verify(url: &str, schema: &str) -> Finished {
    vigil(
        ["ledger", "verify", "--db", url, "--schema", schema],
        &repo_root(),
    )
}

/// The RFC 6962 tree head a verify printed.
fn tree_head(run: &Finished) -> String {
    run.stdout
        .split("RFC 6962 tree head ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_hexdigit()).next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no tree head in\n{run}"))
}

#[tokio::test]
async fn a_postgres_ledger_verifies_like_sqlite_and_every_edit_delete_and_reorder_is_named() {
    let Some(url) = database_url() else {
        return;
    };
    let mut schemas = Schemas {
        url: url.clone(),
        names: Vec::new(),
    };

    // The same game day on both backends: the same entries, so the same tree head.
    let dir = TempDir::new("postgres-cli");
    let db = dir.join("runaway.db");
    simulate_scenario("runaway-key", &db);
    let on_sqlite = vigil(
        ["ledger", "verify", "--db", db.to_str().expect("UTF-8")],
        &repo_root(),
    );
    on_sqlite.assert_success("verify sqlite");

    let clean = schemas.new_schema("clean");
    simulate_into(&url, &clean);
    let on_postgres = verify(&url, &clean);
    on_postgres.assert_success("verify postgres");
    assert_eq!(tree_head(&on_postgres), tree_head(&on_sqlite));
    assert!(
        !on_postgres.stdout.contains("postgres@"),
        "credentials must not be printed: {on_postgres}"
    );
    let replay = vigil(
        ["replay", "--db", &url, "--schema", &clean, "--all"],
        &repo_root(),
    );
    replay.assert_success("replay postgres");
    assert!(
        replay.stdout.contains("result: every command matches"),
        "{replay}"
    );

    // Each tampering in a fresh copy of the ledger, and the entry verify must name. The
    // edit changes the key in the first entry from 5 on that names it (the game day's
    // ledger is the same in every copy; its scrapes that issued no command are batched, in
    // base64, and name no key).
    let edited = first_seq_naming(&url, &clean, "k-batch", 5).await;
    let edit = format!(
        "UPDATE ledger_entries SET payload = replace(payload, 'k-batch', 'k-chat') WHERE seq = {edited}"
    );
    let edit_named = format!("entry {edited} was modified");
    let tamperings: [(&str, &[&str], &str); 3] = [
        ("edit", &[edit.as_str()], edit_named.as_str()),
        (
            "delete",
            &["DELETE FROM ledger_entries WHERE seq = 12"],
            "expected seq 12, found seq 13",
        ),
        (
            "reorder",
            &[
                "UPDATE ledger_entries SET seq = -1 WHERE seq = 20",
                "UPDATE ledger_entries SET seq = 20 WHERE seq = 21",
                "UPDATE ledger_entries SET seq = 21 WHERE seq = -1",
            ],
            "BROKEN at entry 20",
        ),
    ];
    for (label, statements, named) in tamperings {
        let schema = schemas.new_schema(label);
        simulate_into(&url, &schema);
        verify(&url, &schema).assert_success("verify before tampering");
        execute(&url, &schema, statements).await;
        let after = verify(&url, &schema);
        assert_eq!(after.code(), 1, "{label}: {after}");
        assert!(
            after.stdout.contains(named),
            "{label}: expected `{named}` in\n{after}"
        );
    }

    // A schema that holds no ledger is an error, not a new empty ledger.
    let missing = verify(&url, "vigil_cli_no_such_schema");
    assert_ne!(missing.code(), 0, "{missing}");
    assert!(missing.stderr.contains("no ledger at"), "{missing}");
}
