//! Reaching the relay: the host name's addresses tried under one deadline.
//!
//! A name often resolves to several addresses (IPv6 and IPv4, or several hosts), and
//! one of them may swallow the connection attempt without an answer. Trying them one
//! after another, each with the full timeout, would make the connect take the timeout
//! once per address; waiting for each to fail would leave a good address untried.
//! So the attempts overlap, as in RFC 8305 ("Happy Eyeballs"): the next address is
//! tried when the previous has not connected after [`STAGGER`] (or at once when it
//! failed), the first connection wins, and the whole connect, host name lookup
//! included, ends at one deadline.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long an attempt has alone before the next address is tried too (RFC 8305
/// recommends 250 ms).
pub(super) const STAGGER: Duration = Duration::from_millis(250);

/// Connects to the first of `addresses` that answers, by `deadline`; `connect` makes
/// one attempt. The error is the last attempt's, or a timeout.
pub(super) async fn first_to_answer<T, F, Fut>(
    addresses: impl IntoIterator<Item = SocketAddr>,
    deadline: Instant,
    connect: F,
) -> io::Result<T>
where
    T: Send + 'static,
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>> + Send + 'static,
{
    let mut waiting = addresses.into_iter();
    let mut attempts = JoinSet::new();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    let race = async {
        loop {
            if attempts.is_empty() {
                match waiting.next() {
                    Some(address) => {
                        attempts.spawn(connect(address));
                    }
                    None => return Err(last),
                }
            }
            // A failed attempt, or one that has had its time alone, brings on the next.
            tokio::select! {
                Some(done) = attempts.join_next() => match done {
                    Ok(Ok(stream)) => return Ok(stream),
                    Ok(Err(e)) => last = e,
                    Err(e) => last = io::Error::other(e),
                },
                _ = tokio::time::sleep(STAGGER) => {}
            }
            if let Some(address) = waiting.next() {
                attempts.spawn(connect(address));
            }
        }
    };
    match tokio::time::timeout_at(deadline, race).await {
        Ok(result) => result,
        // Attempts still running are cancelled as `attempts` is dropped.
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timed out",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn addresses(n: u16) -> Vec<SocketAddr> {
        (1..=n)
            .map(|port| SocketAddr::from(([192, 0, 2, 1], port)))
            .collect()
    }

    /// An attempt that never answers for the ports in `silent`, is refused for the ports
    /// in `refused`, and connects otherwise; every port tried is noted in `tried`.
    fn fake(
        silent: &'static [u16],
        refused: &'static [u16],
        tried: Arc<Mutex<Vec<u16>>>,
    ) -> impl Fn(SocketAddr) -> std::pin::Pin<Box<dyn Future<Output = io::Result<u16>> + Send>>
    {
        move |address| {
            let port = address.port();
            tried.lock().unwrap().push(port);
            Box::pin(async move {
                if silent.contains(&port) {
                    std::future::pending::<()>().await;
                }
                if refused.contains(&port) {
                    return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
                }
                Ok(port)
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn addresses_that_never_answer_cost_one_timeout_in_all() {
        let tried = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let timeout = Duration::from_secs(30);
        let result = first_to_answer(
            addresses(3),
            start + timeout,
            fake(&[1, 2, 3], &[], tried.clone()),
        )
        .await;
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::TimedOut);
        // The clock is tokio's paused one: it moved exactly as far as the timers did.
        assert_eq!(Instant::now() - start, timeout);
        assert_eq!(*tried.lock().unwrap(), [1, 2, 3], "every address was tried");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_address_does_not_keep_the_next_one_from_connecting() {
        let tried = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let result = first_to_answer(
            addresses(3),
            start + Duration::from_secs(30),
            fake(&[1], &[2], tried.clone()),
        )
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(*tried.lock().unwrap(), [1, 2, 3]);
        assert_eq!(
            Instant::now() - start,
            STAGGER,
            "the refusal moved on at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_address_refuses_the_last_refusal_is_the_error() {
        let tried = Arc::new(Mutex::new(Vec::new()));
        let result = first_to_answer(
            addresses(2),
            Instant::now() + Duration::from_secs(30),
            fake(&[], &[1, 2], tried.clone()),
        )
        .await;
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
        let none = first_to_answer(
            Vec::new(),
            Instant::now() + Duration::from_secs(30),
            fake(&[], &[], tried),
        )
        .await;
        assert_eq!(none.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
