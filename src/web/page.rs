//! What each link's page says and does, given a checked claim and a store connection:
//! [`Visit::show`] (GET and HEAD) only reads; [`Visit::act`] (the POST of the shown
//! form) calls the one action the link grants, through [`crate::actions`] like the
//! command line, as its recipient by email link. Runs on a blocking thread.

use std::sync::Arc;

use axum::http::StatusCode;
use jiff::Timestamp;

use super::forms::{
    DELAY_CHOICES, Fields, SNOOZE_CHOICES, chosen_time, form, hidden, outcome_choices, paragraph,
    text_field, time_choices,
};
use super::html::{escape, facts};
use super::link::{Action, Claim};
use super::open::{self, sentence};
use super::states::States;
use crate::actions::{self, ActionError, Actor, CommitmentState, Outcome, Via};
use crate::commitment::{DueMove, Status};
use crate::config::Config;
use crate::mail::compose::Firing;
use crate::mail::context::{StepInfo, name_or_address};
use crate::planner::StepKind;
use crate::rule::rule_for;
use crate::store::Store;

/// A page to answer with.
#[derive(Debug)]
pub struct Page {
    /// The HTTP status.
    pub status: StatusCode,
    /// Its title, plain text.
    pub title: String,
    /// Its body, markup.
    pub body: String,
}

impl Page {
    fn ok(title: String, body: String) -> Page {
        Page {
            status: StatusCode::OK,
            title,
            body,
        }
    }

    /// The page for an action that failed; [`Invalid`] for a commitment that is gone,
    /// answered as a link that does not check.
    fn failed(e: ActionError) -> Result<Page, Invalid> {
        match e {
            ActionError::NotFound(_) => Err(Invalid),
            ActionError::NotOpen { status, .. } => Ok(Page {
                status: StatusCode::CONFLICT,
                title: "Nothing to do".into(),
                body: paragraph(&format!("This promise is {status}."), Some("warn")),
            }),
            e @ ActionError::Field { .. } => Ok(Page {
                status: StatusCode::BAD_REQUEST,
                title: "That did not work".into(),
                body: paragraph(&sentence(&e.to_string()), Some("warn")),
            }),
            ActionError::Invalid(why) => Ok(Page {
                status: StatusCode::BAD_REQUEST,
                title: "That did not work".into(),
                body: paragraph(&sentence(&why), Some("warn")),
            }),
            ActionError::Store(e) => {
                tracing::error!(cause = %e, "a web page cannot read or write the store");
                Ok(Page {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    title: "Try again in a minute".into(),
                    body: paragraph(
                        "The promise could not be read or changed just now; nothing was changed.",
                        Some("warn"),
                    ),
                })
            }
        }
    }
}

/// The claim names no commitment that can be shown: answer as for a bad link.
#[derive(Debug)]
pub struct Invalid;

/// One use of a link: what every page of it is made from.
pub struct Visit<'a> {
    /// The web's store connection.
    pub store: &'a dyn Store,
    /// The running config.
    pub config: &'a Config,
    /// What the link grants.
    pub claim: &'a Claim,
    /// The link to the Open page for the same recipient, which every page offers.
    pub open_link: &'a str,
    /// The moment of the request.
    pub now: Timestamp,
}

