//! One mail transaction on an open connection: MAIL, RCPT, DATA, then the message.
//!
//! Every write on loopback or a LAN costs a round of system calls and wake-ups on both
//! ends, so the transaction writes as little as the protocol allows. When the relay
//! offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one write and their
//! replies are read in order afterwards; without it, each command waits for its reply.
//! Either way the message and its closing dot go out in one write.
//!
//! lettre's connection writes what a command displays as and then reads one reply, so
//! a group of commands, and the message itself, are handed to it as commands; the other
//! replies of a group are read with `read_response`.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{SmtpError, within};

/// Where a transaction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Before the relay answered anything about this message.
    First,
    /// Later, with the connection still in step with the relay.
    Later,
    /// The relay accepted DATA although the transaction had failed before it: it
    /// waits for a message that will not come, so the connection is dropped as it is.
    Stuck,
}

/// A transaction's failure and where it happened.
pub(super) type Failure = (Stage, SmtpError);

/// What one transaction needs.
pub(super) struct Transaction<'a> {
    /// Sender and recipients.
    pub envelope: &'a Envelope,
    /// The message, with CRLF line endings.
    pub message: &'a [u8],
    /// Longest wait for each reply, or for a pipelined group's replies.
    pub timeout: Duration,
    /// Taken just before the message goes out, if given.
    pub gate: Option<&'a Arc<Semaphore>>,
}

