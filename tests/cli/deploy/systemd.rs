//! `deploy/systemd/vigil.service`: it runs the binary and config at the paths the image uses,
//! as a service user whose state folder holds what the example config writes, hardened;
//! `systemd-analyze verify` accepts it (with this build's binary in place) and
//! `systemd-analyze security --offline=true` rates its exposure at most `MAX_EXPOSURE`.

use super::dockerfile::{Dockerfile, config_argument};
use super::{deploy_path, on_path, read, str_at, tool_missing, yaml};
use crate::support::{TempDir, VIGIL, repo_root};

/// The highest exposure `systemd-analyze security` may give the unit (measured: 1.1, "OK";
/// 10 is fully exposed, the unit before hardening was 8.5).
const MAX_EXPOSURE: f64 = 1.5;

/// Every `Key=value` of the unit's `[Service]` section, in order.
fn service_settings() -> Vec<(String, String)> {
    let unit = read(&deploy_path("systemd/vigil.service"));
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
        } else if section == "[Service]" {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("`{line}` is not Key=value"));
            settings.push((key.to_owned(), value.to_owned()));
        }
    }
    settings
}

/// The value of the one setting `key`.
fn setting<'a>(settings: &'a [(String, String)], key: &str) -> &'a str {
    let values: Vec<&str> = settings
        .iter()
        .filter(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(values.len(), 1, "one {key}=");
    values[0]
}

#[test]
fn systemd_unit_runs_the_images_paths_as_a_service_user_and_is_hardened() {
    let settings = service_settings();
    let dockerfile = Dockerfile::load();
    let runtime = dockerfile.runtime();
    let binary = runtime.exec_form("ENTRYPOINT").remove(0);
    let config_path = config_argument(&runtime.exec_form("CMD"));

    let start: Vec<String> = setting(&settings, "ExecStart")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(start[0], binary, "the binary is where the image has it");
    assert_eq!(config_argument(&start[1..]), config_path);
    assert_eq!(
        setting(&settings, "ExecStartPre"),
        format!("{binary} check --config {config_path}"),
        "a config that could not start fails `vigil check` first"
    );
    assert_ne!(setting(&settings, "User"), "root");

    // The example config, installed as the unit says, writes only into the state folder.
    let state = format!("/var/lib/{}", setting(&settings, "StateDirectory"));
    let example = yaml(
        &read(&repo_root().join("examples/vigil.yaml")),
        "examples/vigil.yaml",
    );
    for key in [
        "sqlite_path",
        "checkpoint.key_file",
        "checkpoint.publish_file",
    ] {
        let path = str_at(&example, &format!("ledger.{key}"));
        assert!(
            path.starts_with(&format!("{state}/")),
            "ledger.{key} `{path}` is in {state}"
        );
    }

    for (key, value) in [
        ("NoNewPrivileges", "true"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "true"),
        ("PrivateTmp", "true"),
        ("PrivateDevices", "true"),
        ("ProtectKernelTunables", "true"),
        ("ProtectKernelModules", "true"),
        ("ProtectKernelLogs", "true"),
        ("ProtectControlGroups", "true"),
        ("RestrictNamespaces", "true"),
        ("LockPersonality", "true"),
        ("MemoryDenyWriteExecute", "true"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("UMask", "0077"),
        ("ReadWritePaths", &state),
    ] {
        assert_eq!(setting(&settings, key), value, "{key}=");
    }
    assert!(
        settings
            .iter()
            .any(|(key, value)| key == "SystemCallFilter" && value == "@system-service"),
        "SystemCallFilter=@system-service"
    );
}

#[test]
fn systemd_analyze_verifies_the_unit_and_rates_its_exposure() {
    // .ci/run installs systemd when systemd-analyze is missing.
    let Some(analyze) = on_path("systemd-analyze") else {
        tool_missing("systemd-analyze", true);
        return;
    };
    // `verify` checks that the commands exist: the unit as installed, with this build's
    // binary where the unit expects vigil.
    let dir = TempDir::new("deploy-systemd");
    let unit = dir.join("vigil.service");
    let text = read(&deploy_path("systemd/vigil.service"));
    std::fs::write(&unit, text.replace("/usr/local/bin/vigil", VIGIL)).expect("writing");

    let verify = std::process::Command::new(&analyze)
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("running systemd-analyze verify");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && !complaints.contains("vigil.service"),
        "systemd-analyze verify: {complaints}"
    );

    let security = std::process::Command::new(&analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("running systemd-analyze security");
    let report = String::from_utf8_lossy(&security.stdout);
    let overall = report
        .lines()
        .find(|line| line.contains("Overall exposure level for vigil.service"))
        .unwrap_or_else(|| {
            panic!(
                "no overall exposure: {report}{}",
                String::from_utf8_lossy(&security.stderr)
            )
        });
    let exposure: f64 = overall
        .rsplit_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no number in `{overall}`"));
    eprintln!(
        "systemd-analyze security --offline=true: {}",
        overall.trim()
    );
    assert!(
        exposure <= MAX_EXPOSURE,
        "the unit's exposure {exposure} is above {MAX_EXPOSURE}:\n{report}"
    );
}
