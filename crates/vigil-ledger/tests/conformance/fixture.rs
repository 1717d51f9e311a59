//! Fresh ledger locations per test (a temporary SQLite directory or PostgreSQL schemas, removed
//! afterwards) and raw SQL access to them for tampering.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};
use vigil_ledger::LedgerLocation;

/// What every test returns: `Err` fails the test with the error's message.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The variable naming the PostgreSQL database the tests may create schemas in.
const DATABASE_URL_VARIABLE: &str = "VIGIL_TEST_DATABASE_URL";

/// Makes every name this process creates unique, with the pid and the time.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A name unique across tests, test processes and runs.
#[allow(
    clippy::disallowed_types,
    reason = "the wall clock only tells runs apart (PostgreSQL schemas outlive a crashed run); it is not time the ledger keeps"
)]
fn unique_name(prefix: &str) -> String {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since_epoch| since_epoch.as_nanos());
    format!("{prefix}_{}_{id}_{nanos}", std::process::id())
}

/// Where one test's ledgers go; everything it created is removed when it is dropped, even
/// when the test panics.
pub struct Fixture {
    backend: FixtureBackend,
}

/// The database behind a fixture.
enum FixtureBackend {
    /// SQLite files in a temporary directory.
    Sqlite { dir: PathBuf },
    /// Schemas in a PostgreSQL database, dropped at the end.
    Postgres {
        url: String,
        schemas: Mutex<Vec<String>>,
    },
}

impl Fixture {
    /// A fixture making SQLite ledgers in a new temporary directory.
    pub async fn sqlite() -> TestResult<Option<Fixture>> {
        let dir = std::env::temp_dir().join(unique_name("vigil-ledger-test"));
        std::fs::create_dir_all(&dir)?;
        Ok(Some(Fixture {
            backend: FixtureBackend::Sqlite { dir },
        }))
    }

    /// A fixture making PostgreSQL ledgers in fresh schemas of `VIGIL_TEST_DATABASE_URL`.
    ///
    /// `None` (the test passes, saying so on stderr) when the variable is unset, except in CI,
    /// where PostgreSQL must be tested and the test fails.
    pub async fn postgres() -> TestResult<Option<Fixture>> {
        let url = std::env::var(DATABASE_URL_VARIABLE).unwrap_or_default();
        if url.is_empty() {
            if std::env::var_os("CI").is_some() {
                return Err(format!(
                    "{DATABASE_URL_VARIABLE} is not set but CI is: the PostgreSQL conformance \
                     suite must run in CI (e.g. {DATABASE_URL_VARIABLE}=postgres://postgres@127.0.0.1:5432/test)"
                )
                .into());
            }
            eprintln!("skipping PostgreSQL conformance: {DATABASE_URL_VARIABLE} is not set");
            return Ok(None);
        }
        Ok(Some(Fixture {
            backend: FixtureBackend::Postgres {
                url,
                schemas: Mutex::new(Vec::new()),
            },
        }))
    }

    /// The URL of the PostgreSQL test database, for backend-specific tests.
    pub fn postgres_url(&self) -> Option<&str> {
        match &self.backend {
            FixtureBackend::Sqlite { .. } => None,
            FixtureBackend::Postgres { url, .. } => Some(url),
        }
    }

