//! `[business]`: who speaks in customer mail. The business's name, phone, website and
//! signature sign every email a customer gets, and `reply_to` makes a reply reach a
//! person instead of the sending address. Without the table customer mail is signed by
//! the owner alone and replies go to the owner.

use std::path::Path;

use lettre::message::Mailbox;
use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use crate::commitment::parse_mailbox;

/// `[business]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BusinessSection {
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    pub phone: Option<Spanned<String>>,
    #[serde(default)]
    pub website: Option<Spanned<String>>,
    #[serde(default)]
    pub signature: Option<Spanned<String>>,
    #[serde(default)]
    pub reply_to: Option<Spanned<String>>,
}

/// Where a customer's reply goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReplyTo {
    /// To the commitment's owner, who made the promise.
    #[default]
    Owner,
    /// To one address for every commitment (a shared inbox).
    Address(Mailbox),
}

/// `[business]`, checked. Every text is trimmed; an empty one counts as left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Business {
    /// The name the business signs with, on one line.
    pub name: Option<String>,
    /// The phone number customers may call.
    pub phone: Option<String>,
    /// The website, `https://...` or `http://...`.
    pub website: Option<String>,
    /// More lines under the name and contacts: an address, a company number.
    pub signature: Option<String>,
    /// Where replies to customer mail go.
    pub reply_to: ReplyTo,
}

impl Business {
    /// The `Reply-To` of customer mail about a promise `owner` made.
    pub fn reply_to_for(&self, owner: &Mailbox) -> Mailbox {
        match &self.reply_to {
            ReplyTo::Owner => owner.clone(),
            ReplyTo::Address(address) => address.clone(),
        }
    }
}

/// Checks `section` from `file` (text `source`); pushes each problem to `errors`.
pub(super) fn check(
    section: &BusinessSection,
    file: &Path,
    source: &str,
    errors: &mut Vec<ConfigError>,
) -> Business {
    let mut bad = |value: &Spanned<String>, message: String| {
        errors.push(ConfigError::at(file, source, Some(value.span()), message));
    };
    let mut checked = |value: &Option<Spanned<String>>,
                       check: fn(&str) -> Result<(), String>|
     -> Option<String> {
        let value = value.as_ref()?;
        let text = value.get_ref().trim();
        if text.is_empty() {
            return None;
        }
        match check(text) {
            Ok(()) => Some(text.to_string()),
            Err(why) => {
                bad(value, why);
                None
            }
        }
    };
    let name = checked(&section.name, |text| one_line("name", text));
    let phone = checked(&section.phone, check_phone);
    let website = checked(&section.website, check_website);
    let signature = checked(&section.signature, check_signature);
    let reply_to = match &section.reply_to {
        None => ReplyTo::Owner,
        Some(value) if value.get_ref().trim() == "owner" => ReplyTo::Owner,
        Some(value) => match parse_mailbox(value.get_ref()) {
            Ok(mailbox) => ReplyTo::Address(mailbox),
            Err(why) => {
                errors.push(ConfigError::at(
                    file,
                    source,
                    Some(value.span()),
                    format!("reply_to must be \"owner\" or an email address: {why}"),
                ));
                ReplyTo::Owner
            }
        },
    };
    Business {
        name,
        phone,
        website,
        signature,
        reply_to,
    }
}

fn one_line(key: &str, text: &str) -> Result<(), String> {
    if text.chars().any(char::is_control) {
        return Err(format!("{key} '{text}' must be one line of text"));
    }
    Ok(())
}

fn check_phone(text: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_digit() || " +-()./".contains(c);
    if !text.chars().all(allowed) || !text.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!(
            "phone '{text}' is not a phone number: use digits, spaces and + - ( ) . / only, e.g. \"+44 20 7946 0018\""
        ));
    }
    Ok(())
}

fn check_website(text: &str) -> Result<(), String> {
    let host = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(host)
            if host.contains('.')
                && !text.chars().any(|c| c.is_whitespace() || c.is_control())
                && !text.contains(['"', '<', '>']) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "website '{text}' is not a web address: give it whole, e.g. \"https://plumbing.example.com\""
        )),
    }
}

fn check_signature(text: &str) -> Result<(), String> {
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(
            "signature may hold line breaks but no other control characters (tabs, ...)".into(),
        );
    }
    if text.lines().count() > 6 {
        return Err("signature has more than 6 lines: keep it to a short block".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Business, Vec<ConfigError>) {
        #[derive(Deserialize)]
        struct File {
            business: BusinessSection,
        }
        let file: File = toml::from_str(text).unwrap();
        let mut errors = Vec::new();
        let business = check(&file.business, Path::new("b.toml"), text, &mut errors);
        (business, errors)
    }

    #[test]
    fn a_full_business_table_is_read_and_trimmed() {
        let (business, errors) = load(
            "[business]\nname = \" Mensah Plumbing \"\nphone = \"+44 20 7946 0018\"\n\
             website = \"https://plumbing.example.com\"\nsignature = \"12 High St\\nLondon\"\n\
             reply_to = \"Desk <desk@plumbing.example.com>\"\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(business.name.as_deref(), Some("Mensah Plumbing"));
        assert_eq!(business.signature.as_deref(), Some("12 High St\nLondon"));
        let owner = parse_mailbox("ana@example.com").unwrap();
        assert_eq!(
            business.reply_to_for(&owner).to_string(),
            "Desk <desk@plumbing.example.com>"
        );
    }

    #[test]
    fn replies_go_to_the_owner_by_default() {
        let owner = parse_mailbox("Ana Ruiz <ana@example.com>").unwrap();
        let (business, errors) = load("[business]\nname = \"X\"\n");
        assert!(errors.is_empty());
        assert_eq!(business.reply_to_for(&owner), owner);
        let (business, _) = load("[business]\nreply_to = \"owner\"\n");
        assert_eq!(business.reply_to, ReplyTo::Owner);
    }

    #[test]
    fn every_bad_value_is_an_error_with_its_line() {
        let (_, errors) = load(
            "[business]\nname = \"A\\nB\"\nphone = \"call us\"\nwebsite = \"plumbing\"\n\
             signature = \"a\\tb\"\nreply_to = \"nobody\"\n",
        );
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(
            lines,
            [Some(2), Some(3), Some(4), Some(5), Some(6)],
            "{errors:?}"
        );
        assert!(
            errors[1].message.contains("phone 'call us'"),
            "{}",
            errors[1]
        );
        assert!(errors[2].message.contains("https://"), "{}", errors[2]);
        assert!(errors[4].message.contains("\"owner\""), "{}", errors[4]);
    }
}
