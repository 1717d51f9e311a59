//! The crate boundaries of ARCHITECTURE.md, enforced: which workspace crate may reach which
//! crate through its normal dependencies, and that the pure crates' sources do no I/O.
//!
//! Every rule is also run against a crate that breaks it (see the `*_catches_*` tests), so a
//! rule that silently stopped matching anything would fail here rather than pass forever.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly at the first broken assumption, helper functions included"
)]

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

#[path = "architecture/module_graph.rs"]
mod module_graph;
#[path = "architecture/source_scan.rs"]
mod source_scan;

/// The crates that do no I/O: the engine and the Cedar policy layer.
const PURE_CRATES: [&str; 2] = ["vigil-core", "vigil-policy"];

/// The crates that talk to the world, in the order of ARCHITECTURE.md's code map.
const EDGE_CRATES: [&str; 4] = ["vigil-ledger", "vigil-connectors", "vigil-sim", "vigil"];

/// Developer tools built from the workspace but never linked into vigil: the benchmarks and
/// the evaluation harness.
const TOOL_CRATES: [&str; 2] = ["vigil-bench", "vigil-eval"];

/// Runtimes, sockets, HTTP, SQL and model clients: what a pure crate must never link.
/// A name ending in `*` matches every crate with that prefix.
const IO_CRATES: [&str; 11] = [
    "tokio",
    "mio",
    "socket2",
    "hyper",
    "reqwest",
    "axum",
    "sqlx",
    "sqlx-*",
    "async-openai",
    "libsqlite3-sys",
    "tokio-postgres",
];

// ---------------------------------------------------------------------------------------
// The workspace's dependency graph, from `cargo metadata`.
// ---------------------------------------------------------------------------------------

/// The resolved dependency graph: package names and normal-dependency edges.
struct Graph {
    /// Package id to package name.
    names: BTreeMap<String, String>,
    /// Package id to the ids of its normal dependencies.
    normal_deps: BTreeMap<String, Vec<String>>,
    /// Workspace crate name to package id.
    members: BTreeMap<String, String>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `cargo metadata`, run once per test binary.
fn graph() -> &'static Graph {
    static GRAPH: OnceLock<Graph> = OnceLock::new();
    GRAPH.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        // No `--filter-platform`: a pure crate must stay pure on every target, so edges that
        // only apply to other platforms count too.
        let output = Command::new(&cargo)
            .args(["metadata", "--format-version", "1"])
            .current_dir(workspace_root())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", cargo.display()));
        assert!(
            output.status.success(),
            "cargo metadata failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value =
            serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
        Graph::from_metadata(&metadata)
    })
}

impl Graph {
    fn from_metadata(metadata: &Value) -> Graph {
        let names: BTreeMap<String, String> = metadata["packages"]
            .as_array()
            .expect("metadata has packages")
            .iter()
            .map(|package| {
                (
                    package["id"].as_str().expect("package id").to_owned(),
                    package["name"].as_str().expect("package name").to_owned(),
                )
            })
            .collect();
        let members = metadata["workspace_members"]
            .as_array()
            .expect("metadata has workspace_members")
            .iter()
            .map(|id| {
                let id = id.as_str().expect("member id").to_owned();
                (names[&id].clone(), id)
            })
            .collect();
        let mut normal_deps = BTreeMap::new();
        for node in metadata["resolve"]["nodes"]
            .as_array()
            .expect("metadata has a resolve graph")
        {
            let id = node["id"].as_str().expect("node id").to_owned();
            let deps = node["deps"]
                .as_array()
                .expect("node deps")
                .iter()
                .filter(|dep| {
                    // `kind` is null for a normal dependency, "dev" or "build" otherwise.
                    // Dev-dependencies only build tests. Build-dependencies are not followed
                    // either: they are compiled for the build host and run by build scripts
                    // at compile time, and are never linked into the crate, so they cannot
                    // make it do I/O at run time (cedar-policy's parser generator, for
                    // example, is a build-dependency). Proc macros are normal dependencies
                    // and are followed.
                    dep["dep_kinds"]
                        .as_array()
                        .expect("dep_kinds")
                        .iter()
                        .any(|kind| kind["kind"].is_null())
                })
                .map(|dep| dep["pkg"].as_str().expect("dep pkg").to_owned())
                .collect();
            normal_deps.insert(id, deps);
        }
        Graph {
            names,
            normal_deps,
            members,
        }
    }