impl Transaction<'_> {
    /// Runs the transaction. The permit taken from the gate is stored in `permit`
    /// as soon as it is taken, so the caller holds it whatever the outcome.
    pub async fn run(
        &self,
        smtp: &mut AsyncSmtpConnection,
        pipelining: bool,
        permit: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<(), Failure> {
        let mail = Mail::new(self.envelope.from().cloned(), self.mail_parameters(smtp)?);
        let recipients: Vec<Rcpt> = self
            .envelope
            .to()
            .iter()
            .map(|to| Rcpt::new(to.clone(), vec![]))
            .collect();
        if pipelining {
            self.pipelined(smtp, mail, &recipients).await?;
        } else {
            self.one_by_one(smtp, mail, recipients).await?;
        }
        if let Some(gate) = self.gate {
            // The relay waits for the message meanwhile; if no turn comes in time, the
            // connection is dropped unused, like one stuck after DATA.
            let turn = self.timed("a turn to send the message", async {
                let permit = gate.clone().acquire_owned().await;
                Ok::<_, SmtpError>(permit.expect("the gate is never closed"))
            });
            *permit = Some(turn.await.map_err(|e| (Stage::Stuck, e))?);
        }
        let sent = match std::str::from_utf8(self.message) {
            Ok(text) => {
                self.timed("the message", smtp.command(data_section(text)))
                    .await
            }
            // Not text: lettre's own writing of the message (two writes).
            Err(_) => self.timed("the message", smtp.message(self.message)).await,
        };
        sent.map(drop).map_err(|e| (Stage::Later, e))
    }

    /// MAIL's parameters for this message; fails if the relay lacks an extension the
    /// message needs.
    fn mail_parameters(&self, smtp: &AsyncSmtpConnection) -> Result<Vec<MailParameter>, Failure> {
        let mut options = Vec::new();
        let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
        let envelope = self.envelope;
        let non_ascii = !envelope.from().is_none_or(ascii) || !envelope.to().iter().all(ascii);
        if non_ascii {
            if !smtp.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Err((Stage::First, SmtpError::Unsupported("SMTPUTF8")));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !self.message.is_ascii() {
            if !smtp.server_info().supports_feature(Extension::EightBitMime) {
                return Err((Stage::First, SmtpError::Unsupported("8BITMIME")));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(options)
    }

    async fn one_by_one(
        &self,
        smtp: &mut AsyncSmtpConnection,
        mail: Mail,
        recipients: Vec<Rcpt>,
    ) -> Result<(), Failure> {
        self.timed("MAIL FROM", smtp.command(mail))
            .await
            .map_err(|e| (Stage::First, e))?;
        for rcpt in recipients {
            self.timed("RCPT TO", smtp.command(rcpt))
                .await
                .map_err(|e| (Stage::Later, e))?;
        }
        self.timed("DATA", smtp.command(Data))
            .await
            .map_err(|e| (Stage::Later, e))?;
        Ok(())
    }

    /// MAIL, RCPT and DATA in one write; then every reply, in order. The first
    /// refusal is the transaction's failure.
    async fn pipelined(
        &self,
        smtp: &mut AsyncSmtpConnection,
        mail: Mail,
        recipients: &[Rcpt],
    ) -> Result<(), Failure> {
        let mut group = mail.to_string();
        for rcpt in recipients {
            let _ = write!(group, "{rcpt}");
        }
        let _ = write!(group, "{Data}");
        let expected = recipients.len() + 2;
        let replies = async {
            let mut replies = Vec::with_capacity(expected);
            replies.push(smtp.command(group).await);
            while replies.len() < expected {
                // A reply without a status (the connection failed) ends the group:
                // nothing more will come.
                if replies.last().is_some_and(no_status) {
                    break;
                }
                replies.push(smtp.read_response().await);
            }
            replies
        };
        let replies = self.timed("MAIL FROM, RCPT TO and DATA", async {
            Ok::<_, SmtpError>(replies.await)
        });
        let replies = replies.await.map_err(|e| (Stage::First, e))?;
        judge(replies, expected).map_err(|(stage, e)| (stage, SmtpError::Protocol(e)))
    }

    /// Runs `future`, failing after the timeout.
    async fn timed<T>(
        &self,
        during: &'static str,
        future: impl Future<Output = Result<T, impl Into<SmtpError>>>,
    ) -> Result<T, SmtpError> {
        within(self.timeout, during, future).await
    }
}

fn no_status(reply: &Result<Response, lettre::transport::smtp::Error>) -> bool {
    reply.as_ref().is_err_and(|e| e.status().is_none())
}

/// The outcome of a pipelined group from its replies, in order: MAIL's, each RCPT's,
/// DATA's (fewer if the connection failed). The first refusal is the failure.
fn judge<T, E>(replies: Vec<Result<T, E>>, expected: usize) -> Result<(), (Stage, E)> {
    let data_accepted = replies.len() == expected && replies[expected - 1].is_ok();
    let failure = replies
        .into_iter()
        .enumerate()
        .find_map(|(i, reply)| reply.err().map(|e| (i, e)));
    match failure {
        None => Ok(()),
        Some((_, e)) if data_accepted => Err((Stage::Stuck, e)),
        Some((0, e)) => Err((Stage::First, e)),
        Some((_, e)) => Err((Stage::Later, e)),
    }
}

/// The message as the DATA section carries it: lines that begin with a dot get
/// another (RFC 5321, 4.5.2), and the closing dot on a line of its own follows.
fn data_section(text: &str) -> String {
    let mut data = String::with_capacity(text.len() + text.len() / 64 + 8);
    for line in text.split_inclusive("\r\n") {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
    }
    if !data.is_empty() && !data.ends_with("\r\n") {
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_section_doubles_leading_dots_and_ends_with_a_lone_dot() {
        assert_eq!(
            data_section("a\r\n.b\r\n..\r\n"),
            "a\r\n..b\r\n...\r\n.\r\n"
        );
        assert_eq!(data_section(".first\r\nlast"), "..first\r\nlast\r\n.\r\n");
        assert_eq!(data_section("x.\r\n. \r\n"), "x.\r\n.. \r\n.\r\n");
        assert_eq!(data_section(""), ".\r\n");
    }

    fn reply(code: u16) -> Result<(), u16> {
        if code < 400 { Ok(()) } else { Err(code) }
    }

    #[test]
    fn a_pipelined_group_fails_at_its_first_refusal() {
        assert!(judge(vec![reply(250), reply(250), reply(354)], 3).is_ok());
        assert_eq!(judge(vec![reply(421)], 3).unwrap_err(), (Stage::First, 421));
        let failure = judge(vec![reply(250), reply(550), reply(554)], 3).unwrap_err();
        assert_eq!(failure, (Stage::Later, 550));
        // A relay that takes DATA after refusing the only recipient now waits for a
        // message: the connection cannot be used again.
        let failure = judge(vec![reply(250), reply(550), reply(354)], 3).unwrap_err();
        assert_eq!(failure, (Stage::Stuck, 550));
    }
}
