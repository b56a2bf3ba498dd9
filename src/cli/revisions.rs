//! The revisions part of `show`: moves of the due time, edits, and the actions that
//! keep it (done, cancel, snooze, hold, send now, close, wait), each with who took it and how.

use super::show::print_table;
use crate::calendar::Calendar;
use crate::store::RevisionRecord;

/// Prints the revisions of one commitment under their headings; `due_text` shows a
/// stored due time.
pub(super) fn print(
    cal: &Calendar,
    revisions: &[RevisionRecord],
    due_text: &dyn Fn(&str) -> String,
) {
    let (edits, others): (Vec<&RevisionRecord>, Vec<&RevisionRecord>) =
        revisions.iter().partition(|r| !r.changes.is_empty());
    let (taken, moves): (Vec<&RevisionRecord>, Vec<&RevisionRecord>) =
        others.into_iter().partition(|r| is_taken(r));
    if !moves.is_empty() {
        println!();
        println!("Due time changes:");
        let rows: Vec<Vec<String>> = moves
            .iter()
            .map(|r| {
                let told = if r.undone.is_some() {
                    "undone: customer not told"
                } else if r.notify || r.automatic {
                    "customer told"
                } else {
                    "customer not told"
                };
                vec![
                    format!("  {}", cal.display(r.created_at)),
                    format!("{} -> {}", due_text(&r.old_due), due_text(&r.new_due)),
                    r.source.clone(),
                    who(r),
                    told.to_string(),
                    r.undone
                        .clone()
                        .or_else(|| r.reason.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        print_table(&["  WHEN", "DUE", "BY", "WHO", "NOTICE", "REASON"], &rows);
    }
    if !edits.is_empty() {
        println!();
        println!("Edits:");
        let rows: Vec<Vec<String>> = edits
            .iter()
            .flat_map(|r| {
                r.changes.iter().map(|change| {
                    vec![
                        format!("  {}", cal.display(r.created_at)),
                        who(r),
                        r.source.clone(),
                        crate::actions::describe(change),
                    ]
                })
            })
            .collect();
        print_table(&["  WHEN", "WHO", "BY", "CHANGE"], &rows);
    }
    if !taken.is_empty() {
        println!();
        println!("Actions:");
        let rows: Vec<Vec<String>> = taken
            .iter()
            .map(|r| {
                let detail = match (r.action.as_deref(), &r.step_key, r.until_at) {
                    (Some("snooze"), _, Some(until)) => format!("until {}", cal.display(until)),
                    (Some("close" | "wait"), _, _) => r.reason.clone().unwrap_or_default(),
                    (_, Some(key), _) => match &r.reason {
                        Some(reason) => format!("{key}: {reason}"),
                        None => key.clone(),
                    },
                    _ => String::new(),
                };
                vec![
                    format!("  {}", cal.display(r.created_at)),
                    r.action.clone().unwrap_or_default(),
                    who(r),
                    detail,
                ]
            })
            .collect();
        print_table(&["  WHEN", "ACTION", "WHO", "DETAIL"], &rows);
    }
}

/// Whether revision `r` is an action that keeps the due time (done, cancel, snooze,
/// hold, send now), which `show` lists apart from the moves and the edits.
fn is_taken(r: &RevisionRecord) -> bool {
    matches!(
        r.action.as_deref(),
        Some("done" | "cancel" | "snooze" | "hold" | "send_now" | "close" | "wait")
    )
}

/// Who took the action of revision `r` and how: `ana@example.com (by email link)`,
/// `daemon`; empty for rows older than the record of who.
fn who(r: &RevisionRecord) -> String {
    match (r.actor.as_deref(), r.via.as_deref()) {
        (Some(actor), Some(via)) => format!("{actor} ({})", crate::actions::how(via)),
        (Some(actor), None) => actor.to_string(),
        (None, Some("daemon")) => "daemon".to_string(),
        (None, Some(via)) => crate::actions::how(via),
        (None, None) => String::new(),
    }
}
