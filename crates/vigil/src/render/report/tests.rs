//! The report's renderings: every number in its place, and nothing in it read as markup.

use vigil_core::report::{Assumptions, Cause, Period, ReportBuilder};
use vigil_core::time::Timestamp;

use super::{html, text};
use crate::journal::report::ReadReport;

const DAY_MS: i64 = 86_400_000;

fn read() -> ReadReport {
    let mut report = ReportBuilder::new(Period {
        from: Timestamp(0),
        until: Timestamp(90 * DAY_MS),
    })
    .finish(Assumptions::default());
    report.incidents = 4;
    report.outcomes.fixed_by_vigil = 3;
    report.outcomes.paged = 1;
    report.auto_resolved_pct = Some(75.0);
    report.pages_sent = 1;
    report.pages_delivered = 1;
    report.pages_avoided = 3;
    report.hours_returned.incidents_without_page = 3;
    report.hours_returned.hours = 2.25;
    report.top_causes = vec![Cause {
        kind: "<script>alert(1)</script>".to_owned(),
        incidents: 4,
        fixed: 3,
        paged: 1,
    }];
    ReadReport {
        report,
        until_latest_entry: true,
        n_unreadable: 2,
        first_unreadable: Some((
            7,
            "bad payload \"<img src=x onerror=alert(1)>\"\n\u{1b}[2Jforged".to_owned(),
        )),
    }
}

#[test]
fn the_text_names_every_number_and_the_assumptions() {
    let text = text(&read());
    for expected in [
        "vigil report: 1970-01-01T00:00:00.000Z to 1970-04-01T00:00:00.000Z (90 days, ending at the ledger's latest entry)",
        "WARNING: 2 command entries could not be read and are not counted (the first: seq 7:",
        "incidents opened              4",
        "  fixed by vigil              3",
        "  paged a person              1",
        "auto-resolved            75 % of the 4 that ended",
        "pages avoided                 3",
        "time to detect           none measured; 0 without an onset",
        "engineer-hours returned  2.25 h = (3 incidents without a page × 45 min − 0 decisions × 5 min) / 60",
        "--minutes-per-incident",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // The unreadable entry's reason cannot forge a line or drive the terminal.
    assert!(text.contains("\\n\\u{1b}[2Jforged"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn the_page_escapes_every_text_and_runs_nothing() {
    let page = html(&read());
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    // No external asset: nothing is fetched from anywhere.
    for fetch in ["src=\"http", "href=\"http", "url(", "@import"] {
        assert!(!page.contains(fetch), "{fetch} in {page}");
    }
    // Each part of the bar says what it is in words, not only in colour.
    assert!(page.contains("<title>fixed by vigil: 3</title>"), "{page}");
    assert!(page.contains("<title>paged a person: 1</title>"), "{page}");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
}
