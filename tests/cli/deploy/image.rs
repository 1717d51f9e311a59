//! The filesystem a vigil container sees, laid out in a temporary folder: the files the
//! Dockerfile's runtime stage copies, then what a deployment mounts over them. A config is
//! checked there with `vigil check`, its absolute paths taken inside that folder, with only
//! the environment the deployment gives the container (and dummies for its secrets).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dockerfile::Dockerfile;
use super::{read, yaml};
use crate::support::{Finished, TempDir, VIGIL, finish, repo_root, strong_token, vigil_command};

/// A container's filesystem in a temporary folder.
pub(super) struct FakeRoot {
    dir: TempDir,
}

impl FakeRoot {
    /// The image's files: every `COPY` of the runtime stage (the built binary is this test
    /// build's), its `VOLUME`s and `WORKDIR`.
    pub(super) fn from_image(label: &str) -> FakeRoot {
        let root = FakeRoot {
            dir: TempDir::new(label),
        };
        let dockerfile = Dockerfile::load();
        let runtime = dockerfile.runtime();
        for copy in runtime.copies() {
            for source in &copy.sources {
                let target = root.path(&copy.target_of(source));
                std::fs::create_dir_all(target.parent().expect("a folder")).expect("mkdir");
                if copy.from_stage.is_some() {
                    std::os::unix::fs::symlink(VIGIL, &target).expect("linking the binary");
                } else {
                    copy_tree(&repo_root().join(source), &target);
                }
            }
        }
        for volume in runtime.all("VOLUME") {
            for path in super::dockerfile::exec_form(volume) {
                std::fs::create_dir_all(root.path(&path)).expect("mkdir");
            }
        }
        std::fs::create_dir_all(root.path(runtime.last("WORKDIR"))).expect("mkdir");
        root
    }

    /// Where an absolute path of the container is in the folder.
    pub(super) fn path(&self, container_path: &str) -> PathBuf {
        assert!(
            container_path.starts_with('/'),
            "`{container_path}` is not absolute"
        );
        self.dir
            .join("root")
            .join(container_path.trim_start_matches('/'))
    }

    /// Whether the container has this file or folder.
    pub(super) fn has(&self, container_path: &str) -> bool {
        self.path(container_path).exists()
    }

