use super::*;

fn evidence() -> Vec<EvidenceItem> {
    vec![
        EvidenceItem::new(
            's',
            "litellm_total_tokens{api_key_alias=\"team-a\"}".to_owned(),
            "tokens of team-a: 1,200 per second, 150 per second 15 min before".to_owned(),
            vec![1200.0, 150.0],
        ),
        EvidenceItem::new(
            'f',
            "api_key=team-a".to_owned(),
            "finding token-spike on api_key=team-a".to_owned(),
            Vec::new(),
        ),
    ]
}

fn ids() -> (String, String) {
    let items = evidence();
    (
        items
            .first()
            .map(|item| item.id.clone())
            .unwrap_or_default(),
        items.get(1).map(|item| item.id.clone()).unwrap_or_default(),
    )
}

/// One line per outcome: what survived and what was dropped, so the cases read as a table.
fn outcome(answer: &str) -> String {
    let checked = check(answer, &evidence(), "opened at 12:00; 8 keys", 0.02);
    let mut lines = vec![format!("claims {}", checked.claims)];
    for hypothesis in &checked.hypotheses {
        let ids: Vec<&str> = hypothesis
            .evidence
            .iter()
            .map(|cited| cited.id.as_str())
            .collect();
        lines.push(format!("kept {} {:?}", hypothesis.kind_name(), ids));
    }
    if let Some(narrative) = &checked.narrative {
        lines.push(format!("narrative {narrative}"));
    }
    if let Some(next) = &checked.next_check {
        lines.push(format!("next {next}"));
    }
    for dropped in &checked.dropped {
        lines.push(format!(
            "dropped {}: {}",
            dropped.claim,
            dropped.why.as_str()
        ));
    }
    lines.join("\n")
}

#[test]
fn a_good_answer_survives_whole() {
    let (series, finding) = ids();
    let answer = format!(
        r#"{{"hypotheses":[{{"kind":"runaway_key","subject":"team-a","evidence":[{{"id":"{series}","value":1200}},{{"id":"{finding}"}}]}}],
        "narrative":"Key team-a went from 150 to 1,200 tokens per second.","next_check":"Ask team-a's owner what changed."}}"#
    );
    let shown = outcome(&answer);
    assert!(shown.starts_with("claims 5\nkept runaway_key"), "{shown}");
    assert!(
        shown.contains("narrative Key team-a went from 150 to 1,200"),
        "{shown}"
    );
    assert!(!shown.contains("dropped"), "{shown}");
}

#[test]
fn each_bad_claim_is_dropped_and_counted() {
    let (series, finding) = ids();
    let cases: Vec<(String, &[&str])> = vec![
        // Hallucinated evidence: an id no tool returned; the hypothesis has nothing left.
        (
            r#"{"hypotheses":[{"kind":"runaway_key","evidence":[{"id":"s-deadbeef"}]}],"narrative":"A key ran away."}"#.to_owned(),
            &["hypothesis 1, evidence s-deadbeef: unknown_evidence", "hypothesis 1: no_valid_evidence"],
        ),
        // A number far from the store's.
        (
            format!(r#"{{"hypotheses":[{{"kind":"runaway_key","evidence":[{{"id":"{series}","value":9000}}]}}],"narrative":"x"}}"#),
            &["number_mismatch", "hypothesis 1: no_valid_evidence"],
        ),
        // Within 2 %: kept.
        (
            format!(r#"{{"hypotheses":[{{"kind":"runaway_key","evidence":[{{"id":"{series}","value":1210}}]}}],"narrative":"x"}}"#),
            &[],
        ),
        // The item is about another key.
        (
            format!(r#"{{"hypotheses":[{{"kind":"runaway_key","evidence":[{{"id":"{finding}","about":"team-b"}}]}}],"narrative":"x"}}"#),
            &["about_mismatch", "no_valid_evidence"],
        ),
        // A subject its evidence does not name.
        (
            format!(r#"{{"hypotheses":[{{"kind":"runaway_key","subject":"team-z","evidence":[{{"id":"{finding}"}}]}}],"narrative":"x"}}"#),
            &["hypothesis 1: subject_mismatch"],
        ),
        // A kind outside the closed set.
        (
            format!(r#"{{"hypotheses":[{{"kind":"cosmic_rays","evidence":[{{"id":"{finding}"}}]}}],"narrative":"x"}}"#),
            &["hypothesis 1: unknown_kind"],
        ),
        // A narrative with a number no evidence holds.
        (
            format!(r#"{{"hypotheses":[{{"kind":"unknown","evidence":[{{"id":"{finding}"}}]}}],"narrative":"Spend rose by 4,711 dollars."}}"#),
            &["narrative: unsupported_text"],
        ),
        // Malformed JSON, and an answer that omits the schema.
        ("{\"hypotheses\": [".to_owned(), &["answer: schema_mismatch"]),
        ("The key team-a is running away.".to_owned(), &["answer: schema_mismatch"]),
        (r#"{"answer":"runaway_key"}"#.to_owned(), &["answer: schema_mismatch"]),
    ];
    for (answer, expected) in cases {
        let shown = outcome(&answer);
        let dropped: Vec<&str> = shown
            .lines()
            .filter(|line| line.starts_with("dropped"))
            .collect();
        assert_eq!(dropped.len(), expected.len(), "{answer}\n{shown}");
        for want in expected {
            assert!(
                dropped.iter().any(|line| line.contains(want)),
                "{answer}: wanted {want}\n{shown}"
            );
        }
    }
}

#[test]
fn a_fenced_answer_is_read_and_text_is_cleaned() {
    let (_, finding) = ids();
    let answer = format!(
        "```json\n{{\"hypotheses\":[{{\"kind\":\"unknown\",\"evidence\":[{{\"id\":\"{finding}\"}}]}}],\"narrative\":\"line\\u001b[31m one\\nline two\"}}\n```"
    );
    let checked = check(&answer, &evidence(), "", 0.02);
    assert_eq!(checked.hypotheses.len(), 1);
    assert_eq!(checked.narrative.as_deref(), Some("line [31m one line two"));
}

#[test]
fn numbers_inside_names_are_not_claims() {
    assert_eq!(
        numbers_in("gpt-4o and claude-3-5-sonnet on team-a1"),
        Vec::<f64>::new()
    );
    assert_eq!(
        numbers_in("from 150 to 1,200 (+700%), $3.50, 4x"),
        vec![150.0, 1200.0, 700.0, 3.5, 4.0]
    );
}

#[test]
fn too_many_hypotheses_are_dropped() {
    let (_, finding) = ids();
    let one = format!(r#"{{"kind":"unknown","evidence":[{{"id":"{finding}"}}]}}"#);
    let answer = format!(
        r#"{{"hypotheses":[{}],"narrative":""}}"#,
        vec![one; 7].join(",")
    );
    let checked = check(&answer, &evidence(), "", 0.02);
    assert_eq!(checked.hypotheses.len(), 5);
    assert_eq!(
        checked
            .dropped
            .iter()
            .filter(|d| d.why == DropReason::TooMany)
            .count(),
        2
    );
    assert_eq!(checked.narrative, None);
}
