use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

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
    SmtpPool::new(Relay {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        hello: ClientId::Domain("test".into()),
        credentials: None,
        timeout: Duration::from_secs(5),
        max_idle: 2,
    })
}

async fn send_twice(after: After) {
    let (port, sessions, accepted) = relay(after).await;
    let pool = pool(port);
    let envelope = Envelope::new(
        Some("a@example.com".parse().unwrap()),
        vec!["b@example.com".parse().unwrap()],
    )
    .unwrap();
    let message = b"Subject: test\r\n\r\nHello\r\n";
    let gate = Arc::new(Semaphore::new(1));
    for _ in 0..2 {
        let (result, permit) = pool.send(&envelope, message, Some(&gate)).await;
        result.unwrap();
        assert!(permit.is_some(), "the data went out under a permit");
        // Let the relay's close reach us.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(sessions.load(Ordering::SeqCst), 2, "one new connection");
}

#[tokio::test]
async fn a_connection_the_relay_closed_while_parked_is_replaced_before_use() {
    send_twice(After::Close).await;
}

#[tokio::test]
async fn a_connection_the_relay_refuses_on_reuse_is_replaced_without_a_failure() {
    send_twice(After::Refuse).await;
}

/// A relay that offers PIPELINING and answers MAIL, RCPT and DATA only once DATA has
/// arrived, so a client that waits for each reply gets nowhere. It refuses `refused`.
/// Returns its port and the messages it accepted.
async fn pipelining_relay(refused: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let accepted = inbox.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(pipelining_session(socket, refused, accepted.clone()));
        }
    });
    (port, inbox)
}

async fn pipelining_session(
    socket: tokio::net::TcpStream,
    refused: &'static str,
    inbox: Arc<Mutex<Vec<String>>>,
) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 test\r\n").await.unwrap();
    let mut replies = String::new();
    let mut recipients = 0;
    let mut data: Option<String> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(body) = &mut data {
            if line == "." {
                inbox.lock().unwrap().push(std::mem::take(body));
                data = None;
                write.write_all(b"250 queued\r\n").await.unwrap();
            } else {
                body.push_str(&line);
                body.push('\n');
            }
            continue;
        }
        if line.starts_with("EHLO") {
            write
                .write_all(b"250-test\r\n250 PIPELINING\r\n")
                .await
                .unwrap();
        } else if line.starts_with("MAIL") {
            recipients = 0;
            replies.push_str("250 ok\r\n");
        } else if line.starts_with("RCPT") {
            if line.contains(refused) {
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
            write
                .write_all(std::mem::take(&mut replies).as_bytes())
                .await
                .unwrap();
        } else {
            write.write_all(b"250 ok\r\n").await.unwrap();
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
    let (port, accepted) = pipelining_relay("nobody@").await;
    let pool = pool(port);
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
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0], "Subject: one\n\n..starts with a dot\nend\n");
    assert!(accepted[1].starts_with("Subject: three"));
}
