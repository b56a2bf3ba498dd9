//! Whether a POST may act: a form on another site must not be able to use a link its
//! visitor holds. Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`,
//! `Referer`); a client that says nothing is not a browser a page could drive, and the
//! token alone decides.
//!
//! The pages send `Referrer-Policy: no-referrer`, under which a browser sends
//! `Origin: null` with the page's own form; `Sec-Fetch-Site: same-origin` vouches for
//! such a request, so `null` is accepted only with it.

/// The origins a form may be posted from: the public URL's, and the address the
/// daemon listens on (with `localhost` for a loopback address).
#[derive(Clone, Debug, Default)]
pub struct Origins(Vec<String>);

impl Origins {
    /// The origins of `public_url` (if any) and of `http://bound`.
    pub fn new(public_url: Option<&str>, bound: std::net::SocketAddr) -> Origins {
        let mut origins = Vec::new();
        if let Some(origin) = public_url.and_then(origin_of) {
            origins.push(origin);
        }
        origins.push(format!("http://{bound}"));
        if bound.ip().is_loopback() {
            origins.push(format!("http://localhost:{}", bound.port()));
        }
        Origins(origins)
    }

    fn contains(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/');
        self.0.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// What a request says about where it comes from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Provenance<'a> {
    /// `Sec-Fetch-Site`.
    pub fetch_site: Option<&'a str>,
    /// `Origin`.
    pub origin: Option<&'a str>,
    /// `Referer`.
    pub referer: Option<&'a str>,
}

/// True if a POST saying `from` may act.
pub fn allowed(from: Provenance<'_>, origins: &Origins) -> bool {
    let fetch_site = from.fetch_site.map(|s| s.trim().to_ascii_lowercase());
    if let Some(site) = &fetch_site
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    if let Some(origin) = from.origin {
        if origin.trim() == "null" {
            return fetch_site.as_deref() == Some("same-origin");
        }
        return origins.contains(origin);
    }
    if let Some(referer) = from.referer {
        return origin_of(referer).is_some_and(|o| origins.contains(&o));
    }
    true
}

/// `scheme://host[:port]` of `url`, lowercased; `None` if it has no scheme or host.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    if scheme.is_empty() || host.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{host}").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Origins {
        Origins::new(
            Some("https://followup.example.com/app"),
            "127.0.0.1:8025".parse().unwrap(),
        )
    }

    fn from<'a>(
        fetch_site: Option<&'a str>,
        origin: Option<&'a str>,
        referer: Option<&'a str>,
    ) -> Provenance<'a> {
        Provenance {
            fetch_site,
            origin,
            referer,
        }
    }

    #[test]
    fn the_pages_own_form_is_allowed_however_the_browser_says_so() {
        let o = origins();
        assert!(allowed(
            from(None, Some("https://followup.example.com"), None),
            &o
        ));
        assert!(allowed(
            from(Some("same-origin"), Some("http://127.0.0.1:8025"), None),
            &o
        ));
        assert!(allowed(from(None, Some("http://localhost:8025"), None), &o));
        // Referrer-Policy: no-referrer makes the browser send Origin: null.
        assert!(allowed(from(Some("same-origin"), Some("null"), None), &o));
        assert!(allowed(
            from(None, None, Some("https://FOLLOWUP.example.com/a/tok")),
            &o
        ));
    }

    #[test]
    fn a_client_that_says_nothing_is_left_to_the_token() {
        assert!(allowed(Provenance::default(), &origins()));
    }

    #[test]
    fn another_site_is_refused() {
        let o = origins();
        assert!(!allowed(
            from(None, Some("https://evil.example.net"), None),
            &o
        ));
        assert!(!allowed(
            from(
                Some("cross-site"),
                Some("https://followup.example.com"),
                None
            ),
            &o
        ));
        assert!(!allowed(from(Some("same-site"), None, None), &o));
        assert!(!allowed(from(None, Some("null"), None), &o));
        assert!(!allowed(from(Some("cross-site"), Some("null"), None), &o));
        assert!(!allowed(
            from(None, None, Some("https://followup.example.com.evil.net/")),
            &o
        ));
        assert!(!allowed(from(None, None, Some("not a url")), &o));
        assert!(!allowed(
            from(None, Some("http://127.0.0.1:9999"), None),
            &o
        ));
    }
}
