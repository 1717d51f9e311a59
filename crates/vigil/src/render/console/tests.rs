//! The console's pure pieces: charts and URL encoding.

use vigil_core::chart::{EvidenceChart, Level};
use vigil_core::detector::Point;

use super::*;

fn chart(values: &[(i64, f64)]) -> EvidenceChart {
    EvidenceChart {
        title: "tokens <rate>".to_owned(),
        unit: "tokens/s".to_owned(),
        points: values
            .iter()
            .map(|(at, value)| Point {
                at: Timestamp(*at),
                value: *value,
            })
            .collect(),
        levels: vec![
            Level {
                name: "baseline",
                value: 10.0,
            },
            Level {
                name: "fires at",
                value: 30.0,
            },
        ],
    }
}

#[test]
fn a_chart_draws_its_readings_and_names_its_levels_in_words() {
    let svg = chart_svg(&chart(&[(0, 12.0), (15_000, 31.0), (30_000, 50.0)]));
    // The series: a path through every reading, and a dot per reading with its value.
    let d = svg.split("class=\"series\" d=\"").nth(1).unwrap();
    let d = &d[..d.find('"').unwrap()];
    assert_eq!(d.matches('L').count(), 2, "{d}");
    assert!(d.starts_with("M64.0,"), "{d}");
    assert_eq!(svg.matches("<circle").count(), 3);
    // Each level is a dashed line with its name written beside it: never colour alone.
    assert!(
        svg.contains(">baseline 10<") && svg.contains(">fires at 30<"),
        "{svg}"
    );
    assert_eq!(svg.matches("stroke-dasharray").count(), 2);
    // A title and a description for screen readers, the title escaped.
    assert!(svg.contains("<title>tokens &lt;rate&gt;</title>"), "{svg}");
    assert!(svg.contains("<desc>3 readings from"), "{svg}");
}

#[test]
fn a_chart_skips_readings_that_are_not_numbers_and_draws_nothing_without_any() {
    let svg = chart_svg(&chart(&[
        (0, f64::NAN),
        (1_000, 5.0),
        (2_000, f64::INFINITY),
    ]));
    assert_eq!(svg.matches("<circle").count(), 1);
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    assert_eq!(chart_svg(&chart(&[(0, f64::NAN)])), "");
    assert_eq!(chart_svg(&chart(&[])), "");
}

#[test]
fn ids_are_percent_encoded_for_links() {
    assert_eq!(url_encode("inc-1/a b&c=\"<"), "inc-1%2Fa%20b%26c%3D%22%3C");
    assert_eq!(url_encode("plain-Id_1.2~"), "plain-Id_1.2~");
}