    fn member_id(&self, crate_name: &str) -> &str {
        self.members.get(crate_name).unwrap_or_else(|| {
            panic!(
                "`{crate_name}` is not a workspace member (members: {:?}); update this rule",
                self.members.keys().collect::<Vec<_>>()
            )
        })
    }

    /// Every package `crate_name` reaches through normal dependencies, each with the shortest
    /// chain of package names that leads to it, the crate itself first.
    ///
    /// The resolve graph unifies features across the workspace, so an optional dependency
    /// that any member turns on counts for every crate that could pull it in: the check errs
    /// on the strict side, as a build of the whole workspace does.
    fn reachable(&self, crate_name: &str) -> BTreeMap<String, Vec<String>> {
        let root = self.member_id(crate_name).to_owned();
        let mut parent: BTreeMap<String, Option<String>> = BTreeMap::new();
        parent.insert(root.clone(), None);
        let mut queue = VecDeque::from([root.clone()]);
        while let Some(id) = queue.pop_front() {
            for dep in self.normal_deps.get(&id).into_iter().flatten() {
                if !parent.contains_key(dep) {
                    parent.insert(dep.clone(), Some(id.clone()));
                    queue.push_back(dep.clone());
                }
            }
        }
        parent
            .keys()
            .filter(|id| **id != root)
            .map(|id| {
                let mut chain = vec![self.names[id].clone()];
                let mut at = id;
                while let Some(Some(up)) = parent.get(at) {
                    chain.push(self.names[up].clone());
                    at = up;
                }
                chain.reverse();
                (id.clone(), chain)
            })
            .collect()
    }

    /// The chains by which `crate_name` reaches a crate matching one of `forbidden`, one line
    /// each: `vigil-policy -> cedar-policy -> ... -> tokio`.
    fn violations(&self, crate_name: &str, forbidden: &[&str]) -> Vec<String> {
        let mut found: Vec<String> = self
            .reachable(crate_name)
            .into_iter()
            .filter(|(id, _)| forbidden.iter().any(|rule| matches(rule, &self.names[id])))
            .map(|(_, chain)| chain.join(" -> "))
            .collect();
        found.sort();
        found
    }
}

/// Whether `name` matches `rule`: the same name, or a prefix when the rule ends in `*`.
fn matches(rule: &str, name: &str) -> bool {
    match rule.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => rule == name,
    }
}

