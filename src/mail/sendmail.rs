//! The sendmail transport: the local sendmail-compatible program, run once a message
//! with `-i -f FROM -- RCPT...` and the message on its standard input.
//!
//! lettre's own sendmail transport reports every failure alike, without the exit
//! status, so one unknown address would hold the whole outbox. Here the program's exit
//! status sorts the failure as the SMTP path does (sysexits.h): an unknown user or
//! host, or data the program refuses, is permanent; a temporary failure, an
//! unavailable service or an I/O or system error is transient; a program that cannot
//! be started, or that is used or set up wrongly, makes the transport unreachable.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lettre::address::Envelope;
use tokio::io::AsyncWriteExt;

use super::SendError;

/// Longest a sendmail run may take; a program that hangs is stopped after it.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A sendmail-compatible program.
#[derive(Clone, Debug)]
pub struct Sendmail {
    command: PathBuf,
    timeout: Duration,
}

impl Sendmail {
    /// Runs `command` for each message.
    pub fn new(command: &Path) -> Sendmail {
        Sendmail {
            command: command.to_path_buf(),
            timeout: TIMEOUT,
        }
    }

    /// Hands `message` to the program for `envelope`'s recipients.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let program = self.command.display();
        let mut command = tokio::process::Command::new(&self.command);
        command.arg("-i");
        if let Some(from) = envelope.from() {
            command.arg("-f").arg(AsRef::<str>::as_ref(from));
        }
        command
            .arg("--")
            .args(envelope.to().iter().map(AsRef::<str>::as_ref))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            SendError::Unreachable(format!("cannot run the sendmail program {program}: {e}"))
        })?;
        let mut stdin = child.stdin.take();
        let write = async {
            let result = match &mut stdin {
                Some(stdin) => stdin.write_all(message).await,
                None => Ok(()),
            };
            // Closing standard input ends the message.
            drop(stdin);
            result
        };
        let run = async { tokio::join!(write, child.wait_with_output()) };
        let (written, output) = tokio::time::timeout(self.timeout, run).await.map_err(|_| {
            SendError::Unreachable(format!(
                "the sendmail program {program} did not finish within {:?}",
                self.timeout
            ))
        })?;
        let output = output.map_err(|e| {
            SendError::Transient(format!(
                "cannot wait for the sendmail program {program}: {e}"
            ))
        })?;
        let said = crate::commitment::one_line(&String::from_utf8_lossy(&output.stderr));
        match output.status.code() {
            Some(0) => written.map_err(|e| {
                SendError::Transient(format!(
                    "the sendmail program {program} did not take the whole message: {e}"
                ))
            }),
            code => Err(classify(&program.to_string(), code, &said)),
        }
    }
}

/// Sorts a failed run by its exit status (`None`: ended by a signal).
fn classify(program: &str, code: Option<i32>, said: &str) -> SendError {
    let (meaning, class): (&str, fn(String) -> SendError) = match code {
        Some(65) => ("the message was refused", SendError::Permanent),
        Some(67) => ("unknown recipient", SendError::Permanent),
        Some(68) => ("unknown recipient host", SendError::Permanent),
        Some(69) => ("service unavailable", SendError::Transient),
        Some(71) => ("system error", SendError::Transient),
        Some(74) => ("input/output error", SendError::Transient),
        Some(75) => ("temporary failure", SendError::Transient),
        Some(64) => ("wrong usage", SendError::Unreachable),
        Some(78) => ("its configuration is wrong", SendError::Unreachable),
        Some(_) => ("failure", SendError::Transient),
        None => ("stopped by a signal", SendError::Transient),
    };
    let status = code.map_or_else(
        || "no exit status".to_string(),
        |c| format!("exit status {c}"),
    );
    let mut text = format!("the sendmail program {program} failed: {meaning} ({status})");
    if !said.is_empty() {
        text.push_str(": ");
        text.push_str(said);
    }
    class(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A sendmail program: a shell script with `body`, in `dir`.
    fn program(dir: &Path, body: &str) -> Sendmail {
        let path = dir.join("sendmail");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Sendmail::new(&path)
    }

    fn envelope() -> Envelope {
        Envelope::new(
            Some("followup@example.com".parse().unwrap()),
            vec!["ana@example.com".parse().unwrap()],
        )
        .unwrap()
    }

    async fn exit_with(code: u8) -> Result<(), SendError> {
        let dir = tempfile::tempdir().unwrap();
        let sendmail = program(dir.path(), &format!("echo 'no luck' >&2\nexit {code}"));
        sendmail
            .send(&envelope(), b"Subject: x\r\n\r\nHi\r\n")
            .await
    }

    #[tokio::test]
    async fn the_exit_status_says_whether_a_retry_can_help() {
        for code in [65, 67, 68] {
            let e = exit_with(code).await.unwrap_err();
            assert!(matches!(e, SendError::Permanent(_)), "{code}: {e:?}");
        }
        for code in [69, 71, 74, 75, 1] {
            let e = exit_with(code).await.unwrap_err();
            assert!(matches!(e, SendError::Transient(_)), "{code}: {e:?}");
        }
        let e = exit_with(67).await.unwrap_err().to_string();
        assert!(
            e.contains("unknown recipient (exit status 67): no luck"),
            "{e}"
        );
        let e = exit_with(78).await.unwrap_err();
        assert!(matches!(e, SendError::Unreachable(_)), "{e:?}");
    }

    #[tokio::test]
    async fn a_missing_program_makes_the_transport_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let sendmail = Sendmail::new(&dir.path().join("no-such-sendmail"));
        let e = sendmail
            .send(&envelope(), b"Subject: x\r\n\r\nHi\r\n")
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Unreachable(_)), "{e:?}");
        assert!(e.to_string().contains("no-such-sendmail"), "{e}");
    }

    #[tokio::test]
    async fn the_program_gets_the_envelope_as_arguments_and_the_message_on_its_input() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sendmail = program(
            dir.path(),
            &format!("echo \"$@\" > {0}\ncat >> {0}", out.display()),
        );
        sendmail
            .send(&envelope(), b"Subject: x\r\n\r\nHi\r\n")
            .await
            .unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got,
            "-i -f followup@example.com -- ana@example.com\nSubject: x\r\n\r\nHi\r\n"
        );
    }

    #[tokio::test]
    async fn a_program_that_hangs_is_stopped_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut sendmail = program(dir.path(), "exec sleep 600");
        sendmail.timeout = Duration::from_millis(200);
        let e = sendmail
            .send(&envelope(), b"Subject: x\r\n\r\nHi\r\n")
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Unreachable(_)), "{e:?}");
    }
}
