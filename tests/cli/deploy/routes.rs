//! The paths every artifact's probes and healthchecks ask for are routes vigil serves: a
//! `vigil serve` of the image's default config (in the image's filesystem, `image.rs`) lists
//! them on its startup line and answers each with 200; the Dockerfile's and compose's
//! healthcheck commands, run against it, exit 0.

use std::collections::BTreeMap;

use super::dockerfile::{Dockerfile, config_argument, healthcheck_command};
use super::image::{FakeRoot, dummy_secret, env_names};
use super::{compose, kubernetes, url_port_and_path};
use crate::serve::Served;
use crate::support::{VIGIL, finish, http_get, vigil_command};

/// How often a path is asked before the test gives up (a hang guard: the first scrape
/// attempt, which readiness waits for, fails at once on loopback).
const ROUNDS: usize = 2400;

#[test]
fn every_probe_and_healthcheck_asks_for_a_route_vigil_serves() {
    let dockerfile = Dockerfile::load();
    let runtime = dockerfile.runtime();
    let health = healthcheck_command(runtime);
    let health_url = health
        .iter()
        .find(|word| word.starts_with("http://"))
        .expect("the HEALTHCHECK fetches a URL")
        .clone();
    let mut probes = vec![(
        "Dockerfile HEALTHCHECK".to_owned(),
        url_port_and_path(&health_url).1,
    )];
    probes.extend(kubernetes::Manifests::load().probe_paths());
    probes.extend(compose::probe_paths());

    // The image's default config, served on a free loopback port, its source pointed at a
    // closed port so that its first scrape fails at once.
    let root = FakeRoot::from_image("deploy-routes");
    let config_path = config_argument(&runtime.exec_form("CMD"));
    let config = root.config(&config_path);
    let mut env = BTreeMap::new();
    for name in env_names(&config) {
        env.insert(name.clone(), dummy_secret(&name));
    }
    let text = std::fs::read_to_string(root.path(&config_path)).expect("reading the config");
    let local = text.replace("http://litellm:4000/", "http://127.0.0.1:9/");
    assert_ne!(
        local, text,
        "the default config scrapes http://litellm:4000/"
    );
    std::fs::write(root.path(&config_path), local).expect("writing");
    assert!(root.check(&config_path, &env).status.success());
    let rebased = root.checked(&config_path);
    let mut command = vigil_command(
        [
            "serve".as_ref(),
            "--config".as_ref(),
            rebased.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
        &root.path("/var/lib/vigil"),
    );
    command.envs(&env);
    let served = Served::spawn(command);

    for (what, path) in &probes {
        assert!(
            served.startup_line.contains(&format!("GET {path},"))
                || served.startup_line.contains(&format!("GET {path} on ")),
            "{what} asks for {path}, which vigil does not serve: {}",
            served.startup_line
        );
        let mut last = String::new();
        let answered = (0..ROUNDS).any(|_| match http_get(served.address, path) {
            Ok(response) if response.status == 200 => true,
            Ok(response) => {
                last = format!("{} {}", response.status, response.body);
                std::thread::sleep(crate::support::POLL);
                false
            }
            Err(error) => {
                last = error.to_string();
                std::thread::sleep(crate::support::POLL);
                false
            }
        });
        assert!(
            answered,
            "{what}: GET {path} never answered 200; last {last}"
        );
    }

    // The healthcheck commands themselves, at the served port.
    let port = served.address.port().to_string();
    let mut commands = vec![health];
    for words in compose_healthchecks() {
        commands.push(words);
    }
    for words in commands {
        let words: Vec<String> = words
            .iter()
            .map(|word| word.replace(":9464/", &format!(":{port}/")))
            .collect();
        let (program, args) = words.split_first().expect("a command");
        assert_eq!(
            program, "/usr/local/bin/vigil",
            "the healthcheck runs vigil"
        );
        let mut command = std::process::Command::new(VIGIL);
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let run = finish(command, std::time::Duration::from_secs(60));
        run.assert_success(&format!("the healthcheck {words:?}"));
    }
    drop(served);
}

/// The vigil services' healthcheck commands in compose (without compose's `CMD`).
fn compose_healthchecks() -> Vec<Vec<String>> {
    let file = super::read(&super::deploy_path("compose/docker-compose.yaml"));
    let compose = super::yaml(&file, "docker-compose.yaml");
    let services = super::at(&compose, "services").as_object().expect("a map");
    services
        .values()
        .filter(|service| {
            service
                .get("image")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|image| image.starts_with("vigil:"))
        })
        .map(|service| {
            super::list_at(service, "healthcheck.test")
                .iter()
                .skip(1)
                .map(|word| word.as_str().expect("a string").to_owned())
                .collect()
        })
        .collect()
}
