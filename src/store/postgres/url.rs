//! Connection URLs as users write them: a `postgres://` URL or libpq's `key=value`
//! pairs. Two jobs: printing one without its password, and taking out the TLS words
//! of libpq that the client does not know (`sslrootcert`, `sslmode=verify-ca` and
//! `verify-full`), so that a URL that works with `psql` works here too.

/// `url` without its password, to print: `postgres://ana:secret@db/followup` becomes
/// `postgres://ana@db/followup`, and a `password=...` pair (in the query of a URL or
/// in `key=value` form) is left out.
pub fn redacted(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let authority = match authority.rsplit_once('@') {
            Some((user_info, host)) => {
                let user = user_info
                    .split_once(':')
                    .map_or(user_info, |(user, _)| user);
                format!("{user}@{host}")
            }
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| !pair.starts_with("password="))
                    .collect();
                if kept.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{}", kept.join("&"))
                }
            }
            None => tail.to_string(),
        };
        return format!("{scheme}://{authority}{tail}");
    }
    join(pairs(url).into_iter().filter(|(key, _)| *key != "password"))
}

/// What a URL asks of TLS beyond what the client reads from it.
#[derive(Debug, PartialEq)]
pub(super) struct TlsWords {
    /// The URL with those words taken out, `verify-ca` and `verify-full` written as
    /// `require`.
    pub url: String,
    /// `sslmode` was `verify-ca` or `verify-full`.
    pub verify: bool,
    /// `sslrootcert`: the file of the certificates to trust, or `system`.
    pub root: Option<String>,
    /// `sslcert` or `sslkey` was given: a client certificate, which is not supported.
    pub client_certificate: bool,
}

/// Takes the TLS words the client does not know out of `url`.
pub(super) fn tls_words(url: &str) -> TlsWords {
    let mut verify = false;
    let mut root = None;
    let mut client_certificate = false;
    let mut word = |key: &str, value: String| -> Option<String> {
        match (key, value.as_str()) {
            ("sslrootcert", _) => {
                root = Some(value);
                None
            }
            ("sslcert" | "sslkey", _) => {
                client_certificate = true;
                None
            }
            ("sslmode", "verify-ca" | "verify-full") => {
                verify = true;
                Some("require".to_string())
            }
            _ => Some(value),
        }
    };
    let url = if let Some((head, query)) = url.trim().split_once('?')
        && head.contains("://")
    {
        let kept: Vec<String> = query
            .split('&')
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let decoded = percent_decoded(value);
                match word(&percent_decoded(key), decoded.clone()) {
                    None => None,
                    Some(kept) if kept == decoded => Some(pair.to_string()),
                    Some(kept) => Some(format!("{key}={kept}")),
                }
            })
            .collect();
        if kept.is_empty() {
            head.to_string()
        } else {
            format!("{head}?{}", kept.join("&"))
        }
    } else if url.contains("://") {
        url.trim().to_string()
    } else {
        let kept: Vec<(&str, String)> = pairs(url)
            .into_iter()
            .filter_map(|(key, raw)| {
                let value = unquoted(raw);
                match word(key, value.clone()) {
                    None => None,
                    Some(kept) if kept == value => Some((key, raw.to_string())),
                    Some(kept) => Some((key, kept)),
                }
            })
            .collect();
        join(kept.iter().map(|(key, value)| (*key, value.as_str())))
    };
    TlsWords {
        url,
        verify,
        root,
        client_certificate,
    }
}

/// The `key=value` pairs of a libpq connection string, each value as written (quoted,
/// with `\'` inside, or bare).
fn pairs(config: &str) -> Vec<(&str, &str)> {
    let mut found = Vec::new();
    let mut rest = config.trim_start();
    while !rest.is_empty() {
        let key_end = rest.find('=').unwrap_or(rest.len());
        let key = rest[..key_end].trim();
        let after = rest[key_end..].strip_prefix('=').unwrap_or("").trim_start();
        let value_len = if let Some(quoted) = after.strip_prefix('\'') {
            let mut escaped = false;
            let close = quoted.char_indices().find(|&(_, c)| {
                let closes = c == '\'' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            });
            close.map_or(after.len(), |(i, _)| i + 2)
        } else {
            after.find(char::is_whitespace).unwrap_or(after.len())
        };
        found.push((key, &after[..value_len]));
        rest = after[value_len..].trim_start();
    }
    found
}

fn join<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value of a `key=value` string as meant: without its quotes and escapes.
fn unquoted(raw: &str) -> String {
    let inner = raw
        .strip_prefix('\'')
        .map_or(raw, |quoted| quoted.strip_suffix('\'').unwrap_or(quoted));
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// `%XX` escapes of a URL's query decoded; an escape that is not one stays as written.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{TlsWords, redacted, tls_words};

    #[test]
    fn a_url_is_printed_without_its_password() {
        for (url, shown) in [
            (
                "postgres://ana:s3cret@db.example:5432/followup",
                "postgres://ana@db.example:5432/followup",
            ),
            (
                "postgresql://ana:p@ss@db/followup?sslmode=disable&password=s3cret",
                "postgresql://ana@db/followup?sslmode=disable",
            ),
            ("postgres://db/followup", "postgres://db/followup"),
            (
                "host=db user=ana password='s3 \\' cret' dbname=followup",
                "host=db user=ana dbname=followup",
            ),
            ("host=db password=s3cret", "host=db"),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
    }

    #[test]
    fn libpq_tls_words_are_taken_out_of_a_url_and_of_key_value_pairs() {
        let words = |url: &str, verify: bool, root: Option<&str>| TlsWords {
            url: url.to_string(),
            verify,
            root: root.map(str::to_string),
            client_certificate: false,
        };
        for (url, expected) in [
            (
                "postgres://ana@db/followup?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20db.pem",
                words(
                    "postgres://ana@db/followup?sslmode=require",
                    true,
                    Some("/etc/ca db.pem"),
                ),
            ),
            (
                "postgres://ana@db/followup?sslrootcert=system&application_name=x&sslmode=verify-ca",
                words(
                    "postgres://ana@db/followup?application_name=x&sslmode=require",
                    true,
                    Some("system"),
                ),
            ),
            (
                "postgres://ana@db/followup?sslmode=require",
                words("postgres://ana@db/followup?sslmode=require", false, None),
            ),
            (
                "postgres://ana@db/followup",
                words("postgres://ana@db/followup", false, None),
            ),
            (
                "host=db sslmode=verify-full sslrootcert='/etc/my \\'ca\\'.pem' dbname=followup",
                words(
                    "host=db sslmode=require dbname=followup",
                    true,
                    Some("/etc/my 'ca'.pem"),
                ),
            ),
            (
                "host=db application_name='a b'",
                words("host=db application_name='a b'", false, None),
            ),
        ] {
            assert_eq!(tls_words(url), expected, "{url}");
        }
    }
}
