//! `[web]`: where the daemon serves the pages behind the links in its emails.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use crate::calendar::Offset;

/// `[web]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebSection {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub listen: Option<Spanned<String>>,
    #[serde(default)]
    pub public_url: Option<Spanned<String>>,
    #[serde(default)]
    pub link_lifetime: Option<Spanned<Offset>>,
}

fn yes() -> bool {
    true
}

/// `[web]`, checked; absent from [`super::Config`] when the pages are off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSettings {
    /// The address and port to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// What links start with, without a trailing slash; `None`: `http://` and the
    /// address actually listened on.
    pub public_url: Option<String>,
    /// How long a link in an email keeps working.
    pub link_lifetime: jiff::SignedDuration,
}

/// The default `listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8025";

/// Checks `section` from `file` (text `source`); pushes each problem to `errors`.
pub(super) fn check(
    section: &WebSection,
    file: &Path,
    source: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<WebSettings> {
    let mut bad = |span: std::ops::Range<usize>, message: String| {
        errors.push(ConfigError::at(file, source, Some(span), message));
    };
    let listen = match &section.listen {
        None => DEFAULT_LISTEN.parse().ok(),
        Some(text) => match text.get_ref().trim().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                bad(
                    text.span(),
                    format!(
                        "listen '{}' is not an address and port such as \"127.0.0.1:8025\" \
                         or \"[::1]:8025\"",
                        text.get_ref()
                    ),
                );
                None
            }
        },
    };
    let public_url = match &section.public_url {
        None => Some(None),
        Some(text) => {
            let url = text.get_ref().trim().trim_end_matches('/');
            match check_url(url) {
                Ok(()) => Some(Some(url.to_string())),
                Err(why) => {
                    bad(
                        text.span(),
                        format!("public_url '{}' {why}", text.get_ref()),
                    );
                    None
                }
            }
        }
    };
    let link_lifetime = match &section.link_lifetime {
        None => Some(jiff::SignedDuration::from_hours(30 * 24)),
        Some(offset) => match super::mail::positive_exact(offset.get_ref()) {
            Some(d) => Some(d),
            None => {
                bad(
                    offset.span(),
                    format!(
                        "link_lifetime '{}' must be a positive wall-clock duration such as \"30d\"",
                        offset.get_ref()
                    ),
                );
                None
            }
        },
    };
    if !section.enabled {
        return None;
    }
    Some(WebSettings {
        listen: listen?,
        public_url: public_url?,
        link_lifetime: link_lifetime?,
    })
}

/// Whether `url` can start a link: http or https, a host, no query or fragment.
fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with https:// (or http://)")?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err("has no host name");
    }
    if url.contains(['?', '#', ' ', '"', '<', '>']) {
        return Err("must not hold a query, a fragment, spaces or quotes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(toml_text: &str) -> (Option<WebSettings>, Vec<String>) {
        #[derive(Deserialize)]
        struct File {
            web: WebSection,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        let mut errors = Vec::new();
        let settings = check(&file.web, Path::new("web.toml"), toml_text, &mut errors);
        (settings, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn an_empty_table_listens_on_the_loopback_default() {
        let (settings, errors) = checked("[web]\n");
        assert!(errors.is_empty(), "{errors:?}");
        let settings = settings.unwrap();
        assert_eq!(settings.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(settings.public_url, None);
        assert_eq!(
            settings.link_lifetime,
            jiff::SignedDuration::from_hours(720)
        );
    }

    #[test]
    fn a_public_url_loses_its_trailing_slash() {
        let (settings, _) = checked(
            "[web]\npublic_url = \"https://followup.example.com/\"\nlink_lifetime = \"7d\"\n",
        );
        let settings = settings.unwrap();
        assert_eq!(
            settings.public_url.as_deref(),
            Some("https://followup.example.com")
        );
        assert_eq!(
            settings.link_lifetime,
            jiff::SignedDuration::from_hours(168)
        );
    }

    #[test]
    fn each_bad_value_is_named_with_its_line() {
        let (settings, errors) = checked(
            "[web]\nlisten = \"localhost\"\npublic_url = \"ftp://x\"\nlink_lifetime = \"-1d\"\n",
        );
        assert_eq!(settings, None);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("web.toml:2:") && errors[0].contains("listen 'localhost'"));
        assert!(errors[1].contains("web.toml:3:") && errors[1].contains("https://"));
        assert!(errors[2].contains("web.toml:4:") && errors[2].contains("link_lifetime"));
    }

    #[test]
    fn enabled_false_turns_the_pages_off() {
        let (settings, errors) = checked("[web]\nenabled = false\n");
        assert!(errors.is_empty());
        assert_eq!(settings, None);
    }
}
