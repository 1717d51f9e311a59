//! `deploy/kubernetes/`: the manifests kustomize applies, read and checked against the image
//! and the binary: three hardened replicas of the image's binary and config path, named
//! ports that are the config's `listen`, probes and the ServiceMonitor on routes vigil serves
//! (`routes.rs`), every secret from the Secret, a memory limit that covers vigil's bound, and
//! the ConfigMap's config passing `vigil check` with exactly the environment and mounts a pod
//! gets.

use std::collections::BTreeMap;

use serde_json::Value;

use super::dockerfile::{Dockerfile, config_argument};
use super::image::{FakeRoot, dummy_secret};
use super::{
    at, deploy_path, list_at, listen_port, on_path, read, str_at, str_of, tool_missing,
    url_port_and_path, workspace_version, yaml, yaml_documents,
};
use crate::support::{TempDir, admin_tokens};

/// The applied manifests, by kind and name, and the example Secret.
pub(super) struct Manifests {
    documents: Vec<Value>,
    secret: Value,
}

impl Manifests {
    /// Every resource `kustomization.yaml` lists, and `secret.example.yaml`.
    pub(super) fn load() -> Manifests {
        let kustomization = kustomization();
        let mut documents = Vec::new();
        for resource in list_at(&kustomization, "resources") {
            let file = resource.as_str().expect("a resource file");
            let text = read(&deploy_path(&format!("kubernetes/{file}")));
            documents.extend(yaml_documents(&text, file));
        }
        let secret = yaml(
            &read(&deploy_path("kubernetes/secret.example.yaml")),
            "secret.example.yaml",
        );
        Manifests { documents, secret }
    }

    /// The one resource of this kind and name.
    pub(super) fn get(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<&Value> = self
            .documents
            .iter()
            .filter(|document| {
                document.get("kind").and_then(Value::as_str) == Some(kind)
                    && document.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
            })
            .collect();
        assert_eq!(found.len(), 1, "one {kind} `{name}`");
        found[0]
    }