impl Visit<'_> {
    fn state(&self) -> Result<CommitmentState, Result<Page, Invalid>> {
        actions::state(self.store, self.config, self.claim.commitment).map_err(Page::failed)
    }

    /// The page a link shows before acting (GET, HEAD): never writes.
    pub fn show(&self) -> Result<Page, Invalid> {
        if self.claim.action == Action::Open {
            return self.open_page();
        }
        // The state is read in one statement.
        match self.state() {
            Ok(state) => self.shown(&state, &Fields::default(), None),
            Err(page) => page,
        }
    }

    /// What [`Visit::show`] shows, made from the state kept in `states` while the store
    /// has not changed and `config` (the Arc this visit's config came from) is current.
    /// The Open page is read afresh: it is one view of many rows.
    pub fn show_kept(
        &self,
        states: &States<CommitmentState, Config>,
        config: &Arc<Config>,
    ) -> Result<Page, Invalid> {
        if self.claim.action == Action::Open {
            return self.open_page();
        }
        let id = self.claim.commitment;
        match states.get(id, config, || actions::state(self.store, self.config, id)) {
            Ok(state) => self.shown(&state, &Fields::default(), None),
            Err(e) => Page::failed(e),
        }
    }

    /// The Open page: the commitment with its timeline, emails and revisions, read as
    /// one view.
    fn open_page(&self) -> Result<Page, Invalid> {
        let view = match self
            .store
            .commitment_view(self.claim.commitment, StepKind::CustomerUpdate)
        {
            Ok(view) => view,
            Err(e) => return Page::failed(e.into()),
        };
        match actions::viewed(self.config, &view) {
            Ok(state) => Ok(Page::ok(
                state.commitment.title.clone(),
                open::body(self.config, &state, &view, self.now),
            )),
            Err(e) => Page::failed(e),
        }
    }

    /// The page of the link's action for `state`, its form filled from `fields`, with
    /// `problem` (what was wrong with the last try) above it.
    fn shown(
        &self,
        state: &CommitmentState,
        fields: &Fields,
        problem: Option<&str>,
    ) -> Result<Page, Invalid> {
        let Visit {
            config,
            claim,
            open_link,
            now,
            ..
        } = *self;
        let cal = &config.calendar;
        let c = &state.commitment;
        let title = &c.title;
        if claim.action == Action::Open {
            return self.open_page();
        }
        // A done commitment can still be closed with how it ended, once.
        let closing = claim.action == Action::Close;
        let moot = match (&state.ended, &state.closed) {
            (Some(ended), _) if closing => Some(ended),
            (_, Some(_)) if closing && c.status == Status::Done => None,
            (_, closed) => closed.as_ref(),
        };
        if let Some(earlier) = moot {
            let body =
                paragraph(&sentence(&earlier.describe(cal)), Some("done")) + &more(open_link);
            return Ok(Page::ok(format!("'{title}'"), body));
        }
        let summary = facts(&[
            ("Customer", c.customer.to_string()),
            ("Due", cal.display(c.due_at)),
            ("Owner", c.owner.to_string()),
        ]);
        let mut body = problem
            .map(|p| paragraph(&sentence(p), Some("warn")))
            .unwrap_or_default();
        body.push_str(&summary);
        let reason = Fields::text(&fields.reason).unwrap_or(c.reason.as_deref().unwrap_or(""));
        let page_title = match claim.action {
            Action::Open => unreachable!("answered above"),
            Action::Done => {
                body.push_str(&paragraph(
                    "Reminders stop; the check-in follows if the rule has one.",
                    Some("note"),
                ));
                body.push_str(&form("", "Mark done"));
                format!("Mark '{title}' done?")
            }
            Action::Cancel => {
                body.push_str(&paragraph(
                    "Reminders and customer updates stop; the customer is not told.",
                    Some("note"),
                ));
                body.push_str(&form("", "Cancel it"));
                format!("Cancel '{title}'?")
            }
            Action::Delay => {
                let inner =
                    time_choices(
                        "New due time",
                        &DELAY_CHOICES,
                        c.due_at.max(now),
                        cal,
                        Fields::text(&fields.choice),
                    ) + &text_field("reason", "Reason, in words for the customer", reason, true);
                body.push_str(&form(&inner, "Show the customer's email"));
                body.push_str(&paragraph(
                    "Nothing is sent until you confirm on the next page.",
                    Some("note"),
                ));
                format!("Delay '{title}'")
            }
            Action::Snooze => {
                if let Some(until) = state.snoozed_until.filter(|u| *u > now) {
                    body.push_str(&paragraph(
                        &format!("Reminders are snoozed until {}.", cal.display(until)),
                        Some("note"),
                    ));
                }
                let inner = time_choices(
                    "No reminders",
                    &SNOOZE_CHOICES,
                    now,
                    cal,
                    Fields::text(&fields.choice),
                );
                body.push_str(&form(&inner, "Snooze reminders"));
                body.push_str(&paragraph(
                    "The due time and what the customer is told do not change.",
                    Some("note"),
                ));
                format!("Snooze reminders for '{title}'")
            }
            Action::Close => {
                let first = if c.status == Status::Open {
                    "It is marked done first; its "
                } else {
                    "Its "
                };
                body.push_str(&paragraph(
                    &format!("{first}follow-ups after the work stop. It counts as kept."),
                    Some("note"),
                ));
                let inner = outcome_choices(Fields::text(&fields.outcome));
                body.push_str(&form(&inner, "Close it"));
                format!("Close '{title}'")
            }
            Action::Wait | Action::Resume => {
                match (&state.waiting, claim.action) {
                    (Some(waiting), Action::Wait) => {
                        body.push_str(&paragraph(&sentence(&waiting.describe(cal)), Some("done")));
                    }
                    (None, Action::Wait) => {
                        let reason = Fields::text(&fields.reason).unwrap_or("");
                        let inner = text_field("reason", "What you are waiting for", reason, true);
                        body.push_str(&form(&inner, "Wait on the customer"));
                        body.push_str(&paragraph(
                            "Reminders, updates, alerts and escalations pause until you resume; \
                             the due time then moves by the time waited.",
                            Some("note"),
                        ));
                    }
                    (Some(waiting), _) => {
                        let since = waiting.at.map(|at| cal.display(at)).unwrap_or_default();
                        let why = waiting.detail.as_deref().map(|d| format!(": {d}"));
                        body.push_str(&paragraph(
                            &format!(
                                "Waiting on the customer since {since}{}.",
                                why.unwrap_or_default()
                            ),
                            None,
                        ));
                        body.push_str(&form("", "Resume"));
                        body.push_str(&paragraph(
                            "The due time moves by the time waited; the customer is not told.",
                            Some("note"),
                        ));
                    }
                    (None, _) => {
                        body.push_str(&paragraph(
                            "It is not waiting on the customer.",
                            Some("done"),
                        ));
                    }
                }
                match claim.action {
                    Action::Wait => format!("Wait on the customer for '{title}'?"),
                    _ => format!("Resume '{title}'?"),
                }
            }
            Action::SendNow | Action::Hold => {
                let Some(update) = &state.next_update else {
                    body.push_str(&paragraph(
                        "No customer update is waiting to go.",
                        Some("done"),
                    ));
                    body.push_str(&more(open_link));
                    return Ok(Page::ok(format!("'{title}'"), body));
                };
                body.push_str(&paragraph(
                    &format!(
                        "The update to {} goes {}.",
                        name_or_address(&c.customer),
                        cal.display(update.fire_at)
                    ),
                    None,
                ));
                let email = self.customer_email(
                    state,
                    StepKind::CustomerUpdate,
                    &update.key,
                    None,
                    update.fire_at,
                );
                body.push_str(&email_block(
                    &format!("What {} will be told", name_or_address(&c.customer)),
                    email,
                ));
                let key = hidden("update", &update.key);
                if claim.action == Action::SendNow {
                    body.push_str(&form(&key, "Send it now"));
                    format!("Send the update on '{title}' now?")
                } else {
                    let inner = key + &text_field("reason", "Why (for the record)", "", true);
                    body.push_str(&form(&inner, "Hold it"));
                    body.push_str(&paragraph(
                        "You are still reminded at the due time.",
                        Some("note"),
                    ));
                    format!("Hold the update on '{title}'?")
                }
            }
        };
        body.push_str(&more(open_link));
        let mut page = Page::ok(page_title, body);
        if problem.is_some() {
            page.status = StatusCode::BAD_REQUEST;
        }
        Ok(page)
    }

    /// Takes the action the link grants with what `fields` chose, and says what
    /// happened.
    pub fn act(&self, fields: &Fields) -> Result<Page, Invalid> {
        let state = match self.state() {
            Ok(state) => state,
            Err(page) => return page,
        };
        let Visit {
            store,
            config,
            claim,
            open_link,
            now,
        } = *self;
        let again = |problem: &str| self.shown(&state, fields, Some(problem));
        let actor = Actor {
            who: claim.recipient.clone(),
            via: Via::Web,
        };
        let id = claim.commitment;
        let cal = &config.calendar;
        let moves_on = matches!(
            claim.action,
            Action::Delay | Action::Snooze | Action::Wait | Action::Resume
        );
        if state.closed.is_some() && moves_on {
            return self.shown(&state, &Fields::default(), None);
        }
        let outcome = match claim.action {
            Action::Open => return self.shown(&state, &Fields::default(), None),
            Action::Done => actions::done(store, config, id, &actor, now),
            Action::Cancel => actions::cancel(store, config, id, &actor, now),
            Action::Snooze => match chosen_time(fields, &SNOOZE_CHOICES, now, cal) {
                Ok(until) => actions::snooze(store, config, id, until, &actor, now),
                Err(problem) => return again(&problem),
            },
            Action::Delay => {
                let until = match Fields::text(&fields.until) {
                    Some(text) => text
                        .parse::<Timestamp>()
                        .map_err(|_| "the time is not readable".to_string()),
                    None => chosen_time(
                        fields,
                        &DELAY_CHOICES,
                        state.commitment.due_at.max(now),
                        cal,
                    ),
                };
                let until = match until {
                    Ok(until) => until,
                    Err(problem) => return again(&problem),
                };
                let Some(reason) = Fields::text(&fields.reason) else {
                    return again("the reason is empty: say why, in words for the customer");
                };
                if fields.step.as_deref() != Some("confirm") {
                    return Ok(self.delay_preview(&state, until, reason));
                }
                actions::delay(store, config, id, until, reason, true, &actor, now)
            }
            Action::Close => match Fields::text(&fields.outcome).map(str::parse) {
                Some(Ok(ending)) => actions::close(store, config, id, ending, &actor, now),
                Some(Err(problem)) => return again(&problem),
                None => return again("choose how it ended"),
            },
            Action::Wait => {
                let reason = Fields::text(&fields.reason).unwrap_or("");
                actions::wait(store, config, id, reason, &actor, now)
            }
            Action::Resume => actions::resume(store, config, id, &actor, now),
            Action::SendNow | Action::Hold => {
                let Some(key) = Fields::text(&fields.update) else {
                    return again("the form does not say which update");
                };
                if claim.action == Action::SendNow {
                    actions::send_now(store, config, id, key, &actor, now)
                } else {
                    let reason = Fields::text(&fields.reason).unwrap_or("");
                    actions::hold(store, config, id, key, reason, &actor, now)
                }
            }
        };
        let body = match outcome {
            Ok(Outcome::Acted(acted)) => {
                tracing::info!(commitment = id, action = %claim.action, via = "web", "action taken");
                let said: String = acted
                    .said
                    .iter()
                    .map(|line| paragraph(&sentence(line.trim_end_matches('.')), Some("done")))
                    .collect();
                return Ok(Page::ok(
                    done_title(claim.action).into(),
                    said + &more(open_link),
                ));
            }
            Ok(Outcome::Already(earlier)) => {
                paragraph(&sentence(&earlier.describe(cal)), Some("done")) + &more(open_link)
            }
            Err(ActionError::Field { field, problem }) => {
                let field = match field {
                    "until" => "the time",
                    "reason" => "the reason",
                    other => other,
                };
                return again(&format!("{field} {problem}"));
            }
            Err(e) => return Page::failed(e),
        };
        Ok(Page::ok("Nothing changed".into(), body))
    }
}

