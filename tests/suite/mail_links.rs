//! Links in the mail, end to end: a reminder received over SMTP carries one link per
//! action, each a token the daemon's own key verifies for the owner; without pages it
//! quotes the commands instead.

use crate::common;
use common::store::Store;

use std::time::Duration;

use common::Env;
use followup::web::link::{Action, Signer};

const RULE: &str = r#"
[[rule]]
name = "now"
remind = ["0s"]
"#;

/// Every `http://` or `https://` URL in `text`, in order.
fn urls_in(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
        .collect()
}

fn a_reminder_carries_links_that_the_daemons_key_verifies_for_the_owner(store: Store) {
    let env = Env::on(store, RULE);
    let daemon = env.start();
    let id = env.add("Send quote for the boiler service", "+2s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    assert_eq!(got[0].to, vec!["ana@example.com"]);
    let body = got[0].text();

    let key = match env.store {
        Store::Sqlite => std::fs::read(env.db_path().with_file_name("link.key"))
            .expect("the daemon made its link key beside the store"),
        Store::Postgres { .. } => {
            let hex = env
                .sql()
                .text("SELECT encode(link_key, 'hex') FROM store_identity")
                .expect("the daemon made its link key in the store");
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect()
        }
    };
    let signer = Signer::new(&key);
    let now = jiff::Timestamp::now();
    let urls = urls_in(&body);
    let mut actions = Vec::new();
    for url in &urls {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let (_, token) = url.split_once("/a/").unwrap_or_else(|| panic!("{url}"));
        let claim = signer
            .verify(token, now)
            .unwrap_or_else(|_| panic!("a link the key does not verify: {url}"));
        assert_eq!(claim.commitment, id);
        assert_eq!(claim.recipient, "ana@example.com");
        assert!(
            claim.expires > now + jiff::SignedDuration::from_hours(24 * 29),
            "valid for the link lifetime (30 days by default)"
        );
        actions.push(claim.action);
    }
    assert_eq!(
        actions,
        [
            Action::Done,
            Action::Delay,
            Action::Snooze,
            Action::Cancel,
            Action::Wait,
            Action::Close,
            Action::Open
        ],
        "{body}"
    );
    assert!(
        !body.contains(&format!("done {id}")),
        "links instead of commands:\n{body}"
    );
    assert!(daemon.stop().success());
}

fn without_pages_a_reminder_quotes_the_commands(store: Store) {
    let env = Env::on(store, RULE);
    env.edit_config("followup.toml", |t| {
        t.replace("[web]\nlisten = \"127.0.0.1:0\"", "[web]\nenabled = false")
    });
    let daemon = env.start();
    let id = env.add("Send quote for the boiler service", "+2s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    let body = got[0].text();
    assert!(urls_in(&body).is_empty(), "{body}");
    for needle in [format!("done {id}"), format!("show {id}")] {
        assert!(body.contains(&needle), "body lacks {needle:?}:\n{body}");
    }
    assert!(
        !match env.store {
            Store::Sqlite => env.db_path().with_file_name("link.key").exists(),
            Store::Postgres { .. } => {
                env.sql()
                    .count("SELECT COUNT(*) FROM store_identity WHERE link_key IS NOT NULL")
                    > 0
            }
        },
        "no key is made for links never sent"
    );
    assert!(daemon.stop().success());
}

on_both_stores!(
    a_reminder_carries_links_that_the_daemons_key_verifies_for_the_owner,
    without_pages_a_reminder_quotes_the_commands,
);
