//! Checking `[[rule]]` blocks: the second layer, for what serde cannot see alone
//! (unique names, signs of offsets, keys that need each other).

use std::ops::Range;
use std::path::Path;

use super::ConfigError;
use super::sections::{CheckInSection, CustomerUpdateSection, OneOrMany, RuleSection};
use crate::mail::templates::TemplateKind;
use crate::rule::{AfterDone, Alert, CheckInTo, CustomerUpdate, Escalate, OnOpen, Overdue, Rule};
use toml::Spanned;

/// Where a rule block sits, for error locations.
pub(super) struct Place<'a> {
    pub file: &'a Path,
    pub source: &'a str,
}

impl Place<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.source, Some(span), message)
    }
}

/// The built-in template a customer update uses unless the rule names another.
pub const DEFAULT_UPDATE_TEMPLATE: &str = "no_news_yet";

/// The built-in template of `on_open` unless the rule names another.
pub const DEFAULT_ON_OPEN_TEMPLATE: &str = "service_failure";

/// Checks one rule block; pushes every problem to `errors` and returns the rule if
/// there were none. `names` collects the names seen so far, for uniqueness.
pub(super) fn check(
    section: &RuleSection,
    names: &mut Vec<String>,
    place: &Place<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Rule> {
    let before = errors.len();
    let name = section.name.get_ref().trim().to_string();
    if name.is_empty() {
        errors.push(place.error(section.name.span(), "a rule needs a non-empty name"));
    } else if names.contains(&name) {
        errors.push(place.error(
            section.name.span(),
            format!("a rule named '{name}' is already defined; rule names must be unique"),
        ));
    }
    names.push(name.clone());

    let overdue = match (&section.overdue_every, &section.overdue_max) {
        (None, None) => None,
        (None, Some(max)) => {
            errors.push(place.error(
                max.span(),
                "overdue_max needs overdue_every (e.g. overdue_every = \"1d\")",
            ));
            None
        }
        (Some(every), max) => {
            if !every.get_ref().is_positive() {
                errors.push(place.error(
                    every.span(),
                    format!(
                        "overdue_every '{}' must be a positive interval such as \"1d\"",
                        every.get_ref()
                    ),
                ));
            }
            if let Some(m) = max.as_ref().filter(|m| *m.get_ref() > 100) {
                errors.push(place.error(m.span(), "overdue_max may be at most 100"));
            }
            Some(Overdue {
                every: every.get_ref().clone(),
                max: max.as_ref().map_or(3, |m| *m.get_ref()),
            })
        }
    };

    let customer_update = section.customer_update.as_ref().map(|spanned| {
        let update = spanned.get_ref();
        if !update.extend_by.is_positive() {
            errors.push(place.error(
                spanned.span(),
                format!("customer_update: extend_by '{}' must move the due time forward, e.g. \"2 business days\"", update.extend_by),
            ));
        }
        let max = update.max.unwrap_or(1);
        if !(1..=20).contains(&max) {
            errors.push(place.error(spanned.span(), "customer_update: max must be between 1 and 20"));
        }
        let ask_owner = update.ask_owner.as_ref().and_then(|window| {
            let exact = super::mail::positive_exact(window);
            if exact.is_none() {
                errors.push(place.error(
                    spanned.span(),
                    format!("customer_update: ask_owner '{window}' must be a positive wall-clock duration such as \"2h\": how long before the update the owner is asked"),
                ));
            }
            exact
        });
        CustomerUpdate {
            at: update.at.clone(),
            extend_by: update.extend_by.clone(),
            max,
            template: update_template(update),
            ask_owner,
        }
    });

    let alert = section.alert.as_ref().map(|spanned| {
        let alert = spanned.get_ref();
        let at = alert.at.clone().unwrap_or_else(|| "0s".parse().expect("0s is an offset"));
        if at.is_negative() {
            errors.push(place.error(
                spanned.span(),
                format!("alert: at '{at}' is before the due time; an alert says the promise was missed, so use +0s or later"),
            ));
        }
        Alert {
            at,
            to: recipients("alert", &alert.to, place, spanned.span(), errors),
            owner_hours: alert.owner_hours.unwrap_or(section.owner_hours),
        }
    });

    let escalate = section.escalate.as_ref().map(|spanned| {
        let escalate = spanned.get_ref();
        if escalate.after.is_negative() {
            errors.push(place.error(
                spanned.span(),
                format!(
                    "escalate: after '{}' must not be negative: it counts from the due time",
                    escalate.after
                ),
            ));
        }
        Escalate {
            after: escalate.after.clone(),
            to: recipients("escalate", &escalate.to, place, spanned.span(), errors),
        }
    });

    let after_done = after_done_entries(section, place, errors);

    let on_open = section.on_open.as_ref().map(|spanned| OnOpen {
        to: recipients(
            "on_open",
            &spanned.get_ref().to,
            place,
            spanned.span(),
            errors,
        ),
        template: on_open_template(spanned.get_ref()),
    });

    let due_in = section.due_in.as_ref().map(|spanned| {
        if !spanned.get_ref().is_positive() {
            errors.push(place.error(
                spanned.span(),
                format!(
                    "due_in '{}' must be a positive time from now such as \"2 business hours\"",
                    spanned.get_ref()
                ),
            ));
        }
        spanned.get_ref().clone()
    });

    if errors.len() > before {
        return None;
    }
    Some(Rule {
        name,
        kinds: section.matcher.kind.clone().map(OneOrMany::into_vec),
        remind: section.remind.clone(),
        overdue,
        catch_up: section.catch_up,
        customer_update,
        alert,
        escalate,
        after_done,
        digest_only: section.digest_only,
        due_in,
        on_open,
        owner_hours: section.owner_hours,
    })
}

/// The entries written as `after_done`, or the one `check_in` (which means a one-entry
/// `after_done`); both in one rule is an error.
fn after_done_entries(
    section: &RuleSection,
    place: &Place<'_>,
    errors: &mut Vec<ConfigError>,
) -> Vec<AfterDone> {
    let entries: Vec<&Spanned<CheckInSection>> = match (&section.check_in, &section.after_done) {
        (Some(check_in), Some(list)) => {
            errors.push(place.error(
                list.span(),
                format!(
                    "after_done and check_in are both set (check_in is at line {}); check_in is a one-entry after_done: move it into the after_done list",
                    super::line_column(place.source, check_in.span().start).0
                ),
            ));
            return Vec::new();
        }
        (Some(check_in), None) => vec![check_in],
        (None, Some(list)) => list.get_ref().iter().collect(),
        (None, None) => Vec::new(),
    };
    if let Some(list) = section
        .after_done
        .as_ref()
        .filter(|l| l.get_ref().len() > 20)
    {
        errors.push(place.error(list.span(), "after_done may have at most 20 entries"));
    }
    let key = if section.check_in.is_some() {
        "check_in"
    } else {
        "after_done"
    };
    entries
        .into_iter()
        .map(|spanned| {
            let entry = spanned.get_ref();
            if entry.after.is_negative() {
                errors.push(place.error(
                    spanned.span(),
                    format!("{key}: after '{}' must not be negative: it counts from when the commitment was done", entry.after),
                ));
            }
            AfterDone {
                after: entry.after.clone(),
                to: entry.to,
                template: check_in_template(entry),
            }
        })
        .collect()
}

fn recipients(
    key: &str,
    to: &OneOrMany<super::sections::MailboxSetting>,
    place: &Place<'_>,
    span: Range<usize>,
    errors: &mut Vec<ConfigError>,
) -> Vec<lettre::message::Mailbox> {
    let mut list: Vec<lettre::message::Mailbox> = Vec::new();
    for mailbox in to.clone().into_vec().into_iter().map(|m| m.0) {
        if !list.iter().any(|m| m.email == mailbox.email) {
            list.push(mailbox);
        }
    }
    if list.is_empty() {
        errors.push(place.error(
            span,
            format!("{key}: to lists nobody; give at least one address"),
        ));
    }
    list
}

fn update_template(update: &CustomerUpdateSection) -> String {
    update
        .template
        .clone()
        .unwrap_or_else(|| DEFAULT_UPDATE_TEMPLATE.to_string())
}

fn check_in_template(check_in: &CheckInSection) -> String {
    check_in
        .template
        .clone()
        .unwrap_or_else(|| match check_in.to {
            CheckInTo::Owner => "check_in_owner".to_string(),
            CheckInTo::Customer => "check_in_customer".to_string(),
        })
}

fn on_open_template(on_open: &super::sections::OnOpenSection) -> String {
    on_open
        .template
        .clone()
        .unwrap_or_else(|| DEFAULT_ON_OPEN_TEMPLATE.to_string())
}

/// The templates a rule block uses beyond the built-in owner ones, with what they are
/// for.
pub(super) fn templates_of(rule: &RuleSection) -> Vec<(String, TemplateKind)> {
    let mut wanted = Vec::new();
    if let Some(update) = &rule.customer_update {
        wanted.push((
            update_template(update.get_ref()),
            TemplateKind::CustomerUpdate,
        ));
    }
    if let Some(check_in) = &rule.check_in {
        wanted.push((check_in_template(check_in.get_ref()), TemplateKind::CheckIn));
    }
    for entry in rule.after_done.iter().flat_map(|list| list.get_ref()) {
        wanted.push((check_in_template(entry.get_ref()), TemplateKind::CheckIn));
    }
    if let Some(on_open) = &rule.on_open {
        wanted.push((on_open_template(on_open.get_ref()), TemplateKind::OnOpen));
    }
    wanted
}
