//! The handlers: check the token before anything else (a bad one costs an HMAC and no
//! store work), then hand the page to `web::page` on one of the web's own store
//! connections. Every link that does not check gets the same answer, byte for byte.

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use jiff::Timestamp;

use super::csrf::{self, Origins, Provenance};
use super::forms::{Fields, paragraph};
use super::html;
use super::link::{Action, Claim, Signer};
use super::page::{self, Page};
use super::pool::Pool;
use super::states::States;
use crate::actions::CommitmentState;
use crate::config::Config;

/// What the handlers share.
pub struct Web {
    /// Checks the tokens (and signs the Open link each page offers).
    pub signer: Signer,
    /// Where forms may be posted from.
    pub origins: Origins,
    /// The web's store connections.
    pub pool: Pool,
    /// The running config (a reload changes it).
    pub config: Box<dyn Fn() -> Arc<Config> + Send + Sync>,
    /// The daemon's clock: link expiry and "today" follow it.
    pub clock: crate::clock::Clock,
    /// The states the action pages were made from, kept while the store is unchanged.
    pub states: States<CommitmentState, Config>,
}

/// The answer to a bad link, and to any path that is not a page.
pub async fn not_found() -> Response {
    invalid()
}

fn invalid() -> Response {
    (StatusCode::NOT_FOUND, Html(html::invalid_link())).into_response()
}

fn answer(page: Page) -> Response {
    (page.status, Html(html::page(&page.title, &page.body))).into_response()
}

/// `GET|HEAD /a/{token}`: what the link will do, and its form.
pub async fn show(
    State(web): State<Arc<Web>>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let now = web.clock.now();
    let Some(claim) = checked(&web, token, now) else {
        return invalid();
    };
    let config = (web.config)();
    let open = open_link(&web.signer, &claim);
    let inline = web.pool.read_now(|store| {
        page::Visit {
            store,
            config: &config,
            claim: &claim,
            open_link: &open,
            now,
        }
        .show_kept(&web.states, &config)
    });
    match inline {
        Some(made) => respond(Ok(made)),
        None => visit(&web, claim, now, |visit| visit.show()).await,
    }
}

/// `POST /a/{token}`: takes the action, then says what happened.
pub async fn act(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    token: Result<Path<String>, PathRejection>,
    fields: Result<Form<Fields>, FormRejection>,
) -> Response {
    let now = web.clock.now();
    let Some(claim) = checked(&web, token, now) else {
        return invalid();
    };
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let from = Provenance {
        fetch_site: text(header::HeaderName::from_static("sec-fetch-site")),
        origin: text(header::ORIGIN),
        referer: text(header::REFERER),
    };
    if !csrf::allowed(from, &web.origins) {
        tracing::warn!(
            commitment = claim.commitment,
            action = %claim.action,
            "a form sent from another site was refused"
        );
        return answer(Page {
            status: StatusCode::FORBIDDEN,
            title: "This form came from another site".into(),
            body: paragraph(
                "Nothing was changed. Open the link from your email and use the form there.",
                Some("warn"),
            ),
        });
    }
    let fields = match fields {
        Ok(Form(fields)) => fields,
        Err(rejection) => {
            let status = rejection.status();
            return answer(Page {
                status,
                title: "This form cannot be read".into(),
                body: paragraph(
                    &format!("Nothing was changed: {}.", rejection.body_text()),
                    Some("warn"),
                ),
            });
        }
    };
    tracing::info!(commitment = claim.commitment, action = %claim.action, "link used");
    let answer = visit(&web, claim, now, move |visit| visit.act(&fields)).await;
    // After the commit: a page view from now on reads the commitment again.
    web.states.wrote();
    answer
}

/// Runs `page` for `claim` on one of the web's store connections, and answers with
/// what it made.
async fn visit(
    web: &Web,
    claim: Claim,
    now: Timestamp,
    page: impl FnOnce(&page::Visit<'_>) -> Result<Page, page::Invalid> + Send + 'static,
) -> Response {
    let config = (web.config)();
    let open_link = open_link(&web.signer, &claim);
    let made = web
        .pool
        .call(move |store| {
            page(&page::Visit {
                store,
                config: &config,
                claim: &claim,
                open_link: &open_link,
                now,
            })
        })
        .await;
    respond(made)
}

fn checked(web: &Web, token: Result<Path<String>, PathRejection>, now: Timestamp) -> Option<Claim> {
    let Path(token) = token.ok()?;
    web.signer.verify(&token, now).ok()
}

/// The Open link for the same recipient and expiry as `claim`, which each page
/// offers: relative (the bare token, beside the page's own), so that it works under
/// any path a reverse proxy serves the pages at.
fn open_link(signer: &Signer, claim: &Claim) -> String {
    signer.sign(&Claim {
        action: Action::Open,
        ..claim.clone()
    })
}

fn respond(result: Result<Result<Page, page::Invalid>, crate::store::StoreError>) -> Response {
    match result {
        Ok(Ok(page)) => answer(page),
        Ok(Err(page::Invalid)) => invalid(),
        Err(e) => {
            tracing::error!(cause = %e, "the web pages cannot open the store");
            answer(Page {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "Try again in a minute".into(),
                body: paragraph("The promise cannot be read just now.", Some("warn")),
            })
        }
    }
}
