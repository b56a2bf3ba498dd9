//! Capability links: a URL that lets its recipient take one action on one commitment
//! until it expires, without an account. The token is an HMAC-SHA256 over (commitment,
//! recipient, action, expiry) under the daemon's link key; whoever holds the link holds
//! the capability, so a forged, altered or expired token must be refused the same way
//! whatever part of it is wrong.
//!
//! Pure: signing and checking take the time as an argument.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jiff::{SignedDuration, Timestamp};
use ring::hmac;

/// Bytes of a generated link key.
pub const KEY_LEN: usize = 32;

/// Longest token accepted: longer input is refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 512;

/// What a link lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// See the commitment: its timeline, emails and revisions.
    Open,
    /// Mark it done.
    Done,
    /// Move its due time and tell the customer.
    Delay,
    /// Stop the owner's reminders until a chosen time.
    Snooze,
    /// Cancel it.
    Cancel,
    /// Send the customer update the owner was asked about now.
    SendNow,
    /// Hold that customer update back, with a reason.
    Hold,
    /// Close it with how it ended (won, lost, resolved, no answer).
    Close,
    /// Pause its clock while the business waits on the customer, with what for.
    Wait,
    /// Restart its clock after waiting on the customer.
    Resume,
}

/// Every action, in the order the emails list them.
pub const ACTIONS: [Action; 10] = [
    Action::Done,
    Action::Delay,
    Action::Snooze,
    Action::Cancel,
    Action::Open,
    Action::SendNow,
    Action::Hold,
    Action::Close,
    Action::Wait,
    Action::Resume,
];

impl Action {
    /// The word in the token and in the page's path.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Open => "open",
            Action::Done => "done",
            Action::Delay => "delay",
            Action::Snooze => "snooze",
            Action::Cancel => "cancel",
            Action::SendNow => "send_now",
            Action::Hold => "hold",
            Action::Close => "close",
            Action::Wait => "wait",
            Action::Resume => "resume",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Invalid> {
        ACTIONS.into_iter().find(|a| a.as_str() == s).ok_or(Invalid)
    }
}

/// What a valid token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The commitment.
    pub commitment: i64,
    /// The address the link was sent to, lowercased: who acts when it is used.
    pub recipient: String,
    /// The one action it allows.
    pub action: Action,
    /// When it stops working (whole seconds).
    pub expires: Timestamp,
}

/// A token that is not valid: forged, altered, truncated or expired. Deliberately
/// without detail, so that no answer tells a prober what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("this link is not valid")]
pub struct Invalid;

/// Signs and checks tokens under one key. Rotating the key invalidates every link
/// made with the old one.
#[derive(Clone)]
pub struct Signer {
    key: hmac::Key,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer over `key` (at least 16 bytes; [`KEY_LEN`] when generated).
    pub fn new(key: &[u8]) -> Signer {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The token for `claim`: `PAYLOAD.MAC`, both base64url without padding, where
    /// the payload is `commitment:action:expiry:recipient` (the recipient last, as the
    /// only part that may hold a colon-free but dotted text).
    pub fn sign(&self, claim: &Claim) -> String {
        let payload = payload(claim);
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!("{}.{}", B64.encode(payload), B64.encode(tag.as_ref()))
    }

    /// The claim of `token` if its MAC is right (compared in constant time) and it has
    /// not expired at `now`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claim, Invalid> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Invalid);
        }
        let (payload, tag) = token.split_once('.').ok_or(Invalid)?;
        let payload = B64.decode(payload).map_err(|_| Invalid)?;
        let tag = B64.decode(tag).map_err(|_| Invalid)?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| Invalid)?;
        let claim = parse_payload(&payload).ok_or(Invalid)?;
        if claim.expires <= now {
            return Err(Invalid);
        }
        Ok(claim)
    }
}

fn payload(claim: &Claim) -> String {
    format!(
        "{}:{}:{}:{}",
        claim.commitment,
        claim.action.as_str(),
        claim.expires.as_second(),
        claim.recipient
    )
}

