//! Where a ledger lives, and how to name that place in logs without leaking credentials.

use std::fmt;
use std::path::PathBuf;

use crate::LedgerError;

/// Where a ledger is stored.
#[derive(Clone, PartialEq, Eq)]
pub enum LedgerLocation {
    /// A SQLite database file, created if missing (its directory must exist).
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// A `postgres://` connection URL; it may carry credentials, which are never shown.
        url: String,
        /// The schema holding the ledger's tables, created if missing; `None` uses the
        /// server's default `search_path`. Must match `[A-Za-z_][A-Za-z0-9_]*`.
        schema: Option<String>,
    },
}

impl LedgerLocation {
    /// A description safe to log: the SQLite path, or the PostgreSQL URL without
    /// user, password, query and fragment, followed by the schema.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            LedgerLocation::Sqlite { path } => format!("sqlite:{}", path.display()),
            LedgerLocation::Postgres { url, schema: None } => redact_url(url),
            LedgerLocation::Postgres {
                url,
                schema: Some(schema),
            } => {
                format!("{} schema {schema}", redact_url(url))
            }
        }
    }
}

// Debug is written by hand so that `{:?}` never prints a PostgreSQL password.
impl fmt::Debug for LedgerLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerLocation::Sqlite { path } => formatter
                .debug_struct("Sqlite")
                .field("path", path)
                .finish(),
            LedgerLocation::Postgres { url, schema } => formatter
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .field("schema", schema)
                .finish(),
        }
    }
}

impl fmt::Display for LedgerLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.describe())
    }
}

/// `url` without anything that may be a secret: the user info (everything up to the last `@`),
/// the query (`?password=...`, `?sslpassword=...`) and the fragment.
///
/// Cutting at the *last* `@` keeps a password that contains an unescaped `@`, `/` or `?`
/// out of the result too; a string that is not a URL is not shown at all.
fn redact_url(url: &str) -> String {
    let Some((scheme, after_scheme)) = url.split_once("://") else {
        return "<postgresql connection string hidden>".to_owned();
    };
    let after_user_info = after_scheme
        .rsplit_once('@')
        .map_or(after_scheme, |(_, host_and_path)| host_and_path);
    let host_and_path = after_user_info.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host_and_path}")
}

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`); longer ones are truncated.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// `schema` as a double-quoted SQL identifier, after checking it is a plain identifier.
///
/// # Errors
///
/// [`LedgerError::InvalidSchema`] unless `schema` matches `[A-Za-z_][A-Za-z0-9_]*` and has
/// at most 63 bytes.
pub(crate) fn quoted_schema(schema: &str) -> Result<String, LedgerError> {
    let mut characters = schema.chars();
    let starts_well = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_');
    let continues_well = characters.all(|rest| rest.is_ascii_alphanumeric() || rest == '_');
    if !starts_well || !continues_well || schema.len() > MAX_IDENTIFIER_BYTES {
        return Err(LedgerError::InvalidSchema {
            schema: schema.to_owned(),
        });
    }
    // The check above leaves no `"` to escape; quoting keeps the name's case.
    Ok(format!("\"{schema}\""))
}

#[cfg(test)]
mod tests {
    use super::{LedgerLocation, quoted_schema, redact_url};

    #[test]
    fn urls_lose_their_credentials() {
        let cases: &[(&str, &str)] = &[
            ("postgres://localhost/db", "postgres://localhost/db"),
            ("postgres://user@host:5432/db", "postgres://host:5432/db"),
            (
                "postgres://user:s3cret@host:5432/db",
                "postgres://host:5432/db",
            ),
            ("postgresql://user:s3c@ret@host/db", "postgresql://host/db"),
            ("postgres://user:s3c/ret@host/db", "postgres://host/db"),
            ("postgres://user:s3c?ret@host/db", "postgres://host/db"),
            (
                "postgres://host/db?password=s3cret&sslmode=require",
                "postgres://host/db",
            ),
            ("postgres://host/db#s3cret", "postgres://host/db"),
            (
                "host=localhost password=s3cret",
                "<postgresql connection string hidden>",
            ),
            ("", "<postgresql connection string hidden>"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_url(url), *expected, "redacting {url}");
        }
    }

    #[test]
    fn descriptions_and_debug_output_hide_the_password() {
        let location = LedgerLocation::Postgres {
            url: "postgres://vigil:s3cret@db.internal:5432/vigil?sslpassword=s3cret".to_owned(),
            schema: Some("ledger".to_owned()),
        };
        assert_eq!(
            location.describe(),
            "postgres://db.internal:5432/vigil schema ledger"
        );
        assert_eq!(location.to_string(), location.describe());
        let debug = format!("{location:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("db.internal"), "{debug}");
    }

    #[test]
    fn schema_names_must_be_plain_identifiers() {
        let accepted = ["ledger", "_x", "Vigil_2", &"a".repeat(63)];
        for schema in accepted {
            assert_eq!(
                quoted_schema(schema).ok(),
                Some(format!("\"{schema}\"")),
                "{schema}"
            );
        }
        let long = "a".repeat(64);
        let rejected = [
            "",
            "2fast",
            "has-dash",
            "has space",
            "quo\"te",
            "semi;colon",
            "é",
            &long,
        ];
        for schema in rejected {
            assert!(
                quoted_schema(schema).is_err(),
                "{schema} should be rejected"
            );
        }
    }
}
