//! The SMTP client: a small pool of connections to one relay.
//!
//! Each connection is opened here, on a TCP socket with `TCP_NODELAY` set: with Nagle's
//! algorithm a small write that follows another before its acknowledgement (a relay
//! without PIPELINING, a message that is not text) waits for the relay's delayed
//! acknowledgement, tens of milliseconds a message. TLS (implicit or STARTTLS), EHLO,
//! AUTH and the commands themselves come from lettre's `AsyncSmtpConnection`.
//!
//! A connection goes back to the pool after a message the relay accepted and is reused
//! as it is: no NOOP round trip first. Whether the relay closed it meanwhile is seen
//! without a round trip, on a duplicate of the socket (the relay's FIN or its `421`
//! is already there to read). If the relay closes it anyway just as it is reused, the
//! first command fails and the message goes again on a new connection; nothing of it was
//! transferred, so that is not a failed attempt.
//!
//! The mail transaction itself, pipelined when the relay allows, is in `transaction`.
//!
//! Every command waits at most the configured timeout, and so does the whole connect
//! (`connect`), however many addresses the host name has.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Ehlo, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use transaction::{Failure, Stage, Transaction};

mod connect;
mod transaction;

/// How long a connection may sit unused in the pool before it is closed rather than
/// reused; relays drop idle sessions after a few minutes.
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// A failure while talking to the relay. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// No TCP connection could be made.
    #[error("cannot connect to the SMTP server {address}: {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The relay did not answer in time.
    #[error("the SMTP server did not answer within {after:?} ({during})")]
    Timeout {
        /// What was waited for.
        during: &'static str,
        /// The configured timeout.
        after: Duration,
    },
    /// The message needs an extension the relay does not offer.
    #[error("the SMTP server does not support {0}, which this message needs")]
    Unsupported(&'static str),
    /// A username is set but the relay offers no login method this client has.
    #[error("{0}")]
    NoLogin(&'static str),
    /// A reply, TLS or protocol failure, as lettre reports it.
    #[error(transparent)]
    Protocol(#[from] lettre::transport::smtp::Error),
}

/// How the connection is protected.
#[derive(Clone)]
pub enum Security {
    /// Plain text.
    None,
    /// STARTTLS after the greeting; the relay must offer it.
    Starttls(TlsParameters),
    /// TLS from the first byte.
    Wrapper(TlsParameters),
}

/// Where and how to connect.
pub struct Relay {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS.
    pub security: Security,
    /// Name sent in EHLO.
    pub hello: ClientId,
    /// Login, if any.
    pub credentials: Option<Credentials>,
    /// Longest wait for one step of the exchange.
    pub timeout: Duration,
    /// Most connections kept open between messages.
    pub max_idle: usize,
}

/// A pool of connections to one relay.
pub struct SmtpPool {
    relay: Relay,
    idle: Mutex<Vec<Parked>>,
}

/// An open, authenticated connection.
struct Connection {
    smtp: AsyncSmtpConnection,
    /// The relay offers PIPELINING: a message's commands go out in one write.
    pipelining: bool,
    /// The same socket, to look for a close without disturbing the SMTP stream.
    probe: std::net::TcpStream,
}

struct Parked {
    connection: Connection,
    since: Instant,
}

impl Connection {
    /// True if the relay closed the connection or said something unasked (a `421`
    /// before closing): either way it cannot carry another message.
    fn closed_by_peer(&self) -> bool {
        let mut byte = [0u8; 1];
        match self.probe.peek(&mut byte) {
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            Ok(_) => true,
        }
    }
}

impl SmtpPool {
    /// A pool for `relay`; connections open when first needed.
    pub fn new(relay: Relay) -> SmtpPool {
        SmtpPool {
            relay,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Connects, with TLS and login as configured, and keeps the connection for the
    /// next message.
    pub async fn check(&self) -> Result<(), SmtpError> {
        let connection = self.connect().await?;
        self.park(connection);
        Ok(())
    }

    /// Sends one message. With a `gate`, a permit is taken from it just before the
    /// message's data goes out (the point after which the relay may have accepted it)
    /// and handed back with the result; the caller keeps it until the outcome is
    /// recorded, which bounds the messages a crash can repeat.
    pub async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        gate: Option<&Arc<Semaphore>>,
    ) -> (Result<(), SmtpError>, Option<OwnedSemaphorePermit>) {
        if let Some(mut connection) = self.take() {
            let mut permit = None;
            match self
                .transfer(&mut connection, envelope, message, gate, &mut permit)
                .await
            {
                // The relay closed the parked connection as it was reused: nothing of
                // the message was transferred, so it goes again on a new one.
                Err((Stage::First, e)) if closed_on_reuse(&e) => {
                    tracing::debug!(cause = %e, "a pooled SMTP connection was closed by the server; reconnecting");
                }
                result => return self.settle(connection, result, permit).await,
            }
        }
        let mut connection = match self.connect().await {
            Ok(connection) => connection,
            Err(e) => return (Err(e), None),
        };
        let mut permit = None;
        let result = self
            .transfer(&mut connection, envelope, message, gate, &mut permit)
            .await;
        self.settle(connection, result, permit).await
    }

    /// After a transfer: a connection that worked goes back to the pool, and so does
    /// one whose message the relay refused; any other is closed.
    async fn settle(
        &self,
        connection: Connection,
        result: Result<(), Failure>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> (Result<(), SmtpError>, Option<OwnedSemaphorePermit>) {
        match result {
            Ok(()) => {
                self.park(connection);
                (Ok(()), permit)
            }
            Err((Stage::Stuck, e)) => (Err(e), permit),
            Err((_, e)) => {
                self.discard(connection, &e).await;
                (Err(e), permit)
            }
        }
    }

    /// A parked connection still open, if any; stale or closed ones are dropped.
    fn take(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(parked) = idle.pop() {
            if parked.since.elapsed() < IDLE_LIMIT && !parked.connection.closed_by_peer() {
                return Some(parked.connection);
            }
            quit_later(parked.connection, self.relay.timeout);
        }
        None
    }

    fn park(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.relay.max_idle {
            idle.push(Parked {
                connection,
                since: Instant::now(),
            });
        } else {
            drop(idle);
            quit_later(connection, self.relay.timeout);
        }
    }

    /// After a failure: when the relay refused the message (a recipient, say) but
    /// still answers, RSET readies the connection for the next message and it goes
    /// back to the pool; otherwise it is closed, politely if the relay still answers.
    async fn discard(&self, mut connection: Connection, error: &SmtpError) {
        let SmtpError::Protocol(e) = error else {
            return;
        };
        let Some(code) = e.status() else {
            return;
        };
        if code.to_string() != "421"
            && self
                .timed("RSET", connection.smtp.command(Rset))
                .await
                .is_ok()
        {
            self.park(connection);
            return;
        }
        let _ = tokio::time::timeout(self.relay.timeout, connection.smtp.quit()).await;
    }

    /// Runs `future`, failing after the relay's timeout.
    async fn timed<T, E: Into<SmtpError>>(
        &self,
        during: &'static str,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, SmtpError> {
        within(self.relay.timeout, during, future).await
    }

    /// Opens a connection: TCP with `TCP_NODELAY`, TLS, EHLO, STARTTLS, AUTH.
    async fn connect(&self) -> Result<Connection, SmtpError> {
        let relay = &self.relay;
        let address = format!("{}:{}", relay.host, relay.port);
        let tcp = self.tcp(&address).await?;
        let io_error = |source| SmtpError::Connect {
            address: address.clone(),
            source,
        };
        tcp.set_nodelay(true).map_err(io_error)?;
        let socket = tcp.into_std().map_err(io_error)?;
        let probe = socket.try_clone().map_err(io_error)?;
        let tcp = TcpStream::from_std(socket).map_err(io_error)?;
        let stream: Box<dyn AsyncTokioStream> = match &relay.security {
            Security::Wrapper(tls) => {
                #[allow(deprecated)]
                let mut stream =
                    lettre::transport::smtp::client::AsyncNetworkStream::use_existing_tokio1(
                        Box::new(tcp),
                    );
                self.timed("the TLS handshake", stream.upgrade_tls(tls.clone()))
                    .await?;
                Box::new(Wrapped(stream))
            }
            _ => Box::new(tcp),
        };
        let mut smtp = self
            .timed(
                "the greeting",
                AsyncSmtpConnection::connect_with_transport(stream, &relay.hello),
            )
            .await?;
        if let Security::Starttls(tls) = &relay.security {
            self.timed("STARTTLS", smtp.starttls(tls.clone(), &relay.hello))
                .await?;
        }
        // lettre keeps only the extensions it uses from the EHLO reply; this one
        // is asked again to see whether the relay takes commands pipelined.
        let extensions = self
            .timed("EHLO", smtp.command(Ehlo::new(relay.hello.clone())))
            .await?;
        let pipelining = extensions.message().skip(1).any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
        });
        if let Some(credentials) = &relay.credentials {
            if smtp
                .server_info()
                .get_auth_mechanism(DEFAULT_MECHANISMS)
                .is_none()
            {
                return Err(no_login(&relay.security, &smtp));
            }
            self.timed("the login", smtp.auth(DEFAULT_MECHANISMS, credentials))
                .await?;
        }
        Ok(Connection {
            smtp,
            pipelining,
            probe,
        })
    }

    async fn tcp(&self, address: &str) -> Result<TcpStream, SmtpError> {
        let relay = &self.relay;
        let fail = |source| SmtpError::Connect {
            address: address.to_string(),
            source,
        };
        // One deadline for the lookup and every address it gives.
        let deadline = Instant::now() + relay.timeout;
        let resolved = within(relay.timeout, "the host name lookup", async {
            tokio::net::lookup_host((relay.host.as_str(), relay.port))
                .await
                .map_err(fail)
        })
        .await?;
        connect::first_to_answer(resolved, deadline, TcpStream::connect)
            .await
            .map_err(fail)
    }

    /// One mail transaction on `connection`.
    async fn transfer(
        &self,
        connection: &mut Connection,
        envelope: &Envelope,
        message: &[u8],
        gate: Option<&Arc<Semaphore>>,
        permit: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<(), Failure> {
        let transaction = Transaction {
            envelope,
            message,
            timeout: self.relay.timeout,
            gate,
        };
        transaction
            .run(&mut connection.smtp, connection.pipelining, permit)
            .await
    }
}

/// Runs `future`, failing with [`SmtpError::Timeout`] after `timeout`.
async fn within<T, E: Into<SmtpError>>(
    timeout: Duration,
    during: &'static str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, SmtpError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(SmtpError::Timeout {
            during,
            after: timeout,
        }),
    }
}