    /// Every resource of this kind.
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.documents
            .iter()
            .filter(|document| document.get("kind").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    /// The StatefulSet's vigil container.
    pub(super) fn container(&self) -> &Value {
        let containers = list_at(
            self.get("StatefulSet", "vigil"),
            "spec.template.spec.containers",
        );
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    /// The config in the ConfigMap the container mounts, and where it mounts it.
    fn config(&self) -> (String, Value) {
        let config_path = config_argument(&strings(at(self.container(), "args")));
        let (volume, mount) = self.mount_of(&config_path);
        let config_map = self.get("ConfigMap", str_at(volume, "configMap.name"));
        let key = str_at(mount, "subPath");
        let text = str_of(at(config_map, "data"), key);
        (config_path, yaml(text, "the ConfigMap's vigil.yaml"))
    }

    /// The volume and the mount that put `path` in the container.
    fn mount_of(&self, path: &str) -> (&Value, &Value) {
        let mount = list_at(self.container(), "volumeMounts")
            .iter()
            .find(|mount| str_at(mount, "mountPath") == path)
            .unwrap_or_else(|| panic!("nothing is mounted at {path}"));
        (self.volume(str_at(mount, "name")), mount)
    }

    fn volume(&self, name: &str) -> &Value {
        list_at(
            self.get("StatefulSet", "vigil"),
            "spec.template.spec.volumes",
        )
        .iter()
        .find(|volume| str_at(volume, "name") == name)
        .unwrap_or_else(|| panic!("no volume `{name}`"))
    }

    /// The container port of this name.
    fn port(&self, name: &str) -> u16 {
        let port = list_at(self.container(), "ports")
            .iter()
            .find(|port| str_at(port, "name") == name)
            .unwrap_or_else(|| panic!("the container has no port `{name}`"));
        u16::try_from(at(port, "containerPort").as_u64().expect("a number")).expect("a port")
    }

    /// Every HTTP path a probe or the ServiceMonitor asks for, with what asks.
    pub(super) fn probe_paths(&self) -> Vec<(String, String)> {
        let mut paths = Vec::new();
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let path = str_at(self.container(), &format!("{probe}.httpGet.path"));
            paths.push((format!("kubernetes {probe}"), path.to_owned()));
        }
        for endpoint in list_at(self.get("ServiceMonitor", "vigil"), "spec.endpoints") {
            paths.push((
                "kubernetes ServiceMonitor".to_owned(),
                str_at(endpoint, "path").to_owned(),
            ));
        }
        paths
    }
}

fn kustomization() -> Value {
    yaml(
        &read(&deploy_path("kubernetes/kustomization.yaml")),
        "kustomization.yaml",
    )
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

/// Whether every `matchLabels` pair is among `labels`.
fn selects(match_labels: &Value, labels: &Value) -> bool {
    match_labels
        .as_object()
        .expect("matchLabels is a map")
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

#[test]
fn kubernetes_runs_three_hardened_replicas_of_the_image() {
    let manifests = Manifests::load();
    let dockerfile = Dockerfile::load();
    let runtime = dockerfile.runtime();
    let statefulset = manifests.get("StatefulSet", "vigil");
    let pod = at(statefulset, "spec.template");
    let pod_labels = at(pod, "metadata.labels");
    assert_eq!(at(statefulset, "spec.replicas"), 3);
    assert!(selects(
        at(statefulset, "spec.selector.matchLabels"),
        pod_labels
    ));

    // The image's binary and config path; the kustomization names the image and its tag.
    let container = manifests.container();
    assert_eq!(str_at(container, "image"), "vigil");
    let kustomization = kustomization();
    let image = &list_at(&kustomization, "images")[0];
    assert_eq!(str_at(image, "name"), "vigil");
    assert_eq!(str_at(image, "newTag"), workspace_version());
    assert!(
        container.get("command").is_none(),
        "the image's ENTRYPOINT runs"
    );
    assert_eq!(
        config_argument(&strings(at(container, "args"))),
        config_argument(&runtime.exec_form("CMD")),
        "the container serves the config path the image's CMD names"
    );

    // Non-root, read-only root, no capability, the runtime's seccomp profile.
    let pod_security = at(pod, "spec.securityContext");
    let uid = runtime
        .last("USER")
        .split(':')
        .next()
        .expect("a uid")
        .to_owned();
    assert_eq!(at(pod_security, "runAsNonRoot"), true);
    assert_eq!(at(pod_security, "runAsUser").to_string(), uid);
    assert_eq!(
        str_at(pod_security, "seccompProfile.type"),
        "RuntimeDefault"
    );
    let security = at(container, "securityContext");
    assert_eq!(at(security, "readOnlyRootFilesystem"), true);
    assert_eq!(at(security, "allowPrivilegeEscalation"), false);
    assert_eq!(strings(at(security, "capabilities.drop")), ["ALL"]);

    // The image's state volume is a writable volume in the pod.
    for path in runtime.all("VOLUME") {
        for path in super::dockerfile::exec_form(path) {
            let (volume, mount) = manifests.mount_of(&path);
            assert!(volume.get("emptyDir").is_some(), "{path} is an emptyDir");
            assert!(mount.get("readOnly") != Some(&Value::Bool(true)));
        }
    }

    // Each replica's id is its pod's name; it advertises its address on the headless Service,
    // at the config's port.
    let env = list_at(container, "env");
    let variable = |name: &str| {
        env.iter()
            .find(|variable| str_at(variable, "name") == name)
            .unwrap_or_else(|| panic!("no env {name}"))
    };
    assert_eq!(
        str_at(variable("VIGIL_REPLICA_ID"), "valueFrom.fieldRef.fieldPath"),
        "metadata.name"
    );
    let (_, config) = manifests.config();
    assert!(
        config.get("replication").is_some(),
        "the replicas share a leader"
    );
    assert_eq!(
        str_at(&config, "ledger.postgres_url.env"),
        "VIGIL_DATABASE_URL"
    );
    let port = listen_port(&config);
    assert_eq!(
        manifests.port("http"),
        port,
        "containerPort `http` is `listen`"
    );
    let headless_name = str_at(statefulset, "spec.serviceName");
    let advertised = str_at(variable("VIGIL_ADVERTISE_URL"), "value");
    assert!(
        advertised.starts_with(&format!("http://$(VIGIL_REPLICA_ID).{headless_name}.")),
        "VIGIL_ADVERTISE_URL `{advertised}` names the pod on the headless Service"
    );
    assert_eq!(url_port_and_path(advertised).0, port);

    // Services reach the named port; the headless one publishes every replica.
    for service in manifests.all("Service") {
        assert!(selects(at(service, "spec.selector"), pod_labels));
        for service_port in list_at(service, "spec.ports") {
            manifests.port(str_at(service_port, "targetPort"));
        }
    }
    let headless = manifests.get("Service", headless_name);
    assert_eq!(str_at(headless, "spec.clusterIP"), "None");

    // Probes use the named port; the ServiceMonitor scrapes the headless Service's port.
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(
            manifests.port(str_at(container, &format!("{probe}.httpGet.port"))),
            port
        );
    }
    let monitor = manifests.get("ServiceMonitor", "vigil");
    assert!(selects(
        at(monitor, "spec.selector.matchLabels"),
        at(headless, "metadata.labels")
    ));
    for endpoint in list_at(monitor, "spec.endpoints") {
        let wanted = str_at(endpoint, "port");
        assert!(
            list_at(headless, "spec.ports")
                .iter()
                .any(|service_port| str_at(service_port, "name") == wanted),
            "the headless Service has the port `{wanted}` the ServiceMonitor scrapes"
        );
    }

    // A drain leaves a leader and a standby.
    let budget = manifests.get("PodDisruptionBudget", "vigil");
    assert!(selects(at(budget, "spec.selector.matchLabels"), pod_labels));
    assert_eq!(at(budget, "spec.maxUnavailable"), 1);
}

/// What the first replica's container sees: the image's files with the pod's mounts over
/// them (the Secret's keys as dummies), its environment, and the config path it serves.
pub(super) struct Pod {
    pub(super) root: FakeRoot,
    pub(super) env: BTreeMap<String, String>,
    pub(super) config_path: String,
    _tokens: TempDir,
}

/// The pod `vigil-0` of the StatefulSet, in namespace `vigil`.
pub(super) fn pod(label: &str) -> Pod {
    let manifests = Manifests::load();
    let container = manifests.container();
    let (config_path, _) = manifests.config();
    let root = FakeRoot::from_image(label);
    let secret_data = at(&manifests.secret, "stringData");
    let secret_name = str_at(&manifests.secret, "metadata.name");
    let tokens_dir = TempDir::new(&format!("{label}-tokens"));

    // The mounts, over the image's files.
    for mount in list_at(container, "volumeMounts") {
        let path = str_at(mount, "mountPath");
        let volume = manifests.volume(str_at(mount, "name"));
        if let Some(config_map) = volume.get("configMap") {
            let data = at(
                manifests.get("ConfigMap", str_at(config_map, "name")),
                "data",
            );
            let key = str_at(mount, "subPath");
            root.write(path, str_of(data, key), 0o644);
        } else if let Some(secret) = volume.get("secret") {
            assert_eq!(str_at(secret, "secretName"), secret_name);
            let mode =
                u32::try_from(at(secret, "defaultMode").as_u64().expect("a mode")).expect("a mode");
            assert_eq!(
                mode & 0o007,
                0,
                "secret files are not readable by every user"
            );
            root.empty_dir(path);
            for item in list_at(secret, "items") {
                let key = str_at(item, "key");
                assert!(secret_data.get(key).is_some(), "the Secret has `{key}`");
                let text = secret_file(key, &tokens_dir);
                root.write(&format!("{path}/{}", str_at(item, "path")), &text, mode);
            }
        } else {
            assert!(volume.get("emptyDir").is_some(), "{path}: an emptyDir");
            root.empty_dir(path);
        }
    }

    // The environment: the pod's own fields, plain values (with `$(NAME)` expanded) and the
    // Secret's keys (dummies).
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for variable in list_at(container, "env") {
        let name = str_at(variable, "name").to_owned();
        let value = if let Some(value) = variable.get("value") {
            let mut value = value.as_str().expect("a string").to_owned();
            for (earlier, earlier_value) in &env {
                value = value.replace(&format!("$({earlier})"), earlier_value);
            }
            value
        } else if let Some(field) = variable.pointer("/valueFrom/fieldRef/fieldPath") {
            match field.as_str().expect("a field path") {
                "metadata.name" => "vigil-0".to_owned(),
                "metadata.namespace" => "vigil".to_owned(),
                other => panic!("unexpected field {other}"),
            }
        } else {
            let reference = at(variable, "valueFrom.secretKeyRef");
            assert_eq!(str_at(reference, "name"), secret_name);
            let key = str_at(reference, "key");
            assert!(secret_data.get(key).is_some(), "the Secret has `{key}`");
            dummy_secret(key)
        };
        env.insert(name, value);
    }
    Pod {
        root,
        env,
        config_path,
        _tokens: tokens_dir,
    }
}

#[test]
fn kubernetes_config_passes_vigil_check_with_the_pods_environment_and_mounts() {
    let pod = pod("deploy-kubernetes");
    pod.root
        .check(&pod.config_path, &pod.env)
        .assert_success("vigil check of the ConfigMap's config in the pod's filesystem");
}

/// A stand-in for a file of the Secret: an admin tokens file made by `vigil admin-token add`,
/// or a 32-byte key in hex.
fn secret_file(key: &str, dir: &TempDir) -> String {
    if key.ends_with(".yaml") {
        let (file, _) = admin_tokens(
            dir.path(),
            &[crate::support::Person {
                name: "alice@example.com",
                groups: &["sre-leads"],
                roles: &[],
            }],
        );
        read(&file)
    } else {
        dummy_secret(key)
    }
}

#[test]
fn kubernetes_memory_limit_covers_vigils_bound_for_its_config() {
    let manifests = Manifests::load();
    let (_, config) = manifests.config();
    // The bound examples/vigil.yaml documents: about 45 MiB + the series store (3.5 KiB a
    // series) + 32 KiB a connection + each concurrent push at 12 times its body plus 64 MiB.
    const MIB: u64 = 1024 * 1024;
    let number = |path: &str| at(&config, path).as_u64().expect("a number");
    let series: u64 = list_at(&config, "sources")
        .iter()
        .map(|source| {
            at(source, "max_series")
                .as_u64()
                .expect("max_series is set")
        })
        .sum();
    let bound = 45 * MIB
        + series * 3584
        + number("server.max_connections") * 32 * 1024
        + number("intake.max_concurrent_pushes")
            * (12 * number("intake.max_body_bytes") + 64 * MIB);
    let limit = str_at(manifests.container(), "resources.limits.memory");
    let limit_bytes = match limit.strip_suffix("Gi") {
        Some(gib) => gib.parse::<u64>().expect("a number") * 1024 * MIB,
        None => {
            limit
                .strip_suffix("Mi")
                .and_then(|mib| mib.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("limits.memory `{limit}`: Mi or Gi"))
                * MIB
        }
    };
    eprintln!(
        "vigil's bound for the ConfigMap's config: {} MiB; limit {limit}",
        bound / MIB
    );
    assert!(
        bound <= limit_bytes,
        "the limit {limit} is under vigil's bound of {} MiB",
        bound / MIB
    );
}

#[test]
fn kustomize_builds_the_manifests() {
    // kubectl is not in Debian's packages, so CI cannot count on it: skipped without it.
    let Some(kubectl) = on_path("kubectl") else {
        tool_missing("kubectl", false);
        return;
    };
    let output = std::process::Command::new(kubectl)
        .args(["kustomize"])
        .arg(deploy_path("kubernetes"))
        .output()
        .expect("running kubectl kustomize");
    assert!(
        output.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let built = yaml_documents(
        &String::from_utf8_lossy(&output.stdout),
        "kustomize's output",
    );
    let manifests = Manifests::load();
    assert_eq!(
        built.len(),
        manifests.documents.len(),
        "every resource is built"
    );
    let image = built
        .iter()
        .find_map(|document| document.pointer("/spec/template/spec/containers/0/image"))
        .and_then(Value::as_str)
        .expect("the StatefulSet's image");
    assert!(
        image.ends_with(&format!("vigil:{}", workspace_version())),
        "{image}"
    );
}
