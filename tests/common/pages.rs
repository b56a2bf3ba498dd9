//! What the tests of the daemon's pages share: the store as text (to prove a GET
//! changed nothing), links signed with an installation's own key, what a link's token
//! says, the actions recorded, the steps of a commitment, and submitting a page's form.

use followup::web::link::{Action, Links, Signer};
use jiff::SignedDuration;

use super::{Env, Received, http};

/// One reminder at the due time, nothing else: the smallest timeline with links.
pub const REMIND: &str = r#"
[[rule]]
name = "default"
match = {}
remind = ["0s"]
"#;

/// Every row of the tables an action or a GET could change, as text, each table's
/// rows sorted.
pub fn store_snapshot(env: &Env) -> String {
    let mut db = env.sql();
    let mut out = String::new();
    for table in ["commitments", "steps", "revisions", "deliveries", "changes"] {
        let mut rows: Vec<String> = db
            .rows(&format!("SELECT * FROM {table}"))
            .into_iter()
            .map(|row| {
                row.iter()
                    .map(|v| v.as_deref().map_or("NULL".to_string(), shown))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect();
        rows.sort();
        for row in rows {
            out.push_str(&format!("{table}: {row}\n"));
        }
    }
    out
}

/// A value of a row, readable in a diff (a long one as its length and a checksum).
fn shown(value: &str) -> String {
    if value.len() <= 200 {
        return format!("{value:?}");
    }
    let sum = value.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("text({} bytes, {sum:016x})", value.len())
}

/// A link for `action` on `id`, signed with the installation's own key, as the daemon's
/// emails carry them; expiring `lifetime` after now (negative: already expired).
pub fn signed_link(
    env: &Env,
    base: &str,
    id: i64,
    action: Action,
    lifetime: SignedDuration,
) -> String {
    // On PostgreSQL the key is kept in the store; the test's own if no daemon made one.
    let key = match followup::store::link_key(&env.location(), &[7; 32]).unwrap() {
        Some(key) => key,
        None => followup::web::key::load_or_create(&env.db_path()).unwrap(),
    };
    Links::new(Signer::new(&key), base, lifetime).url(
        id,
        "ana@example.com",
        action,
        jiff::Timestamp::now(),
    )
}

/// The token of a link: what follows `/a/`.
pub fn token_of(link: &str) -> &str {
    link.rsplit_once("/a/").map(|(_, t)| t).unwrap_or(link)
}

/// What a link's token says: (commitment, action word, recipient). The payload is
/// readable (only its MAC is secret), which lets a test tell the links apart.
pub fn claim_of(link: &str) -> (i64, String, String) {
    use base64::Engine as _;
    let token = token_of(link);
    let payload = token.split_once('.').map(|(p, _)| p).unwrap_or(token);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|_| panic!("not a link token: {link}"));
    let text = String::from_utf8(bytes).unwrap();
    let mut parts = text.splitn(4, ':');
    let id = parts.next().unwrap().parse().unwrap();
    let action = parts.next().unwrap().to_string();
    let _expires = parts.next();
    (id, action, parts.next().unwrap_or_default().to_string())
}

/// The links of the daemon's pages in `message` (its plain text).
pub fn action_links(message: &Received) -> Vec<String> {
    http::links_in(&message.text())
        .into_iter()
        .filter(|l| l.contains("/a/"))
        .collect()
}

/// The revisions of `id` recorded by an action: (action, actor, via), oldest first.
pub fn actions_of(env: &Env, id: i64) -> Vec<(String, Option<String>, Option<String>)> {
    env.sql()
        .rows(&format!(
            "SELECT action, actor, via FROM revisions
             WHERE commitment_id = {id} AND action IS NOT NULL ORDER BY id"
        ))
        .into_iter()
        .map(|mut r| (r[0].take().unwrap(), r[1].take(), r[2].take()))
        .collect()
}

/// Submits the first POST form of the page at `url` (as shown by `page`) with `set`
/// filled in; then, while the answer is a confirmation (a form with `step`), that one
/// too. Returns every answer, the last one last.
pub fn submit_page(url: &str, page: &http::Response, set: &[(&str, &str)]) -> Vec<http::Response> {
    let mut answers: Vec<http::Response> = Vec::new();
    loop {
        let shown = answers.last().unwrap_or(page);
        let form = http::forms_in(&shown.text())
            .into_iter()
            .find(|f| f.method == "post" && (answers.is_empty() || f.field("step").is_some()));
        let Some(mut form) = form else {
            assert!(
                !answers.is_empty(),
                "no form on the page at {url}: {}",
                page.text()
            );
            return answers;
        };
        if answers.is_empty() {
            for (name, value) in set {
                form.set(name, value);
            }
        }
        let answer = form.submit(url, None);
        assert_eq!(answer.status, 200, "POST {url}: {}", answer.text());
        answers.push(answer);
        assert!(answers.len() < 3, "a third form at {url}");
    }
}

/// The link for `action` among a message's links.
pub fn link_for(mail: &Received, action: &str) -> String {
    action_links(mail)
        .into_iter()
        .find(|l| claim_of(l).1 == action)
        .unwrap_or_else(|| panic!("no {action} link in {}", mail.text()))
}

/// A step of a commitment as stored.
#[derive(Debug)]
pub struct Step {
    pub key: String,
    pub state: String,
    pub skip_code: Option<String>,
    pub reason: Option<String>,
    pub fire_at: i64,
}

/// The steps of `id`, in the order they fire.
pub fn steps_of(env: &Env, id: i64) -> Vec<Step> {
    env.sql()
        .rows(&format!(
            "SELECT key, state, skip_code, reason, fire_at FROM steps
             WHERE commitment_id = {id} ORDER BY fire_at, key"
        ))
        .into_iter()
        .map(|mut r| Step {
            key: r[0].take().unwrap(),
            state: r[1].take().unwrap(),
            skip_code: r[2].take(),
            reason: r[3].take(),
            fire_at: r[4].take().unwrap().parse().unwrap(),
        })
        .collect()
}
