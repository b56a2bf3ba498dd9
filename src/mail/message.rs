//! Building RFC 5322 messages: headers of a well-behaved automated sender, threading,
//! and bodies whose line endings cannot end the SMTP DATA early.
//!
//! Every header value built from data (names, titles) goes through lettre's encoders,
//! and every such value has had its control characters removed before it gets here
//! ([`crate::commitment::one_line`]), so no field can add a header. Bodies are
//! normalised to CRLF line endings with no other control characters, so SMTP
//! dot-stuffing sees every line start and no `"\n.\n"` in a note can end a message.

use std::time::SystemTime;

use jiff::Timestamp;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use crate::mail::header;
use crate::mail::templates::Rendered;

/// Who a message is for; each audience of a commitment has its own thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The person who made the promise.
    Owner,
    /// The person it was made to.
    Customer,
    /// The team that hears of missed promises.
    Team,
    /// Whoever an escalation goes to.
    Escalation,
}

impl Audience {
    /// True for the business's own people. Only their mail may carry internal ids
    /// (`X-Followup-Commitment`): a customer has no use for them, and they tell
    /// outsiders how many promises the business records.
    pub fn is_internal(self) -> bool {
        self != Audience::Customer
    }

    /// The word stored in `deliveries.audience` and used in Message-IDs.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Owner => "owner",
            Audience::Customer => "customer",
            Audience::Team => "team",
            Audience::Escalation => "escalation",
        }
    }
}

