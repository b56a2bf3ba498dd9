//! The forms the pages show, and reading what they send back: plain HTML that works
//! without script and with the keyboard alone (every field has a label; radio buttons
//! sit inside theirs, so the whole line is the target), and the time choices of the
//! Delay and Snooze pages.

use jiff::Timestamp;
use serde::Deserialize;

use super::html::escape;
use crate::calendar::Calendar;
use crate::when::parse_when;

/// Every field any form sends; each page reads the ones it shows. Unknown fields are
/// ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Fields {
    /// One of the offered times (`+1 business day`), or `at` for [`Fields::at`].
    pub choice: Option<String>,
    /// A date and time from the picker (`2026-12-02T09:30`, the calendar's zone).
    pub at: Option<String>,
    /// The time already chosen, in RFC 3339 (the Delay page's confirmation).
    pub until: Option<String>,
    /// Why, in words.
    pub reason: Option<String>,
    /// `confirm` on the Delay page's second form.
    pub step: Option<String>,
    /// The key of the customer update asked about (`customer_update#1`).
    pub update: Option<String>,
    /// How the commitment ended, on the Close page (`won`, `no-answer`).
    pub outcome: Option<String>,
}

impl Fields {
    /// A field's text, trimmed; `None` if absent or blank.
    pub fn text(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
}

/// A time to offer: what the form sends, and what the person reads.
pub type Choice = (&'static str, &'static str);

/// The Delay page's times.
pub const DELAY_CHOICES: [Choice; 3] = [
    ("+1 business day", "1 business day later"),
    ("+2 business days", "2 business days later"),
    ("+7d", "1 week later"),
];

/// The Snooze page's times.
pub const SNOOZE_CHOICES: [Choice; 2] = [
    ("tomorrow 09:00", "Until tomorrow 09:00"),
    ("+2h", "For 2 hours"),
];

/// The time `fields` chose among `choices` (or the picker's), counted from `from`
/// (relative choices) and read in the calendar's zone. The error names the field.
pub fn chosen_time(
    fields: &Fields,
    choices: &[Choice],
    from: Timestamp,
    calendar: &Calendar,
) -> Result<Timestamp, String> {
    let choice = Fields::text(&fields.choice).ok_or("choose a time")?;
    let text = if choice == "at" {
        Fields::text(&fields.at).ok_or("pick a date and time, or choose another time")?
    } else if choices.iter().any(|(value, _)| *value == choice) {
        choice
    } else {
        return Err(format!("'{choice}' is not one of the times offered"));
    };
    parse_when(text, from, calendar.zone(), calendar).map_err(|e| format!("the time: {e}"))
}

/// The radio buttons of `choices` (each with the time it means, from `from`) and a
/// date-and-time picker, in one fieldset named `legend`.
pub fn time_choices(
    legend: &str,
    choices: &[Choice],
    from: Timestamp,
    calendar: &Calendar,
    checked: Option<&str>,
) -> String {
    let checked = checked.unwrap_or(choices[0].0);
    let mut out = format!("<fieldset><legend>{}</legend>\n", escape(legend));
    for (value, label) in choices {
        let when = parse_when(value, from, calendar.zone(), calendar)
            .map(|at| format!(": {}", calendar.display(at)))
            .unwrap_or_default();
        out.push_str(&format!(
            "<label><input type=\"radio\" name=\"choice\" value=\"{}\"{}> {}{}</label>\n",
            escape(value),
            if *value == checked { " checked" } else { "" },
            escape(label),
            escape(&when),
        ));
    }
    out.push_str(&format!(
        "<label><input type=\"radio\" name=\"choice\" value=\"at\"{}> On a date and time:\
         </label>\n<label for=\"at\" class=\"note\">Date and time ({})</label>\
         <input type=\"datetime-local\" id=\"at\" name=\"at\">\n</fieldset>\n",
        if checked == "at" { " checked" } else { "" },
        escape(calendar.zone_name()),
    ));
    out
}

/// The radio buttons of the Close page, one per outcome, `checked` chosen.
pub fn outcome_choices(checked: Option<&str>) -> String {
    use crate::commitment::Outcome;
    let mut out = "<fieldset><legend>How did it end?</legend>\n".to_string();
    for outcome in Outcome::ALL {
        let label = match outcome {
            Outcome::Won => "Won: the customer took it",
            Outcome::Lost => "Lost: the customer declined",
            Outcome::Resolved => "Resolved: the matter was put right",
            Outcome::NoAnswer => "No answer: the customer never replied",
        };
        out.push_str(&format!(
            "<label><input type=\"radio\" name=\"outcome\" value=\"{}\" required{}> {}</label>\n",
            outcome.as_str(),
            if checked == Some(outcome.as_str()) {
                " checked"
            } else {
                ""
            },
            escape(label),
        ));
    }
    out.push_str("</fieldset>\n");
    out
}

/// A text field with its label; `required` when the action needs it.
pub fn text_field(name: &str, label: &str, value: &str, required: bool) -> String {
    format!(
        "<label for=\"{name}\">{}</label><input type=\"text\" id=\"{name}\" name=\"{name}\" \
         value=\"{}\" maxlength=\"500\" autocomplete=\"off\"{}>\n",
        escape(label),
        escape(value),
        if required { " required" } else { "" },
        name = escape(name),
    )
}

/// A hidden field.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
        escape(name),
        escape(value)
    )
}

