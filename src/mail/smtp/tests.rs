use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How a test relay ends a session after accepting a message.
#[derive(Clone, Copy)]
enum After {
    /// Closes the connection at once.
    Close,
    /// Answers the next command with 421 and closes.
    Refuse,
}

/// A relay that accepts one message per connection, then ends the session as told.
/// Returns its port and the counts of connections and accepted messages.
async fn relay(after: After) -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sessions = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (s, a) = (sessions.clone(), accepted.clone());
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            s.fetch_add(1, Ordering::SeqCst);
            let accepted = a.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test\r\n").await.unwrap();
                let mut in_data = false;
                let mut done = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            accepted.fetch_add(1, Ordering::SeqCst);
                            write.write_all(b"250 queued\r\n").await.unwrap();
                            done = true;
                            if let After::Close = after {
                                return;
                            }
                        }
                        continue;
                    }
                    let reply: &[u8] = if done {
                        let _ = write.write_all(b"421 closing\r\n").await;
                        return;
                    } else if line.starts_with("EHLO") {
                        b"250 test\r\n"
                    } else if line == "DATA" {
                        in_data = true;
                        b"354 go on\r\n"
                    } else {
                        b"250 ok\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, sessions, accepted)
}

fn pool(port: u16) -> SmtpPool {
    pool_waiting(port, Duration::from_secs(5))
}

fn pool_waiting(port: u16, timeout: Duration) -> SmtpPool {
    SmtpPool::new(Relay {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        hello: ClientId::Domain("test".into()),
        credentials: None,
        timeout,
        max_idle: 2,
    })
}

fn message() -> (Envelope, &'static [u8]) {
    (envelope("b@example.com"), b"Subject: test\r\n\r\nHello\r\n")
}

/// Waits until the parked connection has something to read: the relay's close or
/// its unasked reply has arrived.
async fn wait_until_the_relay_spoke(pool: &SmtpPool) {
    let probe = {
        let idle = pool.idle.lock().unwrap();
        assert_eq!(idle.len(), 1, "one connection is parked");
        idle[0].connection.probe.try_clone().unwrap()
    };
    let watch = TcpStream::from_std(probe).unwrap();
    tokio::time::timeout(Duration::from_secs(10), watch.readable())
        .await
        .expect("the relay's close arrives")
        .unwrap();
}

#[tokio::test]
async fn a_connection_the_relay_closed_while_parked_is_replaced_before_use() {
    let (port, sessions, accepted) = relay(After::Close).await;
    let pool = pool(port);
    let (envelope, message) = message();
    let gate = Arc::new(Semaphore::new(1));
    let (result, permit) = pool.send(&envelope, message, Some(&gate)).await;
    result.unwrap();
    assert!(permit.is_some(), "the data went out under a permit");
    drop(permit);
    wait_until_the_relay_spoke(&pool).await;
    assert!(
        pool.take().is_none(),
        "the probe sees the close: the connection is not offered for reuse"
    );
    let (result, _) = pool.send(&envelope, message, Some(&gate)).await;
    result.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(sessions.load(Ordering::SeqCst), 2, "one new connection");
}

#[tokio::test]
async fn a_connection_the_relay_refuses_on_reuse_is_replaced_without_a_failure() {
    let (port, sessions, accepted) = relay(After::Refuse).await;
    let pool = pool(port);
    let (envelope, message) = message();
    let gate = Arc::new(Semaphore::new(1));
    for _ in 0..2 {
        let (result, permit) = pool.send(&envelope, message, Some(&gate)).await;
        result.unwrap();
        assert!(permit.is_some(), "the data went out under a permit");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(sessions.load(Ordering::SeqCst), 2, "one new connection");
}

/// A scripted relay: what it received, and on how many connections.
struct Scripted {
    port: u16,
    /// Messages accepted.
    inbox: Arc<Mutex<Vec<String>>>,
    /// Every command, in order.
    commands: Arc<Mutex<Vec<String>>>,
    sessions: Arc<AtomicUsize>,
}

/// A relay that refuses recipients containing `refused`. With `pipelining` it offers
/// PIPELINING and answers MAIL, RCPT and DATA only once DATA has arrived, so a client
/// that waits for each reply gets nowhere; without, it answers each command.
async fn scripted_relay(refused: &'static str, pipelining: bool) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = Scripted {
        port: listener.local_addr().unwrap().port(),
        inbox: Arc::default(),
        commands: Arc::default(),
        sessions: Arc::default(),
    };
    let (inbox, commands, sessions) = (
        relay.inbox.clone(),
        relay.commands.clone(),
        relay.sessions.clone(),
    );
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            sessions.fetch_add(1, Ordering::SeqCst);
            let session = Session {
                refused,
                pipelining,
                inbox: inbox.clone(),
                commands: commands.clone(),
            };
            tokio::spawn(session.run(socket));
        }
    });
    relay
}

struct Session {
    refused: &'static str,
    pipelining: bool,
    inbox: Arc<Mutex<Vec<String>>>,
    commands: Arc<Mutex<Vec<String>>>,
}

