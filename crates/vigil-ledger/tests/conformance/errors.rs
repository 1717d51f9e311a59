//! Backend-specific error cases: errors say which ledger failed, and never show a password.

use std::error::Error;

use vigil_ledger::{Ledger, LedgerError, LedgerLocation};

use crate::fixture::{Fixture, TestResult};

/// The password planted in the URLs below.
const PASSWORD: &str = "s3cret-pw";

/// Everything an error can show: its `Debug` and the `Display` of every error in its chain.
fn everything_shown(error: &LedgerError) -> String {
    let mut shown = format!("{error:?}");
    let mut current: Option<&dyn Error> = Some(error);
    while let Some(error) = current {
        shown.push_str(&format!("\n{error}"));
        current = error.source();
    }
    shown
}

/// Opens `location`, which must fail, and returns the error after checking it hides the password.
async fn open_failure(location: &LedgerLocation) -> TestResult<LedgerError> {
    let error = Ledger::open(location)
        .await
        .err()
        .ok_or("opening succeeded")?;
    let shown = everything_shown(&error);
    assert!(!shown.contains(PASSWORD), "the password leaked: {shown}");
    Ok(error)
}

#[tokio::test]
async fn sqlite_open_failure_names_the_file() -> TestResult {
    let Some(fixture) = Fixture::sqlite().await? else {
        return Ok(());
    };
    let LedgerLocation::Sqlite { path } = fixture.new_location() else {
        return Err("a sqlite fixture made a location that is not sqlite".into());
    };
    let path = path
        .with_file_name("no-such-directory")
        .join("ledger.sqlite");
    let error = open_failure(&LedgerLocation::Sqlite { path: path.clone() }).await?;
    assert!(matches!(error, LedgerError::Connect { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn postgres_errors_hide_the_password() -> TestResult {
    // A URL that fails to parse: no server is needed.
    let url = format!("postgres://vigil:{PASSWORD}@127.0.0.1:notaport/vigil?password={PASSWORD}");
    let location = LedgerLocation::Postgres {
        url,
        schema: Some("ledger".to_owned()),
    };
    let error = open_failure(&location).await?;
    assert!(matches!(error, LedgerError::Connect { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("postgres://127.0.0.1:notaport/vigil schema ledger"),
        "{error}"
    );

    // A schema name that could inject SQL is refused before connecting.
    let url = format!("postgres://vigil:{PASSWORD}@127.0.0.1:1/vigil");
    let location = LedgerLocation::Postgres {
        url,
        schema: Some("x\"; DROP SCHEMA public; --".to_owned()),
    };
    let error = open_failure(&location).await?;
    assert!(
        matches!(error, LedgerError::InvalidSchema { .. }),
        "{error:?}"
    );

    // A server that refuses the connection (the database does not exist).
    let Some(fixture) = Fixture::postgres().await? else {
        return Ok(());
    };
    let test_url = fixture
        .postgres_url()
        .ok_or("a postgres fixture without a url")?;
    let (scheme, rest) = test_url
        .split_once("://")
        .ok_or("the test url has no scheme")?;
    let (user_info, host_and_path) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let user = user_info.split(':').next().unwrap_or("postgres");
    let host = host_and_path.split(['/', '?']).next().unwrap_or_default();
    let url = format!("{scheme}://{user}:{PASSWORD}@{host}/vigil_no_such_database");
    let location = LedgerLocation::Postgres {
        url,
        schema: Some("ledger".to_owned()),
    };
    let error = open_failure(&location).await?;
    assert!(matches!(error, LedgerError::Connect { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/vigil_no_such_database"),
        "{error}"
    );
    Ok(())
}
