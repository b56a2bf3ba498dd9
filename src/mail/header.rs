//! Header lines that stay short whatever the data: RFC 5322 (2.1.1) forbids lines
//! over 998 octets and asks for at most 78, and relays refuse the longer ones ("500
//! Line too long").
//!
//! lettre folds a header only at spaces, so a word longer than a line (a title of
//! 1,200 letters without a space, a pasted link) stays one line. Here such words are
//! written as RFC 2047 encoded words, which can be split anywhere between characters
//! and folded; every other word is left to lettre as before. The values have had
//! their control characters removed before they get here.

use email_encoding::headers::rfc2047;
use email_encoding::headers::writer::EmailWriter;
use lettre::message::Mailbox;
use lettre::message::header::{HeaderName, HeaderValue};
use std::fmt::Write as _;

/// The longest word written as it is: with the header's name it still fits a line of
/// 78 octets. A longer one is encoded, so it can be split.
const LONGEST_WORD: usize = 60;

/// True if lettre would write `word` as it is and it fits a folded line.
fn plain(word: &str) -> bool {
    let word = word.trim_end_matches(' ');
    word.len() <= LONGEST_WORD && word.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// True if `text` has a word that lettre would leave on one overlong line.
pub fn needs_splitting(text: &str) -> bool {
    text.split(' ')
        .any(|word| word.len() > LONGEST_WORD && word.bytes().all(|b| (0x20..0x7f).contains(&b)))
}

/// An unstructured header (`Subject:`) whose lines are at most 78 octets: short ASCII
/// words as they are, everything else as encoded words split to fit.
pub fn text(name: &'static str, value: &str) -> HeaderValue {
    let mut encoded = String::with_capacity(value.len() * 2);
    {
        let mut writer = EmailWriter::new(&mut encoded, name.len() + 2, 0, false);
        let mut pending = String::new();
        for word in value.split_inclusive(' ') {
            if plain(word) {
                encode(&mut pending, &mut writer);
                // Writing into a String cannot fail.
                let _ = writer.folding().write_str(word);
            } else {
                pending.push_str(word);
            }
        }
        encode(&mut pending, &mut writer);
    }
    HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str(name),
        value.to_string(),
        encoded,
    )
}

/// A mailbox header (`To:`, `From:`) whose display name is written as encoded words
/// split to fit, followed by the address.
pub fn mailbox(name: &'static str, mailbox: &Mailbox) -> HeaderValue {
    let mut encoded = String::new();
    {
        let mut writer = EmailWriter::new(&mut encoded, name.len() + 2, 0, false);
        if let Some(display) = &mailbox.name {
            let _ = rfc2047::encode(display, &mut writer);
            writer.space();
        }
        let _ = writer.folding().write_str(&format!("<{}>", mailbox.email));
    }
    HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str(name),
        mailbox.to_string(),
        encoded,
    )
}

/// Writes the words gathered in `pending` as encoded words, then the spaces that
/// followed them, and empties it.
fn encode(pending: &mut String, writer: &mut EmailWriter<'_>) {
    if pending.is_empty() {
        return;
    }
    let words = pending.trim_end_matches(' ');
    let _ = rfc2047::encode(words, writer);
    for _ in words.len()..pending.len() {
        writer.space();
    }
    pending.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(header: &HeaderValue) -> String {
        let mut headers = lettre::message::header::Headers::new();
        headers.insert_raw(header.clone());
        headers.to_string()
    }

    #[test]
    fn a_long_word_is_split_into_encoded_words_on_short_lines() {
        let subject = format!("Due: {} now", "x".repeat(1200));
        let written = lines(&text("Subject", &subject));
        for line in written.split("\r\n") {
            assert!(line.len() <= 78, "{} octets: {line}", line.len());
        }
        assert!(written.starts_with("Subject: Due: =?utf-8?b?"), "{written}");
        assert!(written.ends_with(" now\r\n"), "{written}");
    }

    #[test]
    fn only_words_longer_than_a_line_need_splitting() {
        assert!(!needs_splitting("Send the quote for the kitchen"));
        assert!(!needs_splitting(&"ä".repeat(100)));
        assert!(needs_splitting(&format!("see {}", "y".repeat(61))));
    }
}
