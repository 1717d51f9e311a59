//! Secrets (bearer tokens, master keys) that never print, and where to read them from.

use std::fmt;
use std::path::PathBuf;

use crate::ConnectorError;

/// A secret string. `Debug` and `Display` print `<redacted>`; only [`Secret::expose`] reveals it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable, by name.
    Env(String),
    /// A file, whose trailing newlines are dropped.
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret. Errors name the variable or file, never the value.
    pub fn resolve(&self) -> Result<Secret, ConnectorError> {
        let (value, origin) = match self {
            Self::Env(name) => {
                let value = std::env::var(name).map_err(|error| match error {
                    std::env::VarError::NotPresent => {
                        ConnectorError::SecretEnvMissing { name: name.clone() }
                    }
                    std::env::VarError::NotUnicode(_) => {
                        ConnectorError::SecretEnvNotUnicode { name: name.clone() }
                    }
                })?;
                (value, format!("environment variable `{name}`"))
            }
            Self::File(path) => {
                refuse_exposed(path)?;
                let contents =
                    std::fs::read_to_string(path).map_err(|source| ConnectorError::SecretFile {
                        path: path.clone(),
                        source,
                    })?;
                // Editors and `echo` end files with a newline that is not part of the secret.
                let value = contents.trim_end_matches(['\n', '\r']).to_owned();
                (value, format!("file `{}`", path.display()))
            }
        };
        if value.is_empty() {
            return Err(ConnectorError::SecretEmpty { origin });
        }
        Ok(Secret(value))
    }
}

/// Refuses a secret file that every user of the machine can read (or write): a secret there
/// is no secret. Group access is allowed, for a service group.
fn refuse_exposed(path: &std::path::Path) -> Result<(), ConnectorError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let metadata = std::fs::metadata(path).map_err(|source| ConnectorError::SecretFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o006 != 0 {
            return Err(ConnectorError::SecretFileExposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn temp_file(contents: &[u8]) -> PathBuf {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vigil-secret-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let written = std::fs::write(&path, contents);
        assert!(written.is_ok(), "{written:?}");
        set_mode(&path, 0o600);
        path
    }

    fn set_mode(path: &std::path::Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        let set = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
        assert!(set.is_ok(), "{set:?}");
    }

    // `vigil check` passed a secret file every user could read; `serve` used it.
    #[test]
    fn a_secret_file_every_user_can_read_is_refused_naming_its_mode() {
        let path = temp_file(b"sk-from-file\n");
        set_mode(&path, 0o644);
        let refused = SecretSource::File(path.clone())
            .resolve()
            .err()
            .map(|error| error.to_string());
        assert_eq!(
            refused,
            Some(format!(
                "secret file `{}` is readable by every user (mode 644); make it private: chmod 600 (or 640 for a service group)",
                path.display()
            ))
        );
        set_mode(&path, 0o640);
        assert!(SecretSource::File(path.clone()).resolve().is_ok());
        let _removed = std::fs::remove_file(path);
    }

    #[test]
    fn a_secret_never_prints() {
        let secret = Secret::new("sk-very-secret");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert_eq!(secret.expose(), "sk-very-secret");
    }

    #[test]
    fn a_file_secret_loses_its_trailing_newline_only() {
        let path = temp_file(b" sk-from-file \r\n\n");
        let secret = SecretSource::File(path.clone()).resolve();
        assert_eq!(
            secret.as_ref().map(Secret::expose).ok(),
            Some(" sk-from-file ")
        );
        let _removed = std::fs::remove_file(path);
    }

    #[test]
    fn errors_name_the_source_never_the_value() {
        let path = temp_file(b"\n");
        let empty = SecretSource::File(path.clone())
            .resolve()
            .err()
            .map(|error| error.to_string());
        assert_eq!(
            empty,
            Some(format!(
                "the secret from file `{}` is empty",
                path.display()
            ))
        );
        let _removed = std::fs::remove_file(&path);
        let missing = SecretSource::File(path.clone())
            .resolve()
            .err()
            .map(|error| error.to_string());
        assert_eq!(
            missing,
            Some(format!("cannot read secret file `{}`", path.display()))
        );

        let unset = SecretSource::Env("VIGIL_TEST_SURELY_UNSET_5F3A".to_owned()).resolve();
        let message = unset.err().map(|error| error.to_string());
        assert_eq!(
            message.as_deref(),
            Some("environment variable `VIGIL_TEST_SURELY_UNSET_5F3A` is not set")
        );
    }

    #[test]
    fn an_environment_secret_resolves() {
        // Cargo sets this variable for the test process; tests cannot set variables safely.
        let resolved = SecretSource::Env("CARGO_PKG_NAME".to_owned()).resolve();
        assert_eq!(
            resolved.as_ref().map(Secret::expose).ok(),
            Some(env!("CARGO_PKG_NAME"))
        );
    }

    #[test]
    fn sources_deserialize_from_config() {
        let source: Result<SecretSource, _> =
            serde_json::from_str(r#"{"env": "LITELLM_MASTER_KEY"}"#);
        assert_eq!(
            source.ok(),
            Some(SecretSource::Env("LITELLM_MASTER_KEY".to_owned()))
        );
    }
}
