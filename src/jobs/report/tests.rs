//! The report on a fixed data set, against figures worked out by hand.

use jiff::Timestamp;

use super::*;
use crate::commitment::parse_mailbox;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct Row {
    owner: &'static str,
    kind: Option<&'static str>,
    first_due: &'static str,
    due: &'static str,
    status: Status,
    done: Option<&'static str>,
    updates: &'static [&'static str],
}

fn fact(row: &Row) -> Fact {
    Fact {
        commitment: Commitment {
            id: 0,
            title: "t".into(),
            owner: parse_mailbox(row.owner).unwrap(),
            customer: parse_mailbox("joe@example.org").unwrap(),
            timezone: None,
            due_at: ts(row.due),
            kind: row.kind.map(str::to_string),
            status: row.status,
            note: String::new(),
            external_ref: None,
            reason: None,
            created_at: ts("2026-10-01T00:00:00Z"),
            done_at: row.done.map(ts),
            promise: None,
            outcome: None,
            closed_at: None,
            waiting_since: None,
        },
        first_due: ts(row.first_due),
        updates_sent: row.updates.iter().map(|u| ts(u)).collect(),
    }
}

const ANA: &str = "ana@example.com";
const BOB: &str = "bob@example.com";

/// The period is November 2026. Ana's commitments have no kind, Bob's are quotes.
fn data() -> Vec<Fact> {
    use Status::*;
    let rows = [
        // Ana: kept on time, twice (the second exactly at its time).
        Row {
            owner: ANA,
            kind: None,
            first_due: "2026-11-03T10:00:00Z",
            due: "2026-11-03T10:00:00Z",
            status: Done,
            done: Some("2026-11-03T09:00:00Z"),
            updates: &[],
        },
        Row {
            owner: ANA,
            kind: None,
            first_due: "2026-11-05T10:00:00Z",
            due: "2026-11-05T10:00:00Z",
            status: Done,
            done: Some("2026-11-05T10:00:00Z"),
            updates: &[],
        },
        // Kept two days late, after telling the customer.
        Row {
            owner: ANA,
            kind: None,
            first_due: "2026-11-10T10:00:00Z",
            due: "2026-11-12T10:00:00Z",
            status: Done,
            done: Some("2026-11-12T10:00:00Z"),
            updates: &["2026-11-10T09:00:00Z"],
        },
        // Kept six hours late, telling nobody.
        Row {
            owner: ANA,
            kind: None,
            first_due: "2026-11-15T10:00:00Z",
            due: "2026-11-15T10:00:00Z",
            status: Done,
            done: Some("2026-11-15T16:00:00Z"),
            updates: &[],
        },
        // Still open, past due, never an update: 10 days 14 hours late at the period's end.
        Row {
            owner: ANA,
            kind: None,
            first_due: "2026-11-20T10:00:00Z",
            due: "2026-11-20T10:00:00Z",
            status: Open,
            done: None,
            updates: &[],
        },
        // Still open, the customer told twice.
        Row {
            owner: ANA,
            kind: None,
            first_due: "2026-11-25T10:00:00Z",
            due: "2026-12-03T10:00:00Z",
            status: Open,
            done: None,
            updates: &["2026-11-25T09:00:00Z", "2026-11-28T09:00:00Z"],
        },
        // Outside the period, and cancelled: left out.
        Row {
            owner: ANA,
            kind: None,
            first_due: "2026-10-20T10:00:00Z",
            due: "2026-10-20T10:00:00Z",
            status: Done,
            done: Some("2026-10-25T10:00:00Z"),
            updates: &[],
        },
        Row {
            owner: ANA,
            kind: None,
            first_due: "2026-11-07T10:00:00Z",
            due: "2026-11-07T10:00:00Z",
            status: Cancelled,
            done: None,
            updates: &[],
        },
        // Bob: on time; moved without notice and not due yet; kept two hours late after
        // the period ended; and one first due exactly at the period's end (left out).
        Row {
            owner: BOB,
            kind: Some("quote"),
            first_due: "2026-11-02T12:00:00Z",
            due: "2026-11-02T12:00:00Z",
            status: Done,
            done: Some("2026-11-01T12:00:00Z"),
            updates: &[],
        },
        Row {
            owner: BOB,
            kind: Some("quote"),
            first_due: "2026-11-29T12:00:00Z",
            due: "2026-12-05T12:00:00Z",
            status: Open,
            done: None,
            updates: &[],
        },
        Row {
            owner: BOB,
            kind: Some("quote"),
            first_due: "2026-11-30T23:00:00Z",
            due: "2026-11-30T23:00:00Z",
            status: Done,
            done: Some("2026-12-01T01:00:00Z"),
            updates: &[],
        },
        Row {
            owner: BOB,
            kind: Some("quote"),
            first_due: "2026-12-01T00:00:00Z",
            due: "2026-12-01T00:00:00Z",
            status: Open,
            done: None,
            updates: &[],
        },
    ];
    rows.iter().map(fact).collect()
}

