//! The Kubernetes pod's config runs: `vigil serve` of the ConfigMap's config, with the
//! environment and mounts of the pod `vigil-0` and the test database as its PostgreSQL,
//! leads, says so on `/readyz` under the replica id and address the StatefulSet gives it,
//! exports `vigil_leader`, and stops cleanly on SIGTERM.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;
use sqlx::{Connection as _, Executor as _, PgConnection};

use super::kubernetes::pod;
use crate::serve::Served;
use crate::support::{POLL, http_get, vigil_command};

const DATABASE_URL_VARIABLE: &str = "VIGIL_TEST_DATABASE_URL";

/// How often `/readyz` is asked before the test gives up (a hang guard: one replica takes the
/// lease at its first try).
const ROUNDS: usize = 2400;

/// A schema of the test database, dropped when the test ends, failed or not.
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // A runtime of its own, on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&url).await.expect("connecting");
                let _ = connection
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                    )))
                    .await;
            });
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop the schema {}", self.name);
        }
    }
}

#[test]
fn kubernetes_pod_config_serves_as_the_leading_replica_on_postgresql() {
    let Some(url) = std::env::var(DATABASE_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{DATABASE_URL_VARIABLE} is not set but CI is: the replica must run"
        );
        eprintln!("skipped: {DATABASE_URL_VARIABLE} is not set");
        return;
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let schema = Schema {
        url: url.clone(),
        name: format!(
            "vigil_deploy_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ),
    };

    // The pod, its database the test's, in a schema of its own.
    let mut pod = pod("deploy-replica");
    let mut config = pod.root.config(&pod.config_path);
    config["ledger"]["postgres_schema"] = Value::String(schema.name.clone());
    pod.root.write(&pod.config_path, &config.to_string(), 0o644);
    pod.env.insert("VIGIL_DATABASE_URL".to_owned(), url);
    pod.root
        .check(&pod.config_path, &pod.env)
        .assert_success("vigil check of the pod's config on the test database");

    let checked = pod.root.checked(&pod.config_path);
    let mut command = vigil_command(
        [
            "serve".as_ref(),
            "--config".as_ref(),
            checked.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
        &pod.root.path("/var/lib/vigil"),
    );
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs(&pod.env);
    let served = Served::spawn(command);

    let mut last = String::from("no answer");
    let ready = (0..ROUNDS).find_map(|_| {
        match http_get(served.address, "/readyz") {
            Ok(response) if response.status == 200 => {
                let body: Value = serde_json::from_str(&response.body)
                    .unwrap_or_else(|error| panic!("/readyz `{}`: {error}", response.body));
                if body["role"] == "leader" {
                    return Some(body);
                }
                last = response.body;
            }
            Ok(response) => last = format!("{} {}", response.status, response.body),
            Err(error) => last = error.to_string(),
        }
        std::thread::sleep(POLL);
        None
    });
    let ready = ready.unwrap_or_else(|| {
        panic!(
            "the replica never led; last /readyz: {last}\n{}",
            served.stderr_text()
        )
    });
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["replica"], pod.env["VIGIL_REPLICA_ID"].as_str());
    assert_eq!(
        ready["leader"]["replica"],
        pod.env["VIGIL_REPLICA_ID"].as_str()
    );
    assert_eq!(
        ready["leader"]["url"],
        pod.env["VIGIL_ADVERTISE_URL"].as_str()
    );
    assert!(
        ready["epoch"].as_u64().is_some_and(|epoch| epoch >= 1),
        "{ready}"
    );

    // What the kubelet and the ServiceMonitor ask a replica for.
    for (what, path) in super::kubernetes::Manifests::load().probe_paths() {
        let response = http_get(served.address, &path).expect("a probe");
        assert_eq!(
            response.status, 200,
            "{what}: GET {path}: {}",
            response.body
        );
    }
    let metrics = http_get(served.address, "/metrics").expect("GET /metrics");
    assert_eq!(metrics.status, 200);
    let leader = metrics
        .body
        .lines()
        .find(|line| line.starts_with("vigil_leader{"))
        .unwrap_or_else(|| panic!("no vigil_leader in /metrics:\n{}", metrics.body));
    assert!(
        leader.contains("replica=\"vigil-0\"") && leader.ends_with(" 1"),
        "{leader}"
    );

    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "vigil serve after SIGTERM:\n{stderr}");
    drop(schema);
}
