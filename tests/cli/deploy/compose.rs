//! `deploy/compose/docker-compose.yaml`: PostgreSQL, the LiteLLM version vigil is tested
//! against, and two vigil replicas of the image, read and checked: each replica non-root on
//! a read-only root with its state on a volume, its published and advertised ports the
//! config's `listen`, its healthcheck on a route vigil serves (`routes.rs`), and the config
//! it mounts passing `vigil check` with the environment compose gives it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::dockerfile::{Dockerfile, config_argument};
use super::image::{FakeRoot, dummy_secret};
use super::{
    at, deploy_path, listen_port, on_path, read, str_at, tool_missing, url_port_and_path,
    workspace_version, yaml,
};
use crate::support::{finish, repo_root};

/// The compose file.
fn compose() -> Value {
    yaml(
        &read(&deploy_path("compose/docker-compose.yaml")),
        "docker-compose.yaml",
    )
}

/// The vigil services (those that run the vigil image), by name.
fn vigil_services(compose: &Value) -> Vec<(&String, &Value)> {
    at(compose, "services")
        .as_object()
        .expect("services is a map")
        .iter()
        .filter(|(_, service)| {
            service
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|image| image.starts_with("vigil:"))
        })
        .collect()
}

/// A list of strings.
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not a list"))
        .iter()
        .map(|item| item.as_str().expect("a string").to_owned())
        .collect()
}

