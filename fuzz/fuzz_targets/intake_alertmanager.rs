//! Fuzzes `parse_alertmanager` (`POST /v1/push/alertmanager`, webhook version 4) with
//! arbitrary bytes and checks what must always hold:
//!
//! - parsing never panics, and takes time about linear in the input (libFuzzer's `-timeout`);
//! - a refusal has 1 to `MAX_PROBLEMS` problems, each naming a field of the body (or where a
//!   missing one belongs) with a short lowercase message (`vigil_fuzz::problems`);
//! - an accepted notification says `"version": "4"`, has one alert per element of `alerts`,
//!   and every field equals what the JSON said: labels and annotations as the objects'
//!   string values, times as RFC 3339 reads them, Go's zero time in `endsAt` as unset,
//!   absent optional fields as empty;
//! - written back as a webhook body, it parses to the same notification;
//! - it survives the ledger's JSON round trip, and its signals keep the table's promises:
//!   finite, at most one series per alert, one count per alert (`vigil_fuzz::signals`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use vigil_core::Timestamp;
use vigil_core::intake::{Alert, AlertBatch, Pushed, parse_alertmanager, parse_rfc3339};
use vigil_core::signal::Labels;
use vigil_fuzz::{field, items, text};

fuzz_target!(|data: &[u8]| {
    match parse_alertmanager(data) {
        Err(error) => vigil_fuzz::problems::check(data, &error),
        Ok(batch) => {
            let n_listed = check_against_input(data, &batch);
            let again = parse_alertmanager(&vigil_fuzz::wire::alertmanager(&batch));
            assert_eq!(
                again.as_ref(),
                Ok(&batch),
                "written back, the batch parses differently"
            );
            vigil_fuzz::check_accepted(data, &Pushed::Alerts(batch), n_listed);
        }
    }
});

/// The string map `key` as labels (empty when absent).
fn labels(map: &Map<String, Value>, key: &str) -> Labels {
    field(map, key).map_or_else(Labels::default, |value| {
        let object = value
            .as_object()
            .expect("an accepted label map is an object");
        object
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().expect("a string").to_owned()))
            .collect()
    })
}

fn time(text: &str) -> Timestamp {
    parse_rfc3339(text).expect("an accepted time is RFC 3339")
}

/// Compares the notification with the JSON it came from; returns how many alerts it listed.
fn check_against_input(data: &[u8], batch: &AlertBatch) -> usize {
    let root: Value = serde_json::from_slice(data).expect("accepted, so JSON");
    let root = root.as_object().expect("accepted, so an object");
    assert_eq!(root["version"].as_str(), Some("4"));
    assert_eq!(root["status"].as_str(), Some(batch.status.as_str()));
    assert_eq!(root["receiver"].as_str(), Some(batch.receiver.as_str()));
    assert_eq!(root["groupKey"].as_str(), Some(batch.group_key.as_str()));
    assert_eq!(labels(root, "groupLabels"), batch.group_labels);
    assert_eq!(labels(root, "commonLabels"), batch.common_labels);
    assert_eq!(labels(root, "commonAnnotations"), batch.common_annotations);
    assert_eq!(
        text(root, "externalURL").unwrap_or_default(),
        batch.external_url
    );
    let truncated = field(root, "truncatedAlerts").map(|value| value.as_u64().expect("a count"));
    assert_eq!(truncated.unwrap_or_default(), batch.truncated_alerts);
    let listed = items(root, "alerts");
    assert_eq!(
        listed.len(),
        batch.alerts.len(),
        "an alert lost or invented"
    );
    for (item, alert) in listed.iter().zip(&batch.alerts) {
        check_alert(item, alert);
    }
    listed.len()
}

fn check_alert(item: &Value, alert: &Alert) {
    let map = item.as_object().expect("an alert is an object");
    assert_eq!(map["status"].as_str(), Some(alert.status.as_str()));
    assert_eq!(labels(map, "labels"), alert.labels);
    assert_eq!(labels(map, "annotations"), alert.annotations);
    assert_eq!(
        time(map["startsAt"].as_str().expect("a string")),
        alert.starts_at
    );
    let go_zero = time("0001-01-01T00:00:00Z");
    let ends_at = text(map, "endsAt").map(time).filter(|at| *at != go_zero);
    assert_eq!(ends_at, alert.ends_at);
    assert_eq!(
        text(map, "generatorURL").unwrap_or_default(),
        alert.generator_url
    );
    assert_eq!(
        text(map, "fingerprint").unwrap_or_default(),
        alert.fingerprint
    );
    assert_eq!(
        alert.name(),
        alert.labels.get("alertname").unwrap_or_default()
    );
}
