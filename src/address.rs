//! Checks on email addresses beyond their syntax, shared by every place that reads one.
//!
//! `lettre` accepts any RFC 5321 address, including `joan.patel@example` and
//! `team@hughes`: valid syntax, but mail to them goes nowhere off this host, and they
//! are nearly always a domain typed without its ending. This module refuses them, so
//! the mistake surfaces where the address was written, not as a bounce days later.

use lettre::Address;

/// Why an address that parses is still refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The domain is a single label other than `localhost`.
    #[error(
        "'{address}' has no dot in its domain '{domain}': write the whole domain (e.g. {user}@{domain}.com); only 'localhost' may go without one"
    )]
    NoDotInDomain {
        /// The address as written.
        address: String,
        /// The part before the `@`, for the hint.
        user: String,
        /// The domain without a dot.
        domain: String,
    },
}

/// Refuses an address whose domain has no dot, except `localhost` and address literals
/// such as `[192.0.2.1]`.
pub fn check_domain(address: &Address) -> Result<(), AddressError> {
    let bare = address.domain();
    if bare.contains('.') || bare.eq_ignore_ascii_case("localhost") || bare.starts_with('[') {
        return Ok(());
    }
    Err(AddressError::NoDotInDomain {
        address: address.to_string(),
        user: address.user().to_string(),
        domain: bare.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), AddressError> {
        check_domain(&text.parse().unwrap())
    }

    #[test]
    fn a_domain_without_a_dot_is_refused_with_a_hint() {
        for bad in ["joan.patel@example", "team@hughes", "TEAM@Hughes"] {
            let err = check(bad).unwrap_err().to_string();
            assert!(err.contains("no dot in its domain"), "{bad}: {err}");
        }
        let err = check("team@hughes").unwrap_err().to_string();
        assert!(
            err.contains("'team@hughes'") && err.contains("team@hughes.com"),
            "{err}"
        );
    }

    #[test]
    fn full_domains_localhost_and_literals_pass() {
        for good in [
            "joan.patel@example.com",
            "a@mail.hughes.co.uk",
            "root@localhost",
            "root@LocalHost",
            "x@[192.0.2.1]",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }
}