/// `${NAME}`, `${NAME:?message}` and `${NAME:-default}` replaced as compose does, from `vars`.
fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .unwrap_or_else(|| panic!("unclosed ${{ in `{text}`"));
        let expression = &rest[start + 2..start + end];
        let name = expression
            .split([':', '-', '?'])
            .next()
            .expect("a variable name");
        let default = expression.split_once(":-").map(|(_, default)| default);
        match (vars.get(name), default) {
            (Some(value), _) => out.push_str(value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => panic!("`{text}` needs {name}, which the test does not set"),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// The HTTP paths the vigil services' healthchecks ask for, with what asks.
pub(super) fn probe_paths() -> Vec<(String, String)> {
    let compose = compose();
    vigil_services(&compose)
        .into_iter()
        .map(|(name, service)| {
            let url = healthcheck_url(service);
            (
                format!("compose {name} healthcheck"),
                url_port_and_path(&url).1,
            )
        })
        .collect()
}

/// The URL a vigil service's healthcheck fetches (`vigil metrics parse URL`).
fn healthcheck_url(service: &Value) -> String {
    let test = strings(at(service, "healthcheck.test"));
    assert_eq!(test.first().map(String::as_str), Some("CMD"), "{test:?}");
    test.into_iter()
        .find(|word| word.starts_with("http://"))
        .expect("the healthcheck fetches a URL")
}

#[test]
fn compose_runs_postgres_litellm_and_two_hardened_vigil_replicas() {
    let compose = compose();
    let dockerfile = Dockerfile::load();
    let runtime = dockerfile.runtime();
    let services = at(&compose, "services");

    // LiteLLM is the version the integration tests run (.ci/setup-litellm).
    let setup = read(&repo_root().join(".ci/setup-litellm"));
    let version = setup
        .lines()
        .find_map(|line| line.strip_prefix("LITELLM_REQUIREMENT='litellm[proxy]=="))
        .and_then(|rest| rest.split('\'').next())
        .expect("setup-litellm pins a version");
    let litellm_image = str_at(services, "litellm.image");
    assert!(
        litellm_image.starts_with("ghcr.io/berriai/litellm:") && litellm_image.ends_with(version),
        "LiteLLM `{litellm_image}` is the tested {version}"
    );
    assert!(str_at(services, "postgres.image").contains("postgres:"));
    for name in ["postgres", "litellm"] {
        assert!(
            services
                .pointer(&format!("/{name}/healthcheck/test"))
                .is_some()
        );
    }

    let replicas = vigil_services(&compose);
    assert!(replicas.len() >= 2, "two vigil replicas");
    let config = yaml(
        &read(&deploy_path("compose/vigil.yaml")),
        "compose/vigil.yaml",
    );
    let port = listen_port(&config);
    assert!(
        config.get("replication").is_some(),
        "the replicas share a leader"
    );
    let entrypoint = runtime.exec_form("ENTRYPOINT");
    let uid = runtime.last("USER");
    let image_config = config_argument(&runtime.exec_form("CMD"));
    let state = super::dockerfile::exec_form(runtime.last("VOLUME"));
    let mut replica_ids = Vec::new();
    for (name, service) in replicas {
        assert_eq!(
            str_at(service, "image"),
            format!("vigil:{}", workspace_version())
        );
        assert_eq!(
            str_at(service, "user"),
            uid,
            "{name} runs as the image's user"
        );
        assert_eq!(
            at(service, "read_only"),
            true,
            "{name} has a read-only root"
        );
        assert_eq!(strings(at(service, "cap_drop")), ["ALL"]);
        let command = strings(at(service, "command"));
        assert_eq!(
            config_argument(&command),
            image_config,
            "{name} serves the image's config path"
        );

        // Its config, and a named volume for each of the image's state folders.
        let volumes = strings(at(service, "volumes"));
        let mounted = |target: &str| {
            volumes
                .iter()
                .find(|volume| volume.split(':').nth(1) == Some(target))
                .unwrap_or_else(|| panic!("{name} mounts nothing at {target}"))
                .clone()
        };
        assert!(mounted(&image_config).starts_with("./vigil.yaml:"));
        for folder in &state {
            let volume = mounted(folder);
            let source = volume.split(':').next().expect("a source");
            assert!(
                compose.pointer(&format!("/volumes/{source}")).is_some(),
                "{name}: {folder} is the named volume `{source}`"
            );
        }

        // Its id, and its address and ports at the config's port.
        let environment = at(service, "environment");
        let replica_id = str_at(environment, "VIGIL_REPLICA_ID").to_owned();
        assert_eq!(
            url_port_and_path(str_at(environment, "VIGIL_ADVERTISE_URL")).0,
            port
        );
        assert!(str_at(environment, "VIGIL_ADVERTISE_URL").starts_with(&format!("http://{name}:")));
        replica_ids.push(replica_id);
        for published in strings(at(service, "ports")) {
            assert!(
                published.ends_with(&format!(":{port}")),
                "{name} publishes {published}"
            );
        }
        assert_eq!(url_port_and_path(&healthcheck_url(service)).0, port);
        assert_eq!(
            strings(at(service, "healthcheck.test")).get(1),
            entrypoint.first(),
            "{name}'s healthcheck runs the image's vigil"
        );

        // It starts once its database is up.
        assert_eq!(
            str_at(service, "depends_on.postgres.condition"),
            "service_healthy"
        );
    }
    replica_ids.sort();
    replica_ids.dedup();
    assert!(replica_ids.len() >= 2, "each replica has its own id");

    // Every file it mounts from the repository is there.
    for service in at(&compose, "services")
        .as_object()
        .expect("a map")
        .values()
    {
        for volume in service.get("volumes").map(strings).unwrap_or_default() {
            if let Some(relative) = volume.strip_prefix("./") {
                let file = relative.split(':').next().expect("a source");
                assert!(deploy_path(&format!("compose/{file}")).exists(), "{volume}");
            }
        }
    }
}

#[test]
fn compose_config_passes_vigil_check_with_each_replicas_environment() {
    let compose = compose();
    let vars: BTreeMap<String, String> = [
        "POSTGRES_PASSWORD",
        "LITELLM_MASTER_KEY",
        "VIGIL_INTAKE_TOKEN",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), dummy_secret(name)))
    .collect();
    for (name, service) in vigil_services(&compose) {
        let root = FakeRoot::from_image(&format!("deploy-compose-{name}"));
        for volume in strings(at(service, "volumes")) {
            let mut parts = volume.split(':');
            let (source, target) = (
                parts.next().expect("a source"),
                parts.next().expect("a target"),
            );
            match source.strip_prefix("./") {
                Some(file) => root.bind(&deploy_path(&format!("compose/{file}")), target),
                // A new named volume starts with the image's files there.
                None => assert!(root.has(target), "the image has {target}"),
            }
        }
        let env: BTreeMap<String, String> = at(service, "environment")
            .as_object()
            .expect("environment is a map")
            .iter()
            .map(|(key, value)| {
                let text = value.as_str().expect("a string");
                (key.clone(), interpolate(text, &vars))
            })
            .collect();
        let config_path = config_argument(&strings(at(service, "command")));
        root.check(&config_path, &env)
            .assert_success(&format!("vigil check of compose's config in {name}"));
    }
}

#[test]
fn docker_compose_validates_the_file() {
    // .ci/run installs Debian's docker-compose when no compose is on the machine.
    let Some(program) = on_path("docker-compose") else {
        tool_missing("docker-compose", true);
        return;
    };
    let mut command = std::process::Command::new(program);
    command
        .args(["-f", "docker-compose.yaml", "config", "--quiet"])
        .current_dir(deploy_path("compose"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for name in [
        "POSTGRES_PASSWORD",
        "LITELLM_MASTER_KEY",
        "VIGIL_INTAKE_TOKEN",
    ] {
        command.env(name, dummy_secret(name));
    }
    let checked = finish(command, std::time::Duration::from_secs(120));
    checked.assert_success("docker-compose config");
}
