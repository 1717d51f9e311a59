//! The deploy artifacts of `deploy/` checked against the vigil binary: the Dockerfile's
//! image layout (`dockerfile.rs`), the Kubernetes manifests (`kubernetes.rs`), the
//! docker-compose file (`compose.rs`) and the systemd unit (`systemd.rs`).
//!
//! Every config they ship passes `vigil check` inside a copy of the filesystem its container
//! would see (the image's files, then the mounts: `image.rs`), with the environment its
//! container would get and dummies for the secrets; every probe and healthcheck names a
//! route a running vigil serves, on the port its config listens on (`routes.rs`); the
//! Kubernetes pod's config leads as a replica on PostgreSQL (`replica.rs`).

mod compose;
mod dockerfile;
mod image;
mod kubernetes;
mod replica;
mod routes;
mod systemd;

use std::path::PathBuf;

use serde_json::Value;

use crate::support::repo_root;

/// A file of `deploy/`.
fn deploy_path(relative: &str) -> PathBuf {
    repo_root().join("deploy").join(relative)
}

/// A file's text; panics naming it when it cannot be read.
fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// One YAML document as a JSON value.
fn yaml(text: &str, what: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|error| panic!("{what} is not YAML: {error}"))
}

/// Every document of a multi-document YAML stream (`---` between them), empty ones dropped.
fn yaml_documents(text: &str, what: &str) -> Vec<Value> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|error| panic!("{what} is not YAML: {error}"));
    documents
        .into_iter()
        .filter(|document| !document.is_null())
        .collect()
}

/// The value at a dotted path (`spec.template.spec`; a number indexes a list); panics naming
/// the path when it is missing.
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    let mut here = value;
    for key in path.split('.') {
        let next = match key.parse::<usize>() {
            Ok(index) => here.get(index),
            Err(_) => here.get(key),
        };
        here = next.unwrap_or_else(|| panic!("no `{path}` (stopped at `{key}`) in {value:#}"));
    }
    here
}

/// The string at a dotted path.
fn str_at<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("`{path}` is not a string in {value:#}"))
}

/// The string under `key` itself (a key with dots in it, such as a file name).
fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string `{key}` in {value:#}"))
}

/// The list at a dotted path.
fn list_at<'a>(value: &'a Value, path: &str) -> &'a Vec<Value> {
    at(value, path)
        .as_array()
        .unwrap_or_else(|| panic!("`{path}` is not a list in {value:#}"))
}

/// The port of a vigil config's `listen` (`HOST:PORT`).
fn listen_port(config: &Value) -> u16 {
    let listen = str_at(config, "listen");
    let (_, port) = listen
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("`listen: {listen}` has no port"));
    port.parse()
        .unwrap_or_else(|error| panic!("`listen: {listen}`: {error}"))
}

/// The workspace's version (`[workspace.package] version`), which image tags follow.
fn workspace_version() -> String {
    let manifest = read(&repo_root().join("Cargo.toml"));
    let package = manifest
        .split_once("[workspace.package]")
        .expect("Cargo.toml has [workspace.package]")
        .1;
    let line = package
        .lines()
        .find(|line| line.starts_with("version"))
        .expect("[workspace.package] has a version");
    line.split('"').nth(1).expect("a quoted version").to_owned()
}

/// The path and port of an `http://HOST:PORT/PATH` URL.
fn url_port_and_path(url: &str) -> (u16, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("`{url}` is not an http:// URL"));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let port = authority
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("`{url}` names no port"));
    (port, format!("/{path}"))
}

/// Whether a tool is on `PATH`.
fn on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join(tool))
        .find(|candidate| candidate.is_file())
}

/// A check that needs a tool this machine lacks: skipped with a message, or a failure under
/// CI (`CI` set) when CI installs that tool.
fn tool_missing(tool: &str, ci_installs_it: bool) {
    let message = format!("{tool} is not installed: skipped");
    assert!(
        !(ci_installs_it && std::env::var_os("CI").is_some()),
        "{message}, but CI must have it"
    );
    eprintln!("{message}");
}
