//! Reading and rewriting a SQLite ledger's rows directly (as an attacker with write access
//! would), and the ledger commands' refusal of a ledger that does not exist.

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, SqliteConnection};

use crate::support::{TempDir, vigil};

/// One row of `ledger_entries`, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub incident_id: Option<String>,
    pub payload: String,
    pub leaf_hash: Vec<u8>,
    pub chain_hash: Vec<u8>,
}

impl Row {
    /// The payload as JSON.
    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|error| panic!("entry {} is not JSON: {error}", self.seq))
    }

    /// The leaf hash of this row's columns, by vigil-ledger's published definition.
    pub fn computed_leaf_hash(&self) -> [u8; 32] {
        let bytes = vigil_ledger::hash::entry_bytes(
            u64::try_from(self.seq).expect("a non-negative seq"),
            self.at_ms,
            &self.kind,
            self.incident_id.as_deref(),
            &self.payload,
        );
        vigil_ledger::hash::leaf_hash(bytes.as_bytes())
    }
}

/// An existing SQLite database, opened for reading and writing; never creates one.
pub async fn connect(db: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(false)
        .connect()
        .await
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", db.display()))
}

type RawRow = (i64, i64, String, Option<String>, String, Vec<u8>, Vec<u8>);

/// Every row of `ledger_entries`, by seq.
pub async fn read_rows(db: &Path) -> Vec<Row> {
    let mut connection = connect(db).await;
    let rows: Vec<RawRow> = sqlx::query_as(
        "SELECT seq, at_ms, kind, incident_id, payload, leaf_hash, chain_hash \
         FROM ledger_entries ORDER BY seq",
    )
    .fetch_all(&mut connection)
    .await
    .expect("reading ledger_entries");
    connection.close().await.expect("closing the database");
    rows.into_iter()
        .map(
            |(seq, at_ms, kind, incident_id, payload, leaf_hash, chain_hash)| Row {
                seq,
                at_ms,
                kind,
                incident_id,
                payload,
                leaf_hash,
                chain_hash,
            },
        )
        .collect()
}

/// Writes back the payload and hashes of `rows`, in one transaction.
pub async fn rewrite_rows(db: &Path, rows: &[Row]) {
    let mut connection = connect(db).await;
    let mut transaction = connection.begin().await.expect("a transaction");
    for row in rows {
        let updated = sqlx::query(
            "UPDATE ledger_entries SET payload = ?, leaf_hash = ?, chain_hash = ? WHERE seq = ?",
        )
        .bind(&row.payload)
        .bind(&row.leaf_hash)
        .bind(&row.chain_hash)
        .bind(row.seq)
        .execute(&mut *transaction)
        .await
        .expect("updating a row");
        assert_eq!(updated.rows_affected(), 1, "no row with seq {}", row.seq);
    }
    transaction.commit().await.expect("committing");
    connection.close().await.expect("closing the database");
}

/// The `session` entries' payloads, by seq.
pub async fn session_payloads(db: &Path) -> Vec<serde_json::Value> {
    read_rows(db)
        .await
        .iter()
        .filter(|row| row.kind == "session")
        .map(Row::payload_json)
        .collect()
}

#[test]
fn verify_refuses_a_missing_ledger() {
    // Regression guard: opening a SQLite path creates the file, so a typo in `--db` would
    // "verify" a new empty ledger and report success.
    let dir = TempDir::new("missing-ledger");
    let db = dir.join("missing.db");
    let shown = db.display().to_string();
    let commands: [&[&str]; 3] = [
        &["ledger", "verify", "--db", &shown],
        &["ledger", "show", "--db", &shown],
        &["replay", "--db", &shown, "--incident", "inc-000000000000"],
    ];
    for args in commands {
        let run = vigil(args, dir.path());
        assert_ne!(
            run.code(),
            0,
            "`vigil {}` accepted a missing ledger: {run}",
            args.join(" ")
        );
        assert!(
            run.stderr
                .contains(&format!("no ledger at `sqlite:{shown}`")),
            "`vigil {}` does not name the missing path: {run}",
            args.join(" ")
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listing the folder")
            .map(|entry| entry.expect("an entry").file_name())
            .collect();
        assert!(
            left.is_empty(),
            "`vigil {}` created {left:?}",
            args.join(" ")
        );
    }
}

/// The number of rows of `ledger_entries`, from a synchronous test.
pub fn read_rows_blocking(db: &Path) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(read_rows(db)).len()
}

/// Runs one SQL statement against an existing SQLite ledger, from a synchronous test.
pub fn execute_blocking(db: &Path, statement: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut connection = connect(db).await;
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    });
}
