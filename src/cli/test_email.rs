//! `test-email --to ADDR`: proves the mail settings by sending one real message
//! through the configured transport (SMTP: connect, TLS, login, MAIL, RCPT, DATA), and
//! when that fails says which part failed. The password is never printed.

use anyhow::{Context as _, anyhow};
use clap::Args;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};

use crate::commitment::parse_mailbox;
use crate::config::{Config, TlsMode, TransportSettings};
use crate::mail::Mailer;
use crate::mail::message::{MessageIds, normalize_body};

/// `followup test-email`.
#[derive(Debug, Args)]
pub struct TestEmailArgs {
    /// Who gets the test message: "Name <address>" or an address.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
}

/// Sends the test message and reports how it left.
pub fn send(config: &Config, args: TestEmailArgs) -> anyhow::Result<()> {
    let to = parse_mailbox(&args.to).map_err(|e| anyhow!("--to: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The SMTP pool starts and stops tasks, so the transport lives inside the runtime.
    let _inside = runtime.enter();
    // Reads the password, which only root may be able to.
    let mailer = Mailer::build(&config.mail).context("setting up the mail transport")?;
    // The file transport writes into the service's state directory.
    super::identity::adopt_store_owner(&config.store.path)?;
    let via = route(&config.mail.transport);
    let now = super::now();
    let from = &config.mail.from;
    let message_id = MessageIds::test_email(from, now, fastrand::u32(..));
    let body = format!(
        "This is a test email from followup, sent by `{} test-email` at {}.\n\
         \n\
         It left via {via}. If you are reading it, the mail settings in {} work.\n",
        config.command,
        config.calendar.display(now),
        config.dir.display()
    );
    let message = Message::builder()
        .from(from.clone())
        .to(to.clone())
        .subject("followup test email")
        .message_id(Some(message_id))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ))
        .header(ContentType::TEXT_PLAIN)
        .body(normalize_body(&body))
        .context("building the test email")?;
    let name = format!("followup-test-{}", now.as_millisecond());
    runtime
        .block_on(mailer.send(message.envelope(), &message.formatted(), &name))
        .map_err(|e| anyhow!("the test email to {} was not sent via {via}: {e}", to.email))?;
    println!("sent a test email to {} via {via}", to.email);
    Ok(())
}

/// How mail leaves, in words: `SMTP 127.0.0.1:587 with STARTTLS, logged in as u`.
fn route(transport: &TransportSettings) -> String {
    match transport {
        TransportSettings::File { dir } => format!("the file transport (into {})", dir.display()),
        TransportSettings::Sendmail { command } => format!("sendmail ({})", command.display()),
        TransportSettings::Smtp(s) => {
            let tls = match s.tls {
                TlsMode::None => "without TLS",
                TlsMode::Starttls => "with STARTTLS",
                TlsMode::Tls => "with TLS",
            };
            let login = match &s.username {
                Some(user) => format!(", logged in as {user}"),
                None => String::new(),
            };
            format!("SMTP {}:{} {tls}{login}", s.host, s.port)
        }
    }
}
