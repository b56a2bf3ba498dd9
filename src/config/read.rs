//! The first layer, read so that no mistake hides another: a file is parsed into a TOML
//! tree (every syntax error reported), then read into its typed tables. serde stops at
//! the first error, so after each one the entry holding it is cut from the tree and the
//! rest is read again, until it reads: one run finds every unknown key, bad zone, bad
//! duration and bad address in the file, each at its place.
//!
//! A cut can make mistakes the user did not: a table that lost a required key, a list
//! or inline table left empty. `Read::echoes` names the places where the second layer's
//! complaints would only echo a cut, and the first layer's own echoes ("missing field"
//! for a key just cut) are never reported.
//!
//! A file with a syntax error goes no further: what the parser recovered is a guess,
//! and checking a guess would report mistakes the user did not make.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::{ConfigError, line_column};

/// What is left of a file once every entry in error is cut out.
pub(super) struct Read<T> {
    /// The typed tables.
    pub value: T,
    /// Line and column of each inline table or list that lost an entry: a second-layer
    /// error there ("to lists nobody", "opens on no day") echoes a reported one.
    pub echoes: Vec<(usize, usize)>,
}

/// Where cuts were made, so that their echoes are recognised.
#[derive(Default)]
struct Trail {
    /// Inline tables and lists that lost an entry.
    emptied: Vec<Range<usize>>,
    /// (span of the table, key) of each key cut from a table.
    keys: Vec<(Range<usize>, String)>,
}

/// Reads `text`, the content of `file`, as a `T`, pushing every error to `errors`.
/// `None` if the file is not valid TOML or an error has no place to cut.
pub(super) fn file<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Read<T>> {
    let (mut root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            errors.push(ConfigError::at(file, text, e.span(), e.message().trim()));
        }
        return None;
    }
    let mut trail = Trail::default();
    // Each failed pass cuts at least one entry, so this ends.
    loop {
        match T::deserialize(toml::de::Deserializer::from(root.clone())) {
            Ok(value) => {
                let echoes = trail
                    .emptied
                    .iter()
                    .map(|span| line_column(text, span.start))
                    .collect();
                return Some(Read { value, echoes });
            }
            Err(e) => {
                let Some(span) = e.span() else {
                    errors.push(ConfigError::at(file, text, None, e.message().trim()));
                    return None;
                };
                let echo = trail.keys.iter().any(|(table, key)| {
                    *table == span && e.message().trim() == format!("missing field `{key}`")
                });
                if !echo {
                    errors.push(ConfigError::at(
                        file,
                        text,
                        Some(span.clone()),
                        e.message().trim(),
                    ));
                }
                if !cut(root.get_mut(), &span, &mut trail) {
                    return None;
                }
            }
        }
    }
}

fn holds(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Whether `value` or anything inside it sits at `span`. A `[table]`'s own span is
/// only its header line, so its keys are looked at too.
fn reaches(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> bool {
    holds(&value.span(), span)
        || match value.get_ref() {
            DeValue::Table(table) => table
                .iter()
                .any(|(k, v)| holds(&k.span(), span) || reaches(v, span)),
            DeValue::Array(items) => items.iter().any(|item| reaches(item, span)),
            _ => false,
        }
}

/// Removes the innermost entry of `table` at `span`: a key with a bad value goes, or
/// the one bad element of a list; a table missing a required key goes whole. False if
/// no entry is there.
fn cut(table: &mut DeTable<'_>, span: &Range<usize>, trail: &mut Trail) -> bool {
    cut_in(table, None, span, trail)
}

/// [`cut`] inside a table whose own span (if not the root) is `table_span`.
fn cut_in(
    table: &mut DeTable<'_>,
    table_span: Option<&Range<usize>>,
    span: &Range<usize>,
    trail: &mut Trail,
) -> bool {
    let Some(key) = table
        .iter()
        .find(|(k, v)| holds(&k.span(), span) || reaches(v, span))
        .map(|(k, _)| k.clone())
    else {
        return false;
    };
    let Some(value) = table.get_mut(&key) else {
        return false;
    };
    let value_span = value.span();
    let cut_inside = match value.get_mut() {
        DeValue::Table(inner) => cut_in(inner, Some(&value_span), span, trail),
        DeValue::Array(items) => cut_element(items, span, trail),
        _ => false,
    };
    if cut_inside {
        if holds(&value_span, span) {
            trail.emptied.push(value_span);
        }
    } else {
        table.remove(&key);
        if let Some(table_span) = table_span {
            trail
                .keys
                .push((table_span.clone(), key.get_ref().to_string()));
        }
    }
    true
}

fn cut_element(items: &mut DeArray<'_>, span: &Range<usize>, trail: &mut Trail) -> bool {
    let Some(index) = items.iter().position(|item| reaches(item, span)) else {
        return false;
    };
    if let Some(item) = items.get_mut(index) {
        let item_span = item.span();
        if let DeValue::Table(inner) = item.get_mut()
            && cut_in(inner, Some(&item_span), span, trail)
        {
            return true;
        }
    }
    *items = items
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .map(|(_, item)| item.clone())
        .collect();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        a: Option<u32>,
        #[serde(default)]
        list: Vec<u32>,
        #[serde(default)]
        item: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
        #[serde(default)]
        n: u32,
    }

    fn read(text: &str) -> (Option<Doc>, Vec<String>) {
        let mut errors = Vec::new();
        let doc = file::<Doc>(Path::new("f.toml"), text, &mut errors).map(|read| read.value);
        (doc, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn every_bad_entry_is_reported_and_the_rest_is_read() {
        let (doc, errors) = read(
            "a = \"x\"\nb = 1\nlist = [1, \"two\", 3]\n[[item]]\nname = \"ok\"\nn = -1\n[[item]]\nn = 2\n[[item]]\nname = \"last\"\n",
        );
        assert_eq!(errors.len(), 5, "{errors:#?}");
        for place in [
            "f.toml:1:5",
            "f.toml:2:1",
            "f.toml:3:12",
            "f.toml:6:5",
            "f.toml:7:1",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(place)),
                "{place}: {errors:#?}"
            );
        }
        let doc = doc.unwrap();
        assert_eq!((doc.a, doc.list), (None, vec![1, 3]));
        let names: Vec<_> = doc.item.iter().map(|i| (i.name.as_str(), i.n)).collect();
        assert_eq!(names, [("ok", 0), ("last", 0)]);
    }

    #[test]
    fn a_syntax_error_stops_the_file_there() {
        let (doc, errors) = read("a = \"x\"\n[item\n");
        assert!(doc.is_none());
        assert!(
            errors.iter().all(|e| e.starts_with("f.toml:2:")),
            "{errors:#?}"
        );
    }
}