    /// Writes a file (a mounted ConfigMap key or Secret key) with the given mode.
    pub(super) fn write(&self, container_path: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.path(container_path);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&path, text).expect("writing a mounted file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// A file or folder of the host mounted at `container_path` (a bind mount).
    pub(super) fn bind(&self, host: &Path, container_path: &str) {
        let target = self.path(container_path);
        let _ = std::fs::remove_dir_all(&target);
        let _ = std::fs::remove_file(&target);
        std::fs::create_dir_all(target.parent().expect("a folder")).expect("mkdir");
        copy_tree(host, &target);
    }

    /// An empty folder mounted at `container_path` (an emptyDir, a new volume, a Secret).
    pub(super) fn empty_dir(&self, container_path: &str) {
        let target = self.path(container_path);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::create_dir_all(&target).expect("mkdir");
    }

    /// The config at `container_path`, read as the container would.
    pub(super) fn config(&self, container_path: &str) -> Value {
        let path = self.path(container_path);
        yaml(&read(&path), container_path)
    }

    /// `vigil check --config` on the config at `container_path`, with `env` as the whole
    /// environment (and `PATH`). Its absolute paths are taken inside this folder: the config
    /// is checked as JSON (which is YAML) beside the original.
    pub(super) fn check(&self, container_path: &str, env: &BTreeMap<String, String>) -> Finished {
        let rebased = self.checked(container_path);
        let config = self.rebase(&self.config(container_path));
        std::fs::write(&rebased, config.to_string()).expect("writing");
        let mut command = vigil_command(
            ["check".as_ref(), "--config".as_ref(), rebased.as_os_str()],
            self.dir.path(),
        );
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command.envs(env);
        finish(command, std::time::Duration::from_secs(120))
    }

    /// Where `check` writes the config it checks (its paths inside this folder), for `serve`.
    pub(super) fn checked(&self, container_path: &str) -> PathBuf {
        self.path(container_path).with_extension("checked.yaml")
    }

    /// Every absolute path in `value` taken inside this folder.
    fn rebase(&self, value: &Value) -> Value {
        match value {
            Value::String(text) if text.starts_with('/') => {
                Value::String(self.path(text).display().to_string())
            }
            Value::Array(items) => {
                Value::Array(items.iter().map(|item| self.rebase(item)).collect())
            }
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, field)| (key.clone(), self.rebase(field)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Copies a file, or a folder with everything in it.
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("listing") {
            let entry = entry.expect("an entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap_or_else(|error| {
            panic!("copying {} to {}: {error}", from.display(), to.display())
        });
    }
}

/// The environment variables a config reads its secrets from (`{ env: NAME }`), sorted.
pub(super) fn env_names(config: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending = vec![config];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(fields) => {
                if let (1, Some(Value::String(name))) = (fields.len(), fields.get("env")) {
                    names.push(name.clone());
                }
                pending.extend(fields.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    names.sort();
    names.dedup();
    names
}

/// A stand-in for the secret named `name`: a PostgreSQL URL for a database URL (`vigil
/// check` does not connect), else 64 hex digits (strong enough for every token check).
pub(super) fn dummy_secret(name: &str) -> String {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    if lower.contains("database_url") {
        "postgres://vigil:not-a-password@127.0.0.1:5432/vigil".to_owned()
    } else {
        strong_token(&format!("deploy test {name}"))
    }
}

/// The repository's `.dockerignore`, enough of it to say whether a path is left out.
pub(super) struct Dockerignore {
    patterns: Vec<String>,
}

impl Dockerignore {
    /// `.dockerignore` at the repository's root.
    pub(super) fn load() -> Dockerignore {
        let text = read(&repo_root().join(".dockerignore"));
        let patterns: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect();
        assert!(
            patterns.iter().all(|pattern| !pattern.starts_with('!')),
            "exceptions (`!`) are not read here"
        );
        Dockerignore { patterns }
    }

    /// Whether `path` (relative to the context), or a folder it is in, is left out.
    pub(super) fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        (1..=parts.len()).any(|length| {
            let prefix = &parts[..length];
            self.patterns.iter().any(|pattern| {
                let pattern: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
                glob_path(&pattern, prefix)
            })
        })
    }
}

/// A path's components against a pattern's (`**` is any number of them).
fn glob_path(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.split_first(), path.split_first()) {
        (None, None) => true,
        (Some((&"**", rest)), _) => {
            glob_path(rest, path)
                || path
                    .split_first()
                    .is_some_and(|(_, tail)| glob_path(pattern, tail))
        }
        (Some((first, rest)), Some((part, tail))) => {
            glob_name(first, part) && glob_path(rest, tail)
        }
        _ => false,
    }
}

/// One name against a pattern with `*` (any run of characters) and `?` (one).
fn glob_name(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    fn matches(pattern: &[char], name: &[char]) -> bool {
        match (pattern.split_first(), name.split_first()) {
            (None, None) => true,
            (Some(('*', rest)), _) => {
                matches(rest, name)
                    || name
                        .split_first()
                        .is_some_and(|(_, tail)| matches(pattern, tail))
            }
            (Some(('?', rest)), Some((_, tail))) => matches(rest, tail),
            (Some((want, rest)), Some((got, tail))) => want == got && matches(rest, tail),
            _ => false,
        }
    }
    matches(&pattern, &name)
}

#[test]
fn dockerignore_patterns_match_as_docker_reads_them() {
    let ignore = Dockerignore {
        patterns: vec!["target".into(), "**/*.db".into(), "fuzz/corpus".into()],
    };
    for (path, excluded) in [
        ("target", true),
        ("target/release/vigil", true),
        ("tests/golden/a.db", true),
        ("a.db", true),
        ("fuzz/corpus/x", true),
        ("fuzz/src/lib.rs", false),
        ("crates/vigil/src/target.rs", false),
        ("policies", false),
    ] {
        assert_eq!(ignore.excludes(path), excluded, "{path}");
    }
}