fn figures(group: &str, due: u32, buckets: [u32; 6], median: Option<i64>, updates: u32) -> Figures {
    let kept = buckets[0] + buckets[1];
    let settled = kept + buckets[2] + buckets[3];
    Figures {
        kept_percent: (settled > 0).then(|| (kept * 100 + settled / 2) / settled),
        group: group.into(),
        due,
        kept_on_time: buckets[0],
        kept_after_notice: buckets[1],
        kept_late_no_notice: buckets[2],
        missed_silently: buckets[3],
        open_after_notice: buckets[4],
        open: buckets[5],
        median_lateness_seconds: median,
        updates_sent: updates,
    }
}

#[test]
fn the_report_by_owner_matches_the_figures_worked_out_by_hand() {
    let rows = compute(
        &data(),
        ts("2026-11-01T00:00:00Z"),
        ts("2026-12-01T00:00:00Z"),
        GroupBy::Owner,
    );
    // Ana: lateness 6 h, 2 d and 10 d 14 h: the median is 2 days.
    // Bob: one late by 2 h.
    // Total: 2 h, 6 h, 2 d, 10 d 14 h: the median is (6 h + 2 d) / 2 = 27 h.
    assert_eq!(
        rows,
        vec![
            figures(ANA, 6, [2, 1, 1, 1, 1, 0], Some(2 * 86400), 3),
            figures(BOB, 3, [1, 0, 1, 0, 0, 1], Some(2 * 3600), 0),
            figures("total", 9, [3, 1, 2, 1, 1, 1], Some(27 * 3600), 3),
        ]
    );
}

#[test]
fn the_report_by_kind_groups_the_same_commitments_by_kind() {
    let rows = compute(
        &data(),
        ts("2026-11-01T00:00:00Z"),
        ts("2026-12-01T00:00:00Z"),
        GroupBy::Kind,
    );
    let groups: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(groups, ["(none)", "quote", "total"]);
    assert_eq!(rows[0].due, 6);
    assert_eq!(rows[1].due, 3);
}

#[test]
fn the_table_and_csv_carry_the_same_figures() {
    let rows = compute(
        &data(),
        ts("2026-11-01T00:00:00Z"),
        ts("2026-12-01T00:00:00Z"),
        GroupBy::Owner,
    );
    let text = table(&rows, GroupBy::Owner);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("OWNER") && first.ends_with("UPDATES SENT"),
        "{text}"
    );
    assert!(first.contains("  % KEPT  "), "{text}");
    assert!(text.lines().nth(1).unwrap().contains("2 days"), "{text}");
    assert!(text.lines().last().unwrap().starts_with("total"), "{text}");
    let csv = csv(&rows, GroupBy::Owner).unwrap();
    assert_eq!(
        csv.lines().nth(1).unwrap(),
        "ana@example.com,6,2,1,1,1,1,0,60,172800,3"
    );
    assert_eq!(
        csv.lines().last().unwrap(),
        "total,9,3,1,2,1,1,1,57,97200,3"
    );
}

#[test]
fn an_empty_period_has_only_a_zero_total() {
    let rows = compute(
        &data(),
        ts("2025-01-01T00:00:00Z"),
        ts("2025-02-01T00:00:00Z"),
        GroupBy::Owner,
    );
    assert_eq!(rows, vec![figures("total", 0, [0; 6], None, 0)]);
}

