//! The router as a whole, without sockets: answers to bad links, the limits, and the
//! headers every answer carries.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jiff::{SignedDuration, Timestamp};
use tower::ServiceExt as _;

use super::link::{Action, Claim, KEY_LEN, Signer};
use super::pages::Web;
use super::{csrf, pool, server};

struct Fixture {
    _dir: tempfile::TempDir,
    app: axum::Router,
    signer: Signer,
    pool: pool::Pool,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let db = dir.path().join("followup.db");
    std::fs::write(
        config_dir.join("followup.toml"),
        format!(
            "[store]\npath = \"{}\"\n[mail]\nfrom = \"f@example.com\"\ntransport = \"file\"\n\
             [web]\nlisten = \"127.0.0.1:0\"\n",
            db.display()
        ),
    )
    .unwrap();
    let config = Arc::new(crate::config::load(&config_dir, false).unwrap());
    crate::store::open(&crate::store::Location::Sqlite(db.clone())).unwrap();
    let signer = Signer::new(&[3; KEY_LEN]);
    let pool = pool::Pool::new(crate::store::Location::Sqlite(db));
    let web = Web {
        signer: signer.clone(),
        origins: csrf::Origins::new(None, "127.0.0.1:8025".parse().unwrap()),
        pool: pool.clone(),
        config: Box::new(move || config.clone()),
        clock: crate::clock::Clock::system(),
        states: super::states::States::new(crate::store::Writes::default()),
    };
    Fixture {
        _dir: dir,
        app: server::router(Arc::new(web)),
        signer,
        pool,
    }
}

async fn send(
    app: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, Vec<(String, String)>, Vec<u8>) {
    let answer = app.clone().oneshot(request).await.unwrap();
    let status = answer.status();
    let mut headers: Vec<(String, String)> = answer
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    headers.sort();
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn claim(commitment: i64, expires: Timestamp) -> Claim {
    Claim {
        commitment,
        recipient: "ana@example.com".into(),
        action: Action::Done,
        expires,
    }
}

#[tokio::test]
async fn every_bad_link_gets_the_same_answer_byte_for_byte() {
    let f = fixture();
    let now = Timestamp::now();
    let good = f
        .signer
        .sign(&claim(1, now + SignedDuration::from_hours(1)));
    let expired = f
        .signer
        .sign(&claim(1, now - SignedDuration::from_hours(1)));
    let other_key = Signer::new(&[4; KEY_LEN]).sign(&claim(1, now + SignedDuration::from_hours(1)));
    // Signed with the right key, for a commitment that does not exist.
    let missing = f
        .signer
        .sign(&claim(404, now + SignedDuration::from_hours(1)));
    let paths = [
        format!("/a/{expired}"),
        format!("/a/{other_key}"),
        format!("/a/{missing}"),
        format!("/a/{}", &good[..good.len() - 2]),
        format!("/a/{}", good.replace('.', "")),
        format!("/a/{}", "x".repeat(600)),
        "/a/%C3%28".to_string(),
        "/a/".to_string(),
        "/a/x/y".to_string(),
        "/nothing-here".to_string(),
    ];
    let first = send(&f.app, get(&paths[0])).await;
    assert_eq!(first.0, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&first.2).contains("This link is not valid"));
    for path in &paths {
        assert_eq!(send(&f.app, get(path)).await, first, "GET {path}");
        let post = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("reason=x"))
            .unwrap();
        assert_eq!(send(&f.app, post).await, first, "POST {path}");
    }
}

#[tokio::test]
async fn a_forged_or_expired_link_is_refused_before_any_store_work() {
    let f = fixture();
    let now = Timestamp::now();
    let expired = f.signer.sign(&claim(1, now - SignedDuration::from_secs(1)));
    let forged = Signer::new(&[5; KEY_LEN]).sign(&claim(1, now + SignedDuration::from_hours(1)));
    for token in [expired, forged, "garbage".to_string()] {
        let (status, _, _) = send(&f.app, get(&format!("/a/{token}"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(f.pool.idle(), 0, "no store connection was opened");
    let good = f
        .signer
        .sign(&claim(1, now + SignedDuration::from_hours(1)));
    send(&f.app, get(&format!("/a/{good}"))).await;
    assert_eq!(f.pool.idle(), 1, "a valid link reads the store");
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_whether_announced_or_not() {
    let f = fixture();
    let token = f
        .signer
        .sign(&claim(1, Timestamp::now() + SignedDuration::from_hours(1)));
    let big = "reason=".to_string() + &"x".repeat(server::MAX_BODY);
    let announced = Request::post(format!("/a/{token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", big.len().to_string())
        .body(Body::from(big.clone()))
        .unwrap();
    assert_eq!(
        send(&f.app, announced).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let chunks = chunked(big);
    let streamed = Request::post(format!("/a/{token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(chunks)
        .unwrap();
    assert_eq!(
        send(&f.app, streamed).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

/// `text` in chunks of 1 KiB with no length announced, as a chunked request sends it.
fn chunked(text: String) -> Body {
    struct Chunks(std::collections::VecDeque<axum::body::Bytes>);
    impl axum::body::HttpBody for Chunks {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(hyper::body::Frame::data(c))))
        }
    }
    let chunks = text
        .into_bytes()
        .chunks(1024)
        .map(axum::body::Bytes::copy_from_slice)
        .collect();
    Body::new(Chunks(chunks))
}

#[tokio::test]
async fn every_answer_forbids_caching_framing_and_scripts() {
    let f = fixture();
    for path in ["/healthz", "/a/nope"] {
        let (_, headers, _) = send(&f.app, get(path)).await;
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(value("cache-control"), "no-store", "{path}");
        assert_eq!(value("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(value("x-frame-options"), "DENY", "{path}");
        assert_eq!(value("x-content-type-options"), "nosniff", "{path}");
        assert!(value("content-security-policy").starts_with("default-src 'none'"));
    }
}