/// A link to the whole promise.
fn more(open_link: &str) -> String {
    format!(
        "<p><a href=\"{}\">See the whole promise: timeline, emails, what was done</a></p>\n",
        escape(open_link)
    )
}

fn done_title(action: Action) -> &'static str {
    match action {
        Action::Done => "Marked done",
        Action::Cancel => "Cancelled",
        Action::Delay => "Delayed",
        Action::Snooze => "Reminders snoozed",
        Action::SendNow => "The update goes now",
        Action::Hold => "The update is held",
        Action::Close => "Closed",
        Action::Wait => "Waiting on the customer",
        Action::Resume => "Resumed",
        Action::Open => "",
    }
}

impl Visit<'_> {
    /// The Delay page's second step: the customer's email as it will go, and the form
    /// that confirms (carrying the chosen time as an exact instant, so that it does not
    /// move).
    fn delay_preview(&self, state: &CommitmentState, until: Timestamp, reason: &str) -> Page {
        let (config, open_link, now) = (self.config, self.open_link, self.now);
        let cal = &config.calendar;
        let c = &state.commitment;
        let mut body = facts(&[
            ("Customer", c.customer.to_string()),
            ("Due now", cal.display(c.due_at)),
            ("New due time", cal.display(until)),
        ]);
        let email =
            self.customer_email(state, StepKind::DelayNotice, "", Some((until, reason)), now);
        body.push_str(&email_block("The customer's email", email));
        let inner = hidden("until", &until.to_string())
            + &hidden("reason", reason)
            + &hidden("step", "confirm");
        body.push_str(&form(&inner, "Move it and tell the customer"));
        body.push_str(&format!(
            "<p><a href=\"\">Change the time or the reason</a></p>\n{}",
            more(open_link)
        ));
        Page::ok(format!("Delay '{}'?", c.title), body)
    }

    /// The customer's email of a step of `kind` (a delay notice, or the customer update
    /// `key` at `at`) about `state`'s commitment, rendered as the daemon will render it:
    /// its subject and text. For a delay notice, `delay` is the move to show.
    fn customer_email(
        &self,
        state: &CommitmentState,
        kind: StepKind,
        key: &str,
        delay: Option<(Timestamp, &str)>,
        at: Timestamp,
    ) -> Result<(String, String), String> {
        let (store, config) = (self.store, self.config);
        let c = &state.commitment;
        let rule = rule_for(&config.rules, c).ok_or("no rule matches it")?;
        let zone = c.zone(config.calendar.zone());
        let mut moves: Vec<_> = store
            .revisions_of(c.id)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| r.due_move(zone))
            .collect();
        // A delay not yet recorded is shown as the notice of it will be, once it is.
        let key = match delay {
            Some((until, reason)) => {
                moves.push(DueMove {
                    revision: 0,
                    from: Ok(c.due_at),
                    to: Ok(until),
                    reason: Some(reason.to_string()),
                    automatic: false,
                });
                "delay_notice#0"
            }
            None => key,
        };
        let step = StepInfo {
            kind,
            key: key.to_string(),
            label: kind.as_str().replace('_', " "),
            rule: rule.name.clone(),
            planned_at: at,
            late: false,
        };
        let standing = crate::customer::standing_of(store, c, config.calendar.zone(), at)
            .map_err(|e| e.to_string())?;
        let composed = Firing {
            commitment: c,
            rule,
            step: &step,
            asked: None,
            moves: &moves,
            customer: &standing,
            failure: None,
            // The customer's email carries no links whatever is given here.
            links: None,
            at,
        }
        .compose(config)?;
        if composed.update.is_none() {
            return Err("the step tells the customer nothing".into());
        }
        let emails = composed.emails;
        let customer = emails
            .into_iter()
            .find(|e| e.audience == crate::mail::Audience::Customer)
            .ok_or("the rule sends the customer nothing")?;
        Ok((customer.rendered.subject, customer.rendered.text))
    }
}

/// The customer's email as a page shows it, under `heading`; or why it cannot be shown.
fn email_block(heading: &str, email: Result<(String, String), String>) -> String {
    match email {
        Ok((subject, text)) => format!(
            "<h2>{}</h2>\n<p><strong>Subject:</strong> {}</p>\n<pre>{}</pre>\n",
            escape(heading),
            escape(&subject),
            escape(&text)
        ),
        Err(why) => paragraph(
            &format!("The customer's email cannot be shown: {why}."),
            Some("warn"),
        ),
    }
}
