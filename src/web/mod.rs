//! The daemon's HTTP face: the pages behind the links in its emails. Off the
//! scheduler's hot path; GET and HEAD only show, the POST from a shown form acts.

pub mod csrf;
pub mod forms;
pub mod html;
pub mod key;
pub mod link;
mod open;
mod page;
pub mod pages;
pub mod pool;
pub mod server;
pub mod states;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::scheduler::Shared;

/// The links the daemon on `config` puts in mail, once it listens on `bound` (the
/// address actually bound, which differs from `[web] listen` for port 0); `None` when
/// `[web]` is off. Reads, or first creates, the link key ([`key`]).
pub fn links_for(config: &Config, bound: SocketAddr) -> Result<Option<link::Links>, key::KeyError> {
    if config.web.is_none() {
        return Ok(None);
    }
    Ok(links_with(config, &key::for_store(&config.store)?, bound))
}

/// The links of [`links_for`], signed with `key`.
fn links_with(config: &Config, key: &[u8], bound: SocketAddr) -> Option<link::Links> {
    let web = config.web.as_ref()?;
    let public_url = web
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    Some(link::Links::new(
        link::Signer::new(key),
        &public_url,
        web.link_lifetime,
    ))
}

/// Starts the pages when `[web]` is on. The first bind is tried before this returns,
/// so that the links are in place before the first email is composed; if it fails the
/// rest of the daemon serves on, emails carry commands, and binding is tried again
/// every [`server::BIND_RETRY`] until `stop`.
pub async fn start(shared: &Arc<Shared>, stop: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
    let listen = shared.config().web.as_ref()?.listen;
    // Read off the runtime's thread: the key may come from the store.
    let store = shared.config().store.clone();
    let key = match tokio::task::spawn_blocking(move || key::for_store(&store)).await {
        Ok(Ok(key)) => Arc::new(key),
        Ok(Err(e)) => {
            tracing::error!(cause = %e, "the pages are off and emails carry commands instead of links");
            return None;
        }
        Err(e) => {
            tracing::error!(cause = %e, "the pages are off: reading the link key failed");
            return None;
        }
    };
    let first = match server::bind(listen).await {
        Some(listener) => Some(prepare(shared, listener, &key)?),
        None => None,
    };
    let shared = shared.clone();
    Some(tokio::spawn(async move {
        let mut stop = stop;
        let (listener, web) = match first {
            Some(ready) => ready,
            None => loop {
                tokio::select! {
                    _ = tokio::time::sleep(server::BIND_RETRY) => {}
                    _ = stop.changed() => return,
                }
                if let Some(listener) = server::bind(listen).await {
                    match prepare(&shared, listener, &key) {
                        Some(ready) => break ready,
                        None => return,
                    }
                }
            },
        };
        server::serve_apart(listener, server::router(web), stop).await;
    }))
}

/// Makes the links for the address bound and hands them to composing; `None` (logged)
/// if the link key cannot be read or made, which leaves the pages off.
fn prepare(
    shared: &Arc<Shared>,
    listener: TcpListener,
    key: &[u8],
) -> Option<(TcpListener, Arc<pages::Web>)> {
    let config = shared.config();
    let bound = match listener.local_addr() {
        Ok(bound) => bound,
        Err(e) => {
            tracing::error!(cause = %e, "the web listener has no address; the pages are off");
            return None;
        }
    };
    let links = links_with(&config, key, bound)?;
    let location = match config.store.location() {
        Ok(location) => location,
        Err(e) => {
            tracing::error!(cause = %e, "the pages are off and emails carry commands instead of links");
            return None;
        }
    };
    let public_url = config.web.as_ref().and_then(|w| w.public_url.as_deref());
    let web = pages::Web {
        signer: links.signer().clone(),
        origins: csrf::Origins::new(public_url, bound),
        pool: pool::Pool::new(location),
        config: Box::new({
            let shared = shared.clone();
            move || shared.config()
        }),
        clock: shared.clock.clone(),
        states: states::States::new(shared.store.writes().clone()),
    };
    shared.set_links(Some(links));
    tracing::info!("web pages at http://{bound}");
    Some((listener, Arc::new(web)))
}
