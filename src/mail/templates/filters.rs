//! Filters that make typed values read as written by a person.

/// The `upper_first` filter: `text` with its first letter in upper case and the rest
/// as it is ("your order" becomes "Your order", "Grundfos" stays).
pub fn upper_first(text: &str) -> String {
    let text = text.trim_start();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The `sentence` filter: `text` as a sentence whatever was typed: trimmed, the first
/// letter in upper case, and a full stop at the end unless it ends with one already
/// (or `!`, `?`, or one of those inside a closing quote or bracket). "parts delayed"
/// becomes "Parts delayed."
pub fn sentence(text: &str) -> String {
    let text = upper_first(text.trim());
    let ends = text.trim_end_matches(['"', '\'', ')', '\u{201d}', '\u{2019}']);
    if text.is_empty() || ends.ends_with(['.', '!', '?', '\u{2026}']) {
        return text;
    }
    let text = text.trim_end_matches([',', ';', ':', ' ']);
    format!("{text}.")
}