/// Fails listing every chain that breaks `rule`.
fn assert_no_reach(crate_name: &str, forbidden: &[&str], rule: &str) {
    let violations = graph().violations(crate_name, forbidden);
    assert!(
        violations.is_empty(),
        "{crate_name} breaks the rule \"{rule}\": it reaches a forbidden crate through its normal dependencies:\n  {}",
        violations.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Dependency rules.
// ---------------------------------------------------------------------------------------

#[test]
fn pure_crates_reach_no_runtime_socket_http_or_sql_crate() {
    for crate_name in PURE_CRATES {
        assert_no_reach(crate_name, &IO_CRATES, "pure crates do no I/O");
    }
}

#[test]
fn pure_crates_depend_on_no_edge_crate() {
    for crate_name in PURE_CRATES {
        assert_no_reach(
            crate_name,
            &EDGE_CRATES,
            "pure crates never depend on edge crates",
        );
    }
}

#[test]
fn ledger_depends_on_no_connector_simulator_or_binary() {
    assert_no_reach(
        "vigil-ledger",
        &["vigil-connectors", "vigil-sim", "vigil"],
        "only vigil-ledger knows SQL, and it knows nothing else of the world",
    );
}

#[test]
fn connectors_depend_on_no_ledger_simulator_or_binary() {
    assert_no_reach(
        "vigil-connectors",
        &["vigil-ledger", "vigil-sim", "vigil"],
        "connectors talk to the world and record nothing",
    );
}

#[test]
fn only_the_binary_crate_depends_on_the_simulator() {
    let members: Vec<String> = graph().members.keys().cloned().collect();
    // Tool crates may link the binary crate's library (the replay benchmark runs `vigil
    // simulate` and `vigil replay` in process), and with it the demo's simulator.
    for crate_name in members.iter().filter(|name| {
        !matches!(name.as_str(), "vigil" | "vigil-sim") && !TOOL_CRATES.contains(&name.as_str())
    }) {
        assert_no_reach(
            crate_name,
            &["vigil-sim"],
            "the simulator is for the demo and tests only",
        );
    }
}

#[test]
fn no_crate_depends_on_a_tool_crate() {
    for crate_name in PURE_CRATES.iter().chain(&EDGE_CRATES) {
        assert_no_reach(
            crate_name,
            &TOOL_CRATES,
            "benchmarks measure vigil; vigil never links them",
        );
    }
}

#[test]
fn every_crate_a_rule_names_is_a_workspace_member() {
    // A rule about a renamed or removed crate would pass vacuously.
    let graph = graph();
    for crate_name in PURE_CRATES.iter().chain(&EDGE_CRATES).chain(&TOOL_CRATES) {
        graph.member_id(crate_name);
    }
    assert_eq!(
        graph.members.len(),
        PURE_CRATES.len() + EDGE_CRATES.len() + TOOL_CRATES.len(),
        "a new workspace crate needs its place in these rules: {:?}",
        graph.members.keys().collect::<Vec<_>>()
    );
}

#[test]
fn the_dependency_rules_catch_crates_that_break_them() {
    // The rules above, pointed at crates that do reach what the rules forbid: each must be
    // reported with the chain of packages that leads to it.
    let graph = graph();
    let ledger_io = graph.violations("vigil-ledger", &IO_CRATES);
    for expected in ["vigil-ledger -> sqlx", "-> tokio", "-> libsqlite3-sys"] {
        assert!(
            ledger_io.iter().any(|chain| chain.contains(expected)),
            "the I/O rule does not see `{expected}` in vigil-ledger: {ledger_io:?}"
        );
    }
    assert!(
        ledger_io
            .iter()
            .any(|chain| chain.ends_with("-> sqlx-core")),
        "the `sqlx-*` prefix rule matches nothing in vigil-ledger: {ledger_io:?}"
    );
    let binary_edges = graph.violations("vigil", &EDGE_CRATES);
    assert_eq!(
        binary_edges,
        [
            "vigil -> vigil-connectors",
            "vigil -> vigil-ledger",
            "vigil -> vigil-sim"
        ],
        "the edge rule does not see the binary's own edge dependencies"
    );
    // A dev-dependency is not a normal dependency: vigil-connectors tests with vigil-sim.
    assert!(
        graph
            .violations("vigil-connectors", &["vigil-sim"])
            .is_empty()
    );
    // Indirect reach is reported through the crate in between.
    let binary_core = graph.violations("vigil", &["vigil-core"]);
    assert_eq!(binary_core, ["vigil -> vigil-core"]);
    let sim_tokio = graph.violations("vigil-sim", &["mio"]);
    assert!(
        sim_tokio.len() == 1
            && sim_tokio[0].starts_with("vigil-sim -> ")
            && sim_tokio[0].ends_with(" -> mio"),
        "mio should be reached through tokio: {sim_tokio:?}"
    );
}
