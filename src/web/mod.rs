//! The daemon's HTTP face: the pages behind the links in its emails. Off the
//! scheduler's hot path; GET and HEAD only show, the POST from a shown form acts.

pub mod key;
pub mod link;

use std::net::SocketAddr;

use crate::config::Config;

/// The links the daemon on `config` puts in mail, once it listens on `bound` (the
/// address actually bound, which differs from `[web] listen` for port 0); `None` when
/// `[web]` is off. Reads, or first creates, the link key ([`key`]).
pub fn links_for(config: &Config, bound: SocketAddr) -> Result<Option<link::Links>, key::KeyError> {
    let Some(web) = &config.web else {
        return Ok(None);
    };
    let key = key::load_or_create(&config.store.path)?;
    let public_url = web
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    Ok(Some(link::Links::new(
        link::Signer::new(&key),
        &public_url,
        web.link_lifetime,
    )))
}