/// Why a login cannot even be tried: relays commonly offer AUTH only once the
/// connection is encrypted, which with `tls = "none"` it never is.
fn no_login(security: &Security, smtp: &AsyncSmtpConnection) -> SmtpError {
    let starttls = smtp.server_info().supports_feature(Extension::StartTls);
    SmtpError::NoLogin(match security {
        Security::None if starttls => {
            "the SMTP server offers a login only after STARTTLS: set [mail.smtp] tls = \"starttls\" (the password must not go in clear text anyway)"
        }
        Security::None => {
            "the SMTP server offers no login on a plain connection: set [mail.smtp] tls = \"starttls\" or \"tls\" as the relay's documentation says, or remove username if it needs none"
        }
        _ => {
            "the SMTP server offers none of the login methods followup has (PLAIN, LOGIN): check [mail.smtp] username, or remove it if the relay needs no login"
        }
    })
}

/// True for a failure that shows the relay had closed the connection before the
/// message began: no reply at all, or a `421` (closing).
fn closed_on_reuse(e: &SmtpError) -> bool {
    match e {
        SmtpError::Protocol(e) => match e.status() {
            None => true,
            Some(code) => code.to_string() == "421",
        },
        _ => false,
    }
}

/// Says QUIT on a connection no longer wanted, without waiting for it.
fn quit_later(mut connection: Connection, timeout: Duration) {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::spawn(async move {
            let _ = tokio::time::timeout(timeout, connection.smtp.quit()).await;
        });
    }
}

/// A TLS stream from lettre, for a connection that starts with TLS: lettre's
/// connection is built over a tokio stream, and this one is TLS from the first byte.
#[allow(deprecated)]
#[derive(Debug)]
struct Wrapped(lettre::transport::smtp::client::AsyncNetworkStream);

impl AsyncRead for Wrapped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures_io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Wrapped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for Wrapped {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}

#[cfg(test)]
mod tests;
