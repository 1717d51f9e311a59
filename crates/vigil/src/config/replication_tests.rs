//! The `replication:` block: defaults, and every bad field reported at once with its path.

use std::path::Path;
use std::time::Duration;

use super::parse;
use super::tests::MINIMAL;

fn on_postgres(block: &str) -> String {
    MINIMAL.replace(
        "ledger:\n  sqlite_path: vigil.db\n",
        &format!("ledger:\n  postgres_url: {{ env: VIGIL_DATABASE_URL }}\n{block}"),
    )
}

#[test]
fn replication_defaults_to_a_15_second_lease_renewed_every_5() {
    let config = parse(
        &on_postgres("replication: {}\n"),
        "vigil.yaml",
        Path::new("."),
    )
    .unwrap();
    let replication = config.replication.clone().expect("replication is on");
    assert_eq!(replication.lease, Duration::from_secs(15));
    assert_eq!(replication.renew_every, Duration::from_secs(5));
    assert_eq!(replication.inbox_max_rows, 100_000);
    assert_eq!(replication.replica_id, None);
    assert!(config.longest_action_timeout() <= replication.lease - replication.renew_every);
}

#[test]
fn every_bad_replication_field_is_named() {
    let text = on_postgres(
        "replication:\n  lease_secs: 6\n  renew_every_secs: 3\n  replica_id: \"vigil 0\"\n  advertise_url: ftp://x\n  inbox_max_rows: 0\n",
    );
    let problems = parse(&text, "vigil.yaml", Path::new("."))
        .unwrap_err()
        .to_string();
    for path in [
        "replication.renew_every_secs",
        "replication.replica_id",
        "replication.advertise_url",
        "replication.inbox_max_rows",
    ] {
        assert!(problems.contains(path), "{path} not named in:\n{problems}");
    }
}

#[test]
fn replicas_need_postgres_and_a_lease_that_outlives_an_action() {
    let text = MINIMAL.replace("pager:", "replication: {}\npager:");
    let problems = parse(&text, "vigil.yaml", Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(problems.contains("ledger.postgres_url"), "{problems}");

    // The default admin timeout is 10 s: a 12 s lease renewed every 4 s cannot cover it.
    let text = on_postgres("replication:\n  lease_secs: 12\n  renew_every_secs: 4\n").replace(
        "    url: http://127.0.0.1:4000/metrics/\n",
        "    url: http://127.0.0.1:4000/metrics/\n    admin:\n      master_key: { env: K }\n",
    );
    let problems = parse(&text, "vigil.yaml", Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        problems.contains("replication.lease_secs")
            && problems.contains("longest action timeout (10 s)"),
        "{problems}"
    );
}

#[test]
fn a_replica_id_is_a_short_plain_name() {
    use super::replication::is_replica_id;
    for good in ["vigil-0", "r1", "vigil.prod_2"] {
        assert!(is_replica_id(good), "{good}");
    }
    let long = "x".repeat(65);
    for bad in ["", "vigil 0", "vigil/0", "ví", long.as_str(), "a\nb"] {
        assert!(!is_replica_id(bad), "{bad:?}");
    }
}