#[test]
fn percent_kept_counts_on_time_and_after_notice_of_those_settled() {
    let rows = compute(
        &data(),
        ts("2026-11-01T00:00:00Z"),
        ts("2026-12-01T00:00:00Z"),
        GroupBy::Owner,
    );
    // Ana: 2 on time + 1 after notice of 5 settled (the one open after notice waits).
    // Bob: 1 of 2 (the one moved and not yet due waits). Total: 4 of 7.
    let kept: Vec<Option<u32>> = rows.iter().map(|r| r.kept_percent).collect();
    assert_eq!(kept, [Some(60), Some(50), Some(57)]);
    let open_only = Figures {
        open: 2,
        open_after_notice: 1,
        ..Figures::default()
    };
    assert_eq!(open_only.kept_percent(), None, "nothing settled yet");
}

#[test]
fn a_period_may_be_written_in_weeks() {
    let days = |n: i64| Some(SignedDuration::from_hours(24 * n));
    assert_eq!(parse_period("2w"), days(14));
    assert_eq!(parse_period("30d"), days(30));
    assert_eq!(parse_period(" 1 week "), days(7));
    assert_eq!(parse_period("12h"), Some(SignedDuration::from_hours(12)));
    for bad in ["1mo", "1y", "0d", "-2w", "soon", ""] {
        assert_eq!(parse_period(bad), None, "{bad}");
    }
}

#[test]
fn the_emailed_report_fits_72_columns_with_a_legend_line_for_every_column() {
    let mut facts = data();
    // A long address and a large count: the lines must still fit.
    for fact in facts.iter_mut().take(3) {
        fact.commitment.owner =
            parse_mailbox("ana.maria.fernandez-oconnor@plumbing-and-heating.example.com").unwrap();
    }
    let rows = compute(
        &facts,
        ts("2026-11-01T00:00:00Z"),
        ts("2026-12-01T00:00:00Z"),
        GroupBy::Owner,
    );
    let context = serde_json::json!({
        "report": {
            "table": email_table(&rows, GroupBy::Owner),
            "from": "Sun 1 Nov 2026 00:00 GMT",
            "to": "Tue 1 Dec 2026 00:00 GMT",
            "by": "owner",
        },
        "date": "Tue 1 Dec 2026 00:00 GMT",
    });
    let email = crate::mail::templates::Templates::builtin()
        .render("report", &context)
        .unwrap();
    for line in email.text.lines() {
        assert!(
            line.chars().count() <= 72,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
    let lines: Vec<&str> = email.text.lines().collect();
    let header = lines
        .iter()
        .find(|l| l.trim_start().starts_with("DUE"))
        .expect("a header line");
    for column in header.split("  ").map(str::trim).filter(|c| !c.is_empty()) {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{column}  ")) && l.len() > column.len() + 4),
            "no legend line for {column}:\n{}",
            email.text
        );
    }
    // Each group's figures follow its name; the total comes last.
    let total = lines.iter().position(|l| *l == "total").unwrap();
    assert!(lines[total + 1].contains("57%"), "{}", email.text);
    assert!(lines[total + 1].contains("1d3h"), "{}", email.text);
}

#[test]
fn a_closed_commitment_counts_as_kept_whatever_its_outcome_never_as_cancelled() {
    use crate::commitment::Outcome;
    let mut facts = Vec::new();
    for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
        let mut fact = fact(&Row {
            owner: ANA,
            kind: Some("quote"),
            first_due: "2026-11-10T10:00:00Z",
            due: "2026-11-10T10:00:00Z",
            status: Status::Done,
            done: Some("2026-11-10T09:00:00Z"),
            updates: &[],
        });
        fact.commitment.id = i as i64 + 1;
        fact.commitment.outcome = Some(outcome);
        fact.commitment.closed_at = Some(ts("2026-11-20T09:00:00Z"));
        facts.push(fact);
    }
    let n = facts.len() as u32;
    let rows = compute(
        &facts,
        ts("2026-11-01T00:00:00Z"),
        ts("2026-12-01T00:00:00Z"),
        GroupBy::Owner,
    );
    assert_eq!(
        rows.last().unwrap(),
        &figures("total", n, [n, 0, 0, 0, 0, 0], None, 0)
    );
    assert_eq!(rows.last().unwrap().kept_percent, Some(100));
}
