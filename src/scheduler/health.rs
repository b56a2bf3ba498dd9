//! What `systemctl status` shows while the daemon runs: a `STATUS=` line with the
//! planned steps, the next step's time, the emails waiting and the last error,
//! refreshed by the planning task after each pass. Building the line is pure; reading
//! the store for it uses indexes only ([`Store::workload`](crate::store::Summaries::workload)).

use jiff::Timestamp;

use super::Shared;
use crate::calendar::Calendar;
use crate::notify;
use crate::store::Workload;

/// The longest error text the line carries; `followup status` and the log have it all.
const ERROR_CHARS: usize = 120;

/// Sends the status line after a pass, when it changed and a service manager listens.
#[derive(Default)]
pub struct StatusReport {
    last: Option<String>,
}

impl StatusReport {
    /// Reads the workload and sends the line if it differs from the last one sent.
    pub async fn refresh(&mut self, shared: &Shared) {
        if !notify::enabled() {
            return;
        }
        let workload = shared.store.call(|s| s.workload()).await;
        let last_error = shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let line = match workload {
            Ok(workload) => status_line(
                &workload,
                last_error.as_deref(),
                &shared.config().calendar,
                shared.now(),
            ),
            Err(e) => format!("cannot read the store: {e}"),
        };
        if self.last.as_ref() != Some(&line) {
            notify::status(&line);
            self.last = Some(line);
        }
    }
}

/// The line, e.g. `3 steps planned, next Tue 24 Nov 2026 17:00 GMT (commitment 12,
/// remind -2h); 1 email waiting to be sent; last error: ...`.
pub fn status_line(
    workload: &Workload,
    last_error: Option<&str>,
    calendar: &Calendar,
    now: Timestamp,
) -> String {
    let mut parts = Vec::new();
    parts.push(match (&workload.next_step, workload.planned_steps) {
        (Some(next), n) => {
            let when = if next.fire_at <= now {
                "due now".to_string()
            } else {
                format!("next {}", calendar.display(next.fire_at))
            };
            format!(
                "{n} step{} planned, {when} (commitment {}, {} {})",
                plural(n),
                next.commitment_id,
                next.kind,
                next.label
            )
        }
        (None, _) => "no steps planned".to_string(),
    });
    if workload.pending_deliveries > 0 {
        let n = workload.pending_deliveries;
        parts.push(format!("{n} email{} waiting to be sent", plural(n)));
    }
    if let Some(error) = last_error {
        let mut error = crate::commitment::one_line(error);
        if error.chars().count() > ERROR_CHARS {
            error = error.chars().take(ERROR_CHARS - 1).collect::<String>() + "…";
        }
        parts.push(format!("last error: {error}"));
    }
    parts.join("; ")
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NextStep;

    fn london() -> Calendar {
        Calendar::new(jiff::tz::TimeZone::get("Europe/London").unwrap())
    }

    #[test]
    fn the_status_line_says_what_is_planned_next_and_what_went_wrong() {
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let idle = Workload::default();
        assert_eq!(status_line(&idle, None, &london(), now), "no steps planned");

        let busy = Workload {
            planned_steps: 3,
            next_step: Some(NextStep {
                fire_at: "2026-11-24T17:00:00Z".parse().unwrap(),
                commitment_id: 12,
                kind: "remind".into(),
                label: "-2h".into(),
            }),
            pending_deliveries: 1,
        };
        assert_eq!(
            status_line(
                &busy,
                Some("delivery 4: Connection refused"),
                &london(),
                now
            ),
            "3 steps planned, next Tue 24 Nov 2026 17:00 GMT (commitment 12, remind -2h); \
             1 email waiting to be sent; last error: delivery 4: Connection refused"
        );
    }

    #[test]
    fn a_long_error_is_cut_to_fit_one_line() {
        let now = Timestamp::UNIX_EPOCH;
        let long = "x".repeat(500) + "\nsecond line";
        let line = status_line(&Workload::default(), Some(&long), &london(), now);
        assert!(line.ends_with('…') && !line.contains('\n'), "{line}");
        assert!(line.chars().count() < 200);
    }
}
