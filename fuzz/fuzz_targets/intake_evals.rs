//! Fuzzes `parse_evals` (`POST /v1/push/evals`) with arbitrary bytes and checks what must
//! always hold:
//!
//! - parsing never panics, and takes time about linear in the input (libFuzzer's `-timeout`);
//! - a refusal has 1 to `MAX_PROBLEMS` problems, each naming a field of the body (or where a
//!   missing one belongs) with a short lowercase message; a body that is not JSON gets one
//!   problem with its line and column (`vigil_fuzz::problems`);
//! - an accepted batch has one result per element of `results`, each equal to what the JSON
//!   said (names not blank and at most 256 characters, scores within `MAX_ABS_SCORE`, `null`
//!   as absent, `ts` as RFC 3339 reads it), and no field outside the documented ones;
//! - written back as a push body, it parses to the same batch;
//! - it survives the ledger's JSON round trip, and its signals keep the table's promises:
//!   finite, bounded per result, one case counted per result (`vigil_fuzz::signals`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::intake::evals::MAX_ABS_SCORE;
use vigil_core::intake::{EvalBatch, Pushed, parse_evals, parse_rfc3339};
use vigil_fuzz::{field, is_name, text};

const FIELDS: [&str; 10] = [
    "suite",
    "case",
    "passed",
    "score",
    "model",
    "prompt_name",
    "prompt_version",
    "input_tokens",
    "run_id",
    "ts",
];

fuzz_target!(|data: &[u8]| {
    match parse_evals(data) {
        Err(error) => vigil_fuzz::problems::check(data, &error),
        Ok(batch) => {
            let n_listed = check_against_input(data, &batch);
            let again = parse_evals(&vigil_fuzz::wire::evals(&batch));
            assert_eq!(
                again.as_ref(),
                Ok(&batch),
                "written back, the batch parses differently"
            );
            vigil_fuzz::check_accepted(data, &Pushed::Evals(batch), n_listed);
        }
    }
});

/// Compares the batch with the JSON it came from; returns how many results the JSON listed.
fn check_against_input(data: &[u8], batch: &EvalBatch) -> usize {
    let root: serde_json::Value = serde_json::from_slice(data).expect("accepted, so JSON");
    let root = root.as_object().expect("accepted, so an object");
    assert!(
        root.keys().all(|key| key == "results"),
        "an unknown field accepted"
    );
    let items = root["results"].as_array().expect("`results` is an array");
    assert_eq!(
        items.len(),
        batch.results.len(),
        "a result lost or invented"
    );
    for (item, result) in items.iter().zip(&batch.results) {
        let map = item.as_object().expect("a result is an object");
        assert!(
            map.keys().all(|key| FIELDS.contains(&key.as_str())),
            "an unknown field accepted: {item}"
        );
        for (key, name) in [
            ("suite", &result.suite),
            ("case", &result.case),
            ("model", &result.model),
            ("prompt_name", &result.prompt_name),
            ("prompt_version", &result.prompt_version),
        ] {
            assert_eq!(text(map, key), Some(name.as_str()), "{key}");
            assert!(is_name(name), "{key}: {name:?}");
        }
        assert_eq!(map["passed"].as_bool(), Some(result.passed));
        let score = field(map, "score").map(|score| score.as_f64().expect("a number"));
        assert_eq!(score.map(f64::to_bits), result.score.map(f64::to_bits));
        assert!(
            result
                .score
                .is_none_or(|score| score.abs() <= MAX_ABS_SCORE)
        );
        let tokens = field(map, "input_tokens").map(|tokens| tokens.as_u64().expect("a count"));
        assert_eq!(tokens, result.input_tokens);
        assert_eq!(text(map, "run_id"), result.run_id.as_deref());
        assert!(result.run_id.as_deref().is_none_or(is_name));
        let ran_at = text(map, "ts").map(|ts| parse_rfc3339(ts).expect("an RFC 3339 time"));
        assert_eq!(ran_at, result.ran_at);
    }
    items.len()
}
