//! The RFC 3339 parser: known instants, offsets, fractions, leap days, and every rejection.

use expect_test::expect;

use super::*;
use crate::time::Timestamp;

#[test]
fn known_instants() {
    let cases = [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01t00:00:00z", 0),
        ("1969-12-31T23:59:59.999Z", -1),
        ("1969-12-31T23:59:59.9999Z", -1),
        ("2000-02-29T00:00:00Z", 951_782_400_000),
        ("2026-11-23T12:06:57.884Z", 1_795_435_617_884),
        ("2026-11-23T13:06:57.884999999+01:00", 1_795_435_617_884),
        ("2026-11-23T07:36:57.884-04:30", 1_795_435_617_884),
        ("2026-11-23T12:06:57.8Z", 1_795_435_617_800),
        ("2026-11-23T12:06:57-00:00", 1_795_435_617_000),
        // A leap second is the first second of the next minute.
        ("2016-12-31T23:59:60Z", 1_483_228_800_000),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
    ];
    for (text, millis) in cases {
        assert_eq!(parse_rfc3339(text), Ok(Timestamp(millis)), "{text}");
    }
}

#[test]
fn formatting_then_parsing_gives_the_same_instant() {
    // Steps that are coprime with days and years, across 1900 to 2100.
    let mut millis = -2_208_988_800_000_i64;
    while millis < 4_102_444_800_000 {
        let text = Timestamp(millis).to_rfc3339();
        assert_eq!(parse_rfc3339(&text), Ok(Timestamp(millis)), "{text}");
        millis += 86_399_993_777;
    }
}

#[test]
fn every_malformed_part_is_named() {
    let rejected: Vec<String> = [
        "",
        "2026-3-01T00:00:00Z",
        "2026-03-01",
        "2026-03-01 00:00:00Z",
        "2026-03-01T00:00Z",
        "2026-03-01T00:00:00",
        "2026-03-01T00:00:00.Z",
        "2026-03-01T00:00:00+0100",
        "2026-03-01T00:00:00+24:00",
        "2026-03-01T00:00:00Zjunk",
        "2026-00-01T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2026-03-01T24:00:00Z",
        "2026-03-01T00:60:00Z",
        "2026-03-01T00:00:61Z",
        "+2026-03-01T00:00:00Z",
        "２０２６-03-01T00:00:00Z",
    ]
    .iter()
    .map(|text| format!("{text:?}: {}", parse_rfc3339(text).unwrap_err()))
    .collect();
    expect![[r#"
        "": expected a four-digit year at the end
        "2026-3-01T00:00:00Z": expected a two-digit month at character 7
        "2026-03-01": expected `T` between the date and the time at the end
        "2026-03-01 00:00:00Z": expected `T` between the date and the time at character 11
        "2026-03-01T00:00Z": expected `:` at character 17
        "2026-03-01T00:00:00": expected `Z` or an offset such as `+02:00` at the end
        "2026-03-01T00:00:00.Z": expected digits after the decimal point at character 21
        "2026-03-01T00:00:00+0100": expected `:` at character 23
        "2026-03-01T00:00:00+24:00": the offset must be at most 23:59, found 24:00
        "2026-03-01T00:00:00Zjunk": unexpected text after the time offset at character 21
        "2026-00-01T00:00:00Z": the month must be 01 to 12, found 00
        "2026-04-31T00:00:00Z": the day must be 01 to 30 in 2026-04, found 31
        "1900-02-29T00:00:00Z": the day must be 01 to 28 in 1900-02, found 29
        "2026-03-01T24:00:00Z": the hour must be 00 to 23, found 24
        "2026-03-01T00:60:00Z": the minutes must be 00 to 59, found 60
        "2026-03-01T00:00:61Z": the seconds must be 00 to 60, found 61
        "+2026-03-01T00:00:00Z": expected a four-digit year at character 1
        "２０２６-03-01T00:00:00Z": expected a four-digit year at character 1"#]]
    .assert_eq(&rejected.join("\n"));
}
