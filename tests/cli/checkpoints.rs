//! Checkpoints written by the daemon: signed at start, on demand (`POST
//! /v1/admin/checkpoint`) and at shutdown, with the key created mode 0600 on first start;
//! stored in the ledger, written to a file and POSTed to a webhook. A log cut after them
//! fails `vigil ledger verify`; when the attacker also deletes the stored checkpoints, the
//! published file still catches it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crash::{Stack, wait_for_line};
use crate::serve::Served;
use crate::support::{TempDir, http_post_json, vigil};

/// A webhook receiver on loopback: answers 200 to every POST and keeps the bodies. Its
/// thread stops accepting after `lifetime`.
fn webhook_receiver(lifetime: Duration) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener.set_nonblocking(true).expect("non-blocking");
    let address = listener.local_addr().expect("an address");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        let deadline = Instant::now() + lifetime;
        while Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buffer = [0_u8; 4096];
            // Read the head, then as many body bytes as Content-Length says.
            let body = loop {
                let Ok(n) = stream.read(&mut buffer) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break Some(body.to_owned());
                    }
                }
            };
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if let Some(body) = body {
                kept.lock().expect("the bodies").push(body);
            }
        }
    });
    (address, bodies)
}

#[test]
fn the_daemon_signs_stores_and_publishes_checkpoints_that_catch_a_truncated_log() {
    let dir = TempDir::new("checkpoints");
    let (tokens_file, tokens) = crate::support::admin_tokens(
        dir.path(),
        &[crate::support::Person {
            name: "olga",
            groups: &[],
            roles: &["operator"],
        }],
    );
    let (webhook, received) = webhook_receiver(Duration::from_secs(120));
    let stack = Stack::start(
        &dir,
        "autonomous",
        &format!("admin:\n  tokens_file: \"{}\"\n", tokens_file.display()),
    );
    // Checkpoints go under `ledger:`, after the SQLite path. Every scrape is recorded on its
    // own (no batches), so that the ledger grows between two scheduled checkpoints.
    let key = dir.join("ledger.key");
    let published = dir.join("checkpoint.json");
    let config = std::fs::read_to_string(&stack.config).expect("reading the config");
    let sqlite_line = format!("  sqlite_path: \"{}\"\n", stack.ledger.display());
    assert!(config.contains(&sqlite_line), "{config}");
    let config = config.replace(
        &sqlite_line,
        &format!(
            "{sqlite_line}  scrape_batch_secs: 0\n  checkpoint:\n    key_file: \"{}\"\n    interval_secs: 10\n    publish_file: \"{}\"\n    webhook_url: \"http://{webhook}/checkpoints\"\n",
            key.display(),
            published.display()
        ),
    );
    std::fs::write(&stack.config, config).expect("writing the config");

    let mut served = Served::start(&stack.config, dir.path());
    wait_for_line(&mut served, "ledger checkpoint signed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key)
            .expect("the key was created")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the signing key must be private");
    }

    // On demand, through the admin API, once the ledger grew.
    served.poll("/metrics", "three successful scrapes", |response| {
        response.status == 200 && crate::serve::scrapes_ok(&response.body) >= 3.0
    });
    let refused =
        http_post_json(served.address, "/v1/admin/checkpoint", Some("nope"), "").expect("POST");
    assert_eq!(refused.status, 401, "{}", refused.body);
    let asked = http_post_json(
        served.address,
        "/v1/admin/checkpoint",
        Some(&tokens["olga"]),
        "",
    )
    .expect("POST");
    assert_eq!(asked.status, 200, "{}", asked.body);
    let asked: serde_json::Value = serde_json::from_str(&asked.body).expect("a checkpoint");
    let public_key = asked["public_key"]
        .as_str()
        .expect("a public key")
        .to_owned();
    assert!(asked["tree_size"].as_u64().expect("a size") >= 1);

    // On the schedule (every 10 s here), since the ledger keeps growing.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut scheduled = false;
    while let Some(line) = served.next_line(deadline) {
        if line.contains("ledger checkpoint signed") && line.contains("scheduled") {
            scheduled = true;
            break;
        }
    }
    assert!(
        scheduled,
        "no scheduled checkpoint:\n{}",
        served.stderr_text()
    );

    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");

    // Start, asked for, scheduled, end: at least four, every one signed by the daemon's key.
    let verify = vigil(
        [
            "ledger",
            "verify",
            "--db",
            stack.ledger.to_str().expect("UTF-8"),
            "--public-key",
            &public_key,
        ],
        dir.path(),
    );
    verify.assert_success("verify with the stored checkpoints");
    assert!(verify.stdout.contains("(the pinned key)"), "{verify}");
    let stored: u64 = verify
        .stdout
        .split("consistent with its ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint count in {verify}"));
    assert!(stored >= 4, "{verify}");

    // The published file holds the last one: the whole log at shutdown.
    let last: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&published).expect("the published file"))
            .expect("a checkpoint");
    let rows = crate::ledger::read_rows_blocking(&stack.ledger);
    assert_eq!(last["tree_size"].as_u64(), Some(rows as u64));
    // The webhook got every one (they are sent after each is stored; wait for the last).
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.lock().expect("the bodies").len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let posted = received.lock().expect("the bodies").clone();
    assert!(posted.len() >= 4, "{posted:?}");
    for body in &posted {
        let checkpoint: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(checkpoint["public_key"].as_str(), Some(public_key.as_str()));
    }

    // Cut the log's last two entries: the stored checkpoints catch it.
    let db = stack.ledger.to_str().expect("UTF-8").to_owned();
    crate::ledger::execute_blocking(
        &stack.ledger,
        &format!("DELETE FROM ledger_entries WHERE seq >= {}", rows - 2),
    );
    let cut = vigil(["ledger", "verify", "--db", &db], dir.path());
    assert_eq!(cut.code(), 1, "{cut}");
    assert!(cut.stdout.contains("TRUNCATED"), "{cut}");
    // Deleting them too hides the cut from the database alone, not from the published copy.
    crate::ledger::execute_blocking(&stack.ledger, "DELETE FROM ledger_checkpoints");
    vigil(["ledger", "verify", "--db", &db], dir.path())
        .assert_success("the chain alone cannot see the cut");
    let outside = vigil(
        [
            "ledger",
            "verify",
            "--db",
            &db,
            "--checkpoint",
            published.to_str().expect("UTF-8"),
            "--public-key",
            &public_key,
        ],
        dir.path(),
    );
    assert_eq!(outside.code(), 1, "{outside}");
    assert!(outside.stdout.contains("TRUNCATED"), "{outside}");
}