    /// A location no ledger uses yet.
    pub fn new_location(&self) -> LedgerLocation {
        match &self.backend {
            FixtureBackend::Sqlite { dir } => LedgerLocation::Sqlite {
                path: dir.join(format!("{}.sqlite", unique_name("ledger"))),
            },
            FixtureBackend::Postgres { url, schemas } => {
                let schema = unique_name("vigil_test");
                if let Ok(mut schemas) = schemas.lock() {
                    schemas.push(schema.clone());
                }
                LedgerLocation::Postgres {
                    url: url.clone(),
                    schema: Some(schema),
                }
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        match &self.backend {
            FixtureBackend::Sqlite { dir } => {
                if let Err(error) = std::fs::remove_dir_all(dir) {
                    eprintln!("cannot remove test directory {}: {error}", dir.display());
                }
            }
            FixtureBackend::Postgres { url, schemas } => {
                let schemas = schemas
                    .lock()
                    .map(|schemas| schemas.clone())
                    .unwrap_or_default();
                // Drop cannot await, and blocking the test's runtime on its own task would
                // deadlock: drop the schemas from a thread with a runtime of its own.
                let url = url.clone();
                let dropped = std::thread::spawn(move || drop_schemas(&url, &schemas)).join();
                if dropped.is_err() {
                    eprintln!("dropping the test schemas panicked");
                }
            }
        }
    }
}

/// Drops `schemas` from the database at `url`, reporting failures on stderr.
fn drop_schemas(url: &str, schemas: &[String]) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return eprintln!("cannot start a runtime to drop test schemas: {error}"),
    };
    let outcome: TestResult = runtime.block_on(async {
        let mut connection = PgConnection::connect(url).await?;
        // A ledger left mid-transaction by a failed test must not hang the cleanup.
        connection.execute("SET lock_timeout = '10s'").await?;
        for schema in schemas {
            let statement = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            connection.execute(AssertSqlSafe(statement)).await?;
        }
        connection.close().await?;
        Ok(())
    });
    if let Err(error) = outcome {
        eprintln!("cannot drop test schemas {schemas:?}: {error}");
    }
}

/// A value bound to a raw SQL statement.
#[derive(Clone, Debug)]
pub enum Bind {
    /// A BIGINT / INTEGER.
    Int(i64),
    /// A TEXT.
    Text(String),
    /// A BYTEA / BLOB.
    Bytes(Vec<u8>),
}

/// Binds `$binds` to `$query` in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Int(value) => query.bind(*value),
                Bind::Text(value) => query.bind(value.clone()),
                Bind::Bytes(value) => query.bind(value.clone()),
            };
        }
        query
    }};
}

/// Runs `sql` with `binds` on a connection of its own to the ledger at `location`, as a
/// tamperer would, and returns the number of rows it changed.
pub async fn execute(
    location: &LedgerLocation,
    sql: &'static str,
    binds: &[Bind],
) -> TestResult<u64> {
    let rows_affected = match location {
        LedgerLocation::Sqlite { path } => {
            let mut connection = sqlite_connection(path).await?;
            let done = bind_all!(sqlx::query(sql), binds)
                .execute(&mut connection)
                .await?;
            connection.close().await?;
            done.rows_affected()
        }
        LedgerLocation::Postgres { url, schema } => {
            let mut connection = postgres_connection(url, schema.as_deref()).await?;
            let done = bind_all!(sqlx::query(sql), binds)
                .execute(&mut connection)
                .await?;
            connection.close().await?;
            done.rows_affected()
        }
    };
    Ok(rows_affected)
}

/// The single integer that `sql` selects from the ledger at `location`.
pub async fn query_i64(location: &LedgerLocation, sql: &'static str) -> TestResult<i64> {
    let value = match location {
        LedgerLocation::Sqlite { path } => {
            let mut connection = sqlite_connection(path).await?;
            let value = sqlx::query_scalar(sql).fetch_one(&mut connection).await?;
            connection.close().await?;
            value
        }
        LedgerLocation::Postgres { url, schema } => {
            let mut connection = postgres_connection(url, schema.as_deref()).await?;
            let value = sqlx::query_scalar(sql).fetch_one(&mut connection).await?;
            connection.close().await?;
            value
        }
    };
    Ok(value)
}

/// A connection to an existing SQLite ledger file.
async fn sqlite_connection(path: &std::path::Path) -> TestResult<SqliteConnection> {
    Ok(SqliteConnectOptions::new().filename(path).connect().await?)
}

/// A connection to the PostgreSQL ledger in `schema`.
async fn postgres_connection(url: &str, schema: Option<&str>) -> TestResult<PgConnection> {
    let mut connection = PgConnection::connect(url).await?;
    if let Some(schema) = schema {
        // Test schemas are generated plain identifiers.
        let statement = format!("SET search_path TO \"{schema}\"");
        connection.execute(AssertSqlSafe(statement)).await?;
    }
    Ok(connection)
}