impl Session {
    async fn run(self, socket: tokio::net::TcpStream) {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 test\r\n").await.unwrap();
        let mut replies = String::new();
        let mut recipients = 0;
        let mut data: Option<String> = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(body) = &mut data {
                if line == "." {
                    self.inbox.lock().unwrap().push(std::mem::take(body));
                    data = None;
                    write.write_all(b"250 queued\r\n").await.unwrap();
                } else {
                    body.push_str(&line);
                    body.push('\n');
                }
                continue;
            }
            self.commands.lock().unwrap().push(line.clone());
            if line.starts_with("EHLO") {
                let offer: &[u8] = if self.pipelining {
                    b"250-test\r\n250 PIPELINING\r\n"
                } else {
                    b"250 test\r\n"
                };
                write.write_all(offer).await.unwrap();
                continue;
            } else if line.starts_with("MAIL") {
                recipients = 0;
                replies.push_str("250 ok\r\n");
            } else if line.starts_with("RCPT") {
                if line.contains(self.refused) {
                    replies.push_str("550 no such user\r\n");
                } else {
                    recipients += 1;
                    replies.push_str("250 ok\r\n");
                }
            } else if line == "DATA" {
                if recipients > 0 {
                    replies.push_str("354 go on\r\n");
                    data = Some(String::new());
                } else {
                    replies.push_str("554 no valid recipients\r\n");
                }
            } else {
                replies.push_str("250 ok\r\n");
            }
            // With PIPELINING, MAIL's and RCPT's replies wait for DATA's.
            let grouped = self.pipelining && (line.starts_with("MAIL") || line.starts_with("RCPT"));
            if !grouped {
                write
                    .write_all(std::mem::take(&mut replies).as_bytes())
                    .await
                    .unwrap();
            }
        }
    }
}

fn envelope(to: &str) -> Envelope {
    Envelope::new(
        Some("a@example.com".parse().unwrap()),
        vec![to.parse().unwrap()],
    )
    .unwrap()
}

#[tokio::test]
async fn with_pipelining_the_commands_go_out_together_and_a_refusal_is_read_in_turn() {
    let relay = scripted_relay("nobody@", true).await;
    let pool = pool(relay.port);
    let gate = Arc::new(Semaphore::new(1));
    let message = b"Subject: one\r\n\r\n.starts with a dot\r\nend\r\n";
    let (result, permit) = pool
        .send(&envelope("b@example.com"), message, Some(&gate))
        .await;
    result.unwrap();
    assert!(permit.is_some());
    // Recorded: the permit goes back.
    drop(permit);
    let (result, permit) = pool
        .send(
            &envelope("nobody@example.com"),
            b"Subject: two\r\n\r\nx\r\n",
            Some(&gate),
        )
        .await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("no such user"), "{error}");
    assert!(permit.is_none(), "no data went out");
    // The refusal was read with the rest of its group, and the next message goes out.
    let (result, _) = pool
        .send(
            &envelope("c@example.com"),
            b"Subject: three\r\n\r\ny\r\n",
            Some(&gate),
        )
        .await;
    result.unwrap();
    let accepted = relay.inbox.lock().unwrap().clone();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0], "Subject: one\n\n..starts with a dot\nend\n");
    assert!(accepted[1].starts_with("Subject: three"));
}

async fn refused_then_accepted(pipelining: bool) {
    let relay = scripted_relay("nobody@", pipelining).await;
    let pool = pool(relay.port);
    let gate = Arc::new(Semaphore::new(1));
    let (result, permit) = pool
        .send(
            &envelope("nobody@example.com"),
            b"Subject: x\r\n\r\nx\r\n",
            Some(&gate),
        )
        .await;
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("550") && error.contains("no such user"),
        "{error}"
    );
    assert!(permit.is_none());
    let (envelope, message) = message();
    let (result, _) = pool.send(&envelope, message, Some(&gate)).await;
    result.unwrap();
    assert_eq!(relay.inbox.lock().unwrap().len(), 1);
    assert_eq!(
        relay.sessions.load(Ordering::SeqCst),
        1,
        "the next message went on the same connection"
    );
    let commands = relay.commands.lock().unwrap().clone();
    assert!(commands.iter().any(|c| c == "RSET"), "{commands:?}");
    assert!(!commands.iter().any(|c| c == "QUIT"), "{commands:?}");
}

#[tokio::test]
async fn a_refused_recipient_is_reset_and_the_connection_carries_the_next_message() {
    refused_then_accepted(false).await;
}

#[tokio::test]
async fn a_refused_recipient_in_a_pipelined_group_is_reset_and_the_connection_reused() {
    refused_then_accepted(true).await;
}

#[tokio::test]
async fn a_turn_to_send_that_never_comes_ends_at_the_timeout_and_drops_the_connection() {
    let relay = scripted_relay("nobody@", false).await;
    let pool = pool_waiting(relay.port, Duration::from_millis(300));
    // Every permit is held, as by outcomes the store has not recorded.
    let full = Arc::new(Semaphore::new(0));
    let (envelope, message) = message();
    let (result, permit) = tokio::time::timeout(
        Duration::from_secs(20),
        pool.send(&envelope, message, Some(&full)),
    )
    .await
    .expect("the wait for a permit is bounded by the timeout");
    assert!(
        matches!(
            result,
            Err(SmtpError::Timeout {
                during: "a turn to send the message",
                ..
            })
        ),
        "{result:?}"
    );
    assert!(permit.is_none());
    assert!(relay.inbox.lock().unwrap().is_empty());
    // The relay waits for data that will not come: the next message needs a new
    // connection.
    let gate = Arc::new(Semaphore::new(1));
    let (result, _) = pool.send(&envelope, message, Some(&gate)).await;
    result.unwrap();
    assert_eq!(relay.sessions.load(Ordering::SeqCst), 2);
}
