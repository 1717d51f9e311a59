//! Checks shared by the fuzz targets of the pushed-payload parsers (`vigil_core::intake`):
//! what every refusal must look like ([`problems`]), what the signals of every accepted
//! payload must satisfy ([`signals`]), the ledger's JSON round trip, and each batch written
//! back in its wire format ([`wire`]) so that a target can parse it again.
//!
//! The targets own the checks that need the input: each compares the batch it got with the
//! JSON it parsed (an oracle written independently of the parser, from the module docs).

pub mod problems;
pub mod signals;
pub mod wire;

use serde_json::{Map, Value};
use vigil_core::intake::{MAX_NAME_CHARS, Pushed, Signal};

/// Everything an accepted payload must satisfy whatever its kind: it carries the items the
/// input listed, survives the ledger, and its signals keep their promises.
pub fn check_accepted(data: &[u8], pushed: &Pushed, n_listed: usize) {
    assert_eq!(pushed.n_items(), n_listed, "n_items differs from the input");
    check_ledger_round_trip(pushed);
    signals::check(data, pushed);
}

/// The payload as the ledger records it (JSON) reads back equal, and writes the same text;
/// its signals survive the same trip.
pub fn check_ledger_round_trip(pushed: &Pushed) {
    let json = serde_json::to_string(pushed).expect("an accepted batch serializes");
    let back: Pushed = serde_json::from_str(&json).expect("the ledger form reads back");
    assert_eq!(&back, pushed, "{json}");
    assert_eq!(serde_json::to_string(&back).expect("serializes"), json);
    let signals = pushed.signals();
    let signals_json = serde_json::to_string(&signals).expect("signals serialize");
    let signals_back: Vec<Signal> = serde_json::from_str(&signals_json).expect("signals read back");
    assert_eq!(signals_back, signals, "{signals_json}");
}

/// The value of `key`, `null` counting as absent (as the parsers read optional fields).
#[must_use]
pub fn field<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|value| !value.is_null())
}

/// The string value of `key`, `null` counting as absent.
#[must_use]
pub fn text<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    field(map, key).map(|value| value.as_str().expect("an accepted field is a string"))
}

/// The elements of the optional array `key` (none when absent or `null`).
#[must_use]
pub fn items<'v>(map: &'v Map<String, Value>, key: &str) -> &'v [Value] {
    field(map, key).map_or(&[], |value| {
        value.as_array().expect("an accepted field is an array")
    })
}

/// Whether `text` is a valid identifier: not blank, at most `MAX_NAME_CHARS` characters.
#[must_use]
pub fn is_name(text: &str) -> bool {
    !text.trim().is_empty() && text.chars().count() <= MAX_NAME_CHARS
}