/// Everything needed to build one message.
#[derive(Clone, Debug)]
pub struct Outgoing<'a> {
    /// `From:`.
    pub from: &'a Mailbox,
    /// `To:`.
    pub to: &'a Mailbox,
    /// `Reply-To:`: where a reply should go when not to `from` (customer mail: a
    /// person, not the sending address).
    pub reply_to: Option<&'a Mailbox>,
    /// Subject and bodies.
    pub rendered: &'a Rendered,
    /// This message's Message-ID, with angle brackets.
    pub message_id: &'a str,
    /// The thread's root Message-ID, if this message is a reply in the thread.
    pub reply_to_thread: Option<&'a str>,
    /// The commitment it is about, for `X-Followup-Commitment` (none for digests,
    /// reports and customer mail: see [`Audience::is_internal`]).
    pub commitment_id: Option<i64>,
    /// `Date:`.
    pub date: Timestamp,
}

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the message: {0}")]
pub struct BuildError(#[from] lettre::error::Error);

/// The domain part of `from`, used to make Message-IDs globally unique.
fn id_domain(from: &Mailbox) -> String {
    from.email.domain().to_string()
}

/// The one place Message-IDs are made. Each is `<followup.STORE.PARTS@DOMAIN>`: the
/// store's random id (made once, when the store is) keeps two stores (staging and
/// production, or a store made again after a loss) from ever giving two emails one id,
/// the parts make it unique within the store and the same on every attempt, and the
/// domain of `From:` makes it unique among other senders.
#[derive(Clone, Debug)]
pub struct MessageIds {
    store_id: String,
    domain: String,
}

impl MessageIds {
    /// Message-IDs of the store with id `store_id`, sending as `from`.
    pub fn new(store_id: &str, from: &Mailbox) -> MessageIds {
        MessageIds {
            store_id: store_id.to_string(),
            domain: id_domain(from),
        }
    }

    /// The Message-ID that starts the thread of `audience` about commitment
    /// `commitment_id`: the first message to that audience carries it, every later one
    /// refers to it.
    pub fn thread_root(&self, commitment_id: i64, audience: Audience) -> String {
        self.make(format_args!("{commitment_id}.{}", audience.as_str()))
    }

    /// The Message-ID of a later message in the thread: the step and the recipient's
    /// place among the step's emails make it unique.
    pub fn reply(
        &self,
        commitment_id: i64,
        audience: Audience,
        step_id: i64,
        index: usize,
    ) -> String {
        self.make(format_args!(
            "{commitment_id}.{}.{step_id}.{index}",
            audience.as_str()
        ))
    }

    /// The Message-ID of email `index` of run `run_id` of a calendar job (`digest`,
    /// `report`).
    pub fn job(&self, job: &str, run_id: i64, index: usize) -> String {
        self.make(format_args!("{job}.{run_id}.{index}"))
    }

    /// The Message-ID of a test email (`followup test-email`) sent as `from` at `at`:
    /// it belongs to no store, so the time and a random `nonce` make it unique.
    pub fn test_email(from: &Mailbox, at: Timestamp, nonce: u32) -> String {
        MessageIds::new("test", from).make(format_args!("{}.{nonce}", at.as_millisecond()))
    }

    fn make(&self, parts: std::fmt::Arguments<'_>) -> String {
        format!("<followup.{}.{parts}@{}>", self.store_id, self.domain)
    }
}

/// Text with every line break as CRLF and no other control character than tab: what
/// SMTP dot-stuffing and strict parsers expect.
pub fn normalize_body(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The message as bytes, ready for any transport.
pub fn build(out: &Outgoing<'_>) -> Result<Vec<u8>, BuildError> {
    let date = SystemTime::UNIX_EPOCH
        + std::time::Duration::from_millis(out.date.as_millisecond().max(0) as u64);
    // The envelope is given rather than read back from the headers, which lettre would
    // do by parsing the addresses again; the outbox keeps its own sender and recipient.
    let envelope =
        lettre::address::Envelope::new(Some(out.from.email.clone()), vec![out.to.email.clone()])?;
    let mut builder = Message::builder().envelope(envelope);
    builder = match &out.from.name {
        Some(name) if header::needs_splitting(name) => {
            builder.raw_header(header::mailbox("From", out.from))
        }
        _ => builder.from(out.from.clone()),
    };
    builder = match &out.to.name {
        Some(name) if header::needs_splitting(name) => {
            builder.raw_header(header::mailbox("To", out.to))
        }
        _ => builder.to(out.to.clone()),
    };
    if let Some(reply_to) = out.reply_to {
        builder = match &reply_to.name {
            Some(name) if header::needs_splitting(name) => {
                builder.raw_header(header::mailbox("Reply-To", reply_to))
            }
            _ => builder.reply_to(reply_to.clone()),
        };
    }
    let subject = crate::commitment::one_line(&out.rendered.subject);
    let mut builder = builder
        .raw_header(header::text("Subject", &subject))
        .date(date)
        .message_id(Some(out.message_id.to_string()))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".to_string(),
        ));
    if let Some(id) = out.commitment_id {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Followup-Commitment"),
            id.to_string(),
        ));
    }
    if let Some(root) = out.reply_to_thread {
        builder = builder
            .in_reply_to(root.to_string())
            .references(root.to_string());
    }
    let text = normalize_body(&out.rendered.text);
    let message = match &out.rendered.html {
        None => builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text),
        )?,
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            text,
            normalize_body(html),
        ))?,
    };
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitment::{one_line, parse_mailbox};

    #[test]
    fn every_line_ending_becomes_crlf_and_controls_go() {
        assert_eq!(
            normalize_body("a\nb\rc\r\nd\u{0}e\tf"),
            "a\r\nb\r\nc\r\nde\tf"
        );
        assert_eq!(
            normalize_body("x\n.\nMAIL FROM:<x@evil>\n"),
            "x\r\n.\r\nMAIL FROM:<x@evil>\r\n"
        );
    }

    #[test]
    fn message_ids_carry_the_store_so_two_stores_never_share_one() {
        let from = parse_mailbox("Followup <followup@example.com>").unwrap();
        let staging = MessageIds::new("0a1b2c3d4e5f6071", &from);
        let production = MessageIds::new("9f8e7d6c5b4a3928", &from);
        assert_eq!(
            staging.thread_root(1, Audience::Owner),
            "<followup.0a1b2c3d4e5f6071.1.owner@example.com>"
        );
        assert_eq!(
            staging.reply(1, Audience::Customer, 5, 0),
            "<followup.0a1b2c3d4e5f6071.1.customer.5.0@example.com>"
        );
        assert_eq!(
            staging.job("digest", 3, 1),
            "<followup.0a1b2c3d4e5f6071.digest.3.1@example.com>"
        );
        assert_ne!(
            staging.thread_root(1, Audience::Owner),
            production.thread_root(1, Audience::Owner)
        );
        let at: Timestamp = "2026-12-02T09:00:00Z".parse().unwrap();
        assert_eq!(
            MessageIds::test_email(&from, at, 42),
            format!("<followup.test.{}.42@example.com>", at.as_millisecond())
        );
    }

    #[test]
    fn messages_carry_the_headers_of_an_automated_sender() {
        let from = parse_mailbox("Followup <followup@example.com>").unwrap();
        let to = parse_mailbox("Zoë Ångström <zoe@example.org>").unwrap();
        let rendered = Rendered {
            subject: "Fällig: Angebot".into(),
            text: "Hello\n.\nbye\n".into(),
            html: None,
        };
        let bytes = build(&Outgoing {
            from: &from,
            to: &to,
            reply_to: None,
            rendered: &rendered,
            message_id: "<followup.1.owner.5@example.com>",
            reply_to_thread: Some("<followup.1.owner@example.com>"),
            commitment_id: Some(1),
            date: "2026-11-24T17:00:00Z".parse().unwrap(),
        })
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("Auto-Submitted: auto-generated\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Message-ID: <followup.1.owner.5@example.com>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("In-Reply-To: <followup.1.owner@example.com>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("References: <followup.1.owner@example.com>\r\n"),
            "{text}"
        );
        assert!(text.contains("Subject: =?utf-8?"), "{text}");
        assert!(text.is_ascii(), "headers and body are encoded: {text}");
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "no bare LF: {text:?}"
        );
    }

    fn built(from: &str, to: &str, subject: &str) -> Vec<u8> {
        let from = parse_mailbox(from).unwrap();
        let to = parse_mailbox(to).unwrap();
        let rendered = Rendered {
            subject: subject.into(),
            text: format!("Hello\n{subject}\n"),
            html: None,
        };
        build(&Outgoing {
            from: &from,
            to: &to,
            reply_to: None,
            rendered: &rendered,
            message_id: "<followup.1.owner@example.com>",
            reply_to_thread: None,
            commitment_id: Some(1),
            date: "2026-11-24T17:00:00Z".parse().unwrap(),
        })
        .unwrap()
    }

    #[test]
    fn no_header_line_is_longer_than_78_octets_whatever_the_data() {
        let word = "x".repeat(1200);
        let long_name = "Z".repeat(1100);
        let cases = [
            (format!("Due: {word}"), "Ana <ana@example.com>".to_string()),
            (
                format!("{word} and {word}"),
                format!("{long_name} <zoe@example.org>"),
            ),
            (
                format!("Fällig: {}", "ä".repeat(700)),
                format!("Zoë {long_name} Å <zoe@example.org>"),
            ),
            (
                "a ".repeat(600),
                format!("{} <zoe@example.org>", "Jo ".repeat(400)),
            ),
            (
                format!("\"quoted\" {word}?= =?utf-8?b?"),
                "\"Doe, Jo\" <jo@example.org>".to_string(),
            ),
        ];
        for (subject, to) in cases {
            let from = format!("{} <followup@example.com>", "F".repeat(200));
            let bytes = built(&from, &to, &subject);
            let text = String::from_utf8(bytes.clone()).unwrap();
            let head = &text[..text.find("\r\n\r\n").unwrap()];
            for line in head.split("\r\n") {
                assert!(line.len() <= 78, "{} octets: {line}", line.len());
            }
            for line in text.split("\r\n") {
                assert!(
                    line.len() <= 998,
                    "the body has a line of {} octets",
                    line.len()
                );
            }
            let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
            assert_eq!(parsed.subject(), Some(one_line(&subject).as_str()));
            let to = parse_mailbox(&to).unwrap();
            let received = parsed.to().and_then(|a| a.first()).unwrap();
            assert_eq!(received.name(), to.name.as_deref());
            assert_eq!(received.address(), Some(to.email.as_ref()));
            let received = parsed.from().and_then(|a| a.first()).unwrap();
            assert_eq!(received.name(), Some("F".repeat(200).as_str()));
        }
    }
}
