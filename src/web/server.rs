//! The HTTP server: binds `[web] listen`, accepts connections up to a cap and serves
//! each with hyper's HTTP/1.1 under a header read timeout, a time limit per request and
//! per connection, and a cap on the body. It runs on a thread of its own and shares
//! none of the scheduler's locks: pages reach the store through connections of their
//! own ([`super::pool`]).
//!
//! Nothing here logs a request's path: the path holds a token, which is a capability.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use super::html;
use super::pages::{self, Web};

/// Largest request body: a form of a few fields needs far less.
pub const MAX_BODY: usize = 16 * 1024;

/// Longest a client may take to send a request's head, and to send the next one on
/// a kept-alive connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest one request may take, its body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a connection is kept: then it is closed after the request in flight.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 512;

/// Largest request head (hyper's smallest allowed read buffer is 8 KiB).
const MAX_HEAD: usize = 16 * 1024;

/// How long to wait before trying to bind again after it failed.
pub const BIND_RETRY: Duration = Duration::from_secs(30);

/// The routes, with the limits and the headers every answer carries.
pub fn router(web: Arc<Web>) -> Router {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&html::content_security_policy())
                .expect("the policy is plain ASCII"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    let mut router = Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/a/{token}",
            axum::routing::get(pages::show).post(pages::act),
        )
        .fallback(pages::not_found)
        .with_state(web)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    router
}

/// Serves `app` on `listener` until `stop` turns true. Connections in flight are
/// dropped then; a store write they started finishes on its blocking thread.
pub async fn serve(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    while !*stop.borrow() {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close first.
                    tracing::warn!(cause = %e, "cannot accept a web connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let app = app.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD);
            let connection =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            let mut connection = pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = tokio::time::sleep(CONNECTION_LIFETIME) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
                }
            }
        });
    }
    connections.shutdown().await;
}

/// Serves `app` like [`serve`], on a thread of its own with a single-threaded runtime,
/// so that a flood of page views never waits for the scheduler's thread nor holds it
/// up. One thread serves the most pages on two cores: a second one only contends with
/// the scheduler and spreads the page latency (bench/run.sh web). Returns once `stop`
/// turned true and the pages have stopped.
pub async fn serve_apart(listener: TcpListener, app: Router, stop: watch::Receiver<bool>) {
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(cause = %e, "the web listener cannot be handed over; the pages are off");
            return;
        }
    };
    let (done, stopped) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("followup-web".into())
        .spawn(move || {
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        let listener = TcpListener::from_std(listener)?;
                        serve(listener, app, stop).await;
                        Ok(())
                    })
                });
            let _ = done.send(served);
        });
    if let Err(e) = thread {
        tracing::error!(cause = %e, "no thread for the web pages; the pages are off");
        return;
    }
    match stopped.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(cause = %e, "the web pages stopped"),
        Err(_) => tracing::error!("the web pages stopped"),
    }
}

/// Binds `addr`, saying why not in the log.
pub async fn bind(addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::error!(
                cause = %e,
                "cannot listen on {addr} for the web pages ([web] listen); emails carry \
                 commands instead of links until it works (tried again every {} s)",
                BIND_RETRY.as_secs()
            );
            None
        }
    }
}