/// A POST form back to this page around `inner`, with one submit button.
pub fn form(inner: &str, button: &str) -> String {
    format!(
        "<form method=\"post\">\n{inner}<button type=\"submit\">{}</button>\n</form>\n",
        escape(button)
    )
}

/// A paragraph of escaped text, with `class` if given.
pub fn paragraph(text: &str, class: Option<&str>) -> String {
    match class {
        Some(class) => format!("<p class=\"{}\">{}</p>\n", escape(class), escape(text)),
        None => format!("<p>{}</p>\n", escape(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;

    fn calendar() -> Calendar {
        Calendar::new(TimeZone::get("Europe/London").unwrap())
    }

    fn fields(choice: &str, at: &str) -> Fields {
        Fields {
            choice: Some(choice.into()),
            at: Some(at.into()),
            ..Fields::default()
        }
    }

    #[test]
    fn an_offered_time_counts_from_the_given_moment() {
        // Tuesday 1 Dec 2026, 10:00 London.
        let from: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let cal = calendar();
        let two_hours = chosen_time(&fields("+2h", ""), &SNOOZE_CHOICES, from, &cal).unwrap();
        assert_eq!(two_hours, "2026-12-01T12:00:00Z".parse().unwrap());
        let tomorrow =
            chosen_time(&fields("tomorrow 09:00", ""), &SNOOZE_CHOICES, from, &cal).unwrap();
        assert_eq!(tomorrow, "2026-12-02T09:00:00Z".parse().unwrap());
        let week = chosen_time(&fields("+7d", ""), &DELAY_CHOICES, from, &cal).unwrap();
        assert_eq!(week, "2026-12-08T10:00:00Z".parse().unwrap());
    }

    #[test]
    fn the_picker_is_read_in_the_calendar_zone() {
        let from: Timestamp = "2026-07-01T10:00:00Z".parse().unwrap();
        let at = chosen_time(
            &fields("at", "2026-07-02T09:30"),
            &DELAY_CHOICES,
            from,
            &calendar(),
        )
        .unwrap();
        // British Summer Time: 09:30 local is 08:30 UTC.
        assert_eq!(at, "2026-07-02T08:30:00Z".parse().unwrap());
    }

    #[test]
    fn a_missing_or_foreign_choice_is_named() {
        let from = Timestamp::UNIX_EPOCH;
        let cal = calendar();
        let none = chosen_time(&Fields::default(), &DELAY_CHOICES, from, &cal);
        assert_eq!(none.unwrap_err(), "choose a time");
        let empty_picker = chosen_time(&fields("at", " "), &DELAY_CHOICES, from, &cal);
        assert!(empty_picker.unwrap_err().contains("pick a date and time"));
        let foreign = chosen_time(&fields("+2h", ""), &DELAY_CHOICES, from, &cal);
        assert!(
            foreign
                .unwrap_err()
                .contains("not one of the times offered")
        );
        let bad = chosen_time(&fields("at", "next blue moon"), &DELAY_CHOICES, from, &cal);
        assert!(bad.unwrap_err().starts_with("the time: "));
    }

    #[test]
    fn every_choice_has_a_label_and_the_values_are_escaped() {
        let html = time_choices(
            "New due time",
            &DELAY_CHOICES,
            "2026-12-01T10:00:00Z".parse().unwrap(),
            &calendar(),
            None,
        );
        assert_eq!(html.matches("<label><input type=\"radio\"").count(), 4);
        assert!(html.contains("value=\"+1 business day\" checked>"));
        assert!(html.contains("<label for=\"at\""));
        let field = text_field("reason", "Reason", "\"><script>", true);
        assert!(field.contains("value=\"&quot;&gt;&lt;script&gt;\""));
    }
}