fn parse_payload(payload: &[u8]) -> Option<Claim> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(4, ':');
    let commitment = parts.next()?.parse().ok()?;
    let action = parts.next()?.parse().ok()?;
    let expires = Timestamp::from_second(parts.next()?.parse().ok()?).ok()?;
    let recipient = parts.next()?.to_string();
    Some(Claim {
        commitment,
        recipient,
        action,
        expires,
    })
}

/// Makes the links put in mail: `PUBLIC_URL/a/TOKEN`.
#[derive(Clone, Debug)]
pub struct Links {
    signer: Signer,
    public_url: String,
    lifetime: SignedDuration,
}

impl Links {
    /// Links under `public_url` (no trailing slash needed) valid for `lifetime`.
    pub fn new(signer: Signer, public_url: &str, lifetime: SignedDuration) -> Links {
        Links {
            signer,
            public_url: public_url.trim_end_matches('/').to_string(),
            lifetime,
        }
    }

    /// The link letting `recipient` take `action` on `commitment`, made at `now`.
    pub fn url(&self, commitment: i64, recipient: &str, action: Action, now: Timestamp) -> String {
        let expires =
            Timestamp::from_second((now + self.lifetime).as_second()).unwrap_or(Timestamp::MAX);
        let token = self.signer.sign(&Claim {
            commitment,
            recipient: recipient.to_lowercase(),
            action,
            expires,
        });
        format!("{}/a/{token}", self.public_url)
    }

    /// The signer, for checking the links when they come back.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn claim() -> Claim {
        Claim {
            commitment: 12,
            recipient: "ana.lopez@example.com".into(),
            action: Action::Done,
            expires: ts("2026-12-31T00:00:00Z"),
        }
    }

    #[test]
    fn a_signed_claim_comes_back_until_it_expires() {
        let signer = Signer::new(&[7; KEY_LEN]);
        let token = signer.sign(&claim());
        assert_eq!(
            signer.verify(&token, ts("2026-12-30T23:59:59Z")),
            Ok(claim())
        );
        assert_eq!(
            signer.verify(&token, ts("2026-12-31T00:00:00Z")),
            Err(Invalid)
        );
    }

    #[test]
    fn another_key_or_any_changed_byte_is_invalid() {
        let signer = Signer::new(&[7; KEY_LEN]);
        let now = ts("2026-12-01T00:00:00Z");
        let token = signer.sign(&claim());
        assert_eq!(Signer::new(&[8; KEY_LEN]).verify(&token, now), Err(Invalid));
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered != token {
                assert_eq!(signer.verify(&altered, now), Err(Invalid), "byte {i}");
            }
        }
        assert_eq!(signer.verify(&token[..token.len() - 1], now), Err(Invalid));
        assert_eq!(signer.verify("", now), Err(Invalid));
        assert_eq!(signer.verify(&"A".repeat(10_000), now), Err(Invalid));
    }

    #[test]
    fn a_payload_signed_for_one_action_cannot_be_relabelled() {
        let signer = Signer::new(&[7; KEY_LEN]);
        let now = ts("2026-12-01T00:00:00Z");
        let token = signer.sign(&claim());
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!(
            "{}.{tag}",
            B64.encode("12:cancel:1798675200:ana.lopez@example.com")
        );
        assert_eq!(signer.verify(&forged, now), Err(Invalid));
    }

    #[test]
    fn links_carry_the_lowercased_recipient_and_the_lifetime() {
        let links = Links::new(
            Signer::new(&[1; KEY_LEN]),
            "https://followup.example.com/",
            SignedDuration::from_hours(24 * 30),
        );
        let now = ts("2026-12-01T10:00:00.750Z");
        let url = links.url(5, "Ana@Example.com", Action::Snooze, now);
        let token = url.strip_prefix("https://followup.example.com/a/").unwrap();
        let claim = links.signer().verify(token, now).unwrap();
        assert_eq!(claim.recipient, "ana@example.com");
        assert_eq!(claim.action, Action::Snooze);
        assert_eq!(claim.expires, ts("2026-12-31T10:00:00Z"));
    }
}
