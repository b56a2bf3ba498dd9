//! The schema, as versioned migrations (`PRAGMA user_version`).
//!
//! `commitments` is a public interface documented in `docs/schema.md`: other programs
//! INSERT and UPDATE it. Triggers record every such change in `changes`, which the
//! daemon drains, so it plans exactly the rows that changed and never scans the table.
//! A migration, once released, is never edited: a change is a new migration.

use rusqlite_migration::{M, Migrations};

const V1: &str = r#"
CREATE TABLE commitments (
    id           INTEGER PRIMARY KEY,
    title        TEXT,
    owner        TEXT,
    customer     TEXT,
    timezone     TEXT,
    due_at       TEXT,
    kind         TEXT,
    status       TEXT DEFAULT 'open',
    note         TEXT,
    external_ref TEXT,
    created_at   TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    done_at      TEXT
);
CREATE INDEX commitments_status ON commitments(status);

CREATE TABLE changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    commitment_id INTEGER NOT NULL,
    changed_at    INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))
);

CREATE TRIGGER commitments_inserted AFTER INSERT ON commitments
BEGIN
    INSERT INTO changes (commitment_id) VALUES (NEW.id);
END;

CREATE TRIGGER commitments_updated AFTER UPDATE ON commitments
BEGIN
    INSERT INTO changes (commitment_id) VALUES (NEW.id);
END;

CREATE TRIGGER commitments_done_at AFTER UPDATE OF status ON commitments
WHEN NEW.status = 'done' AND NEW.done_at IS NULL
BEGIN
    UPDATE commitments SET done_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;

CREATE TRIGGER commitments_never_deleted BEFORE DELETE ON commitments
BEGIN
    SELECT RAISE(ABORT, 'commitments are kept for their history: set status = ''cancelled'' instead of deleting');
END;

CREATE TABLE steps (
    id            INTEGER PRIMARY KEY,
    commitment_id INTEGER NOT NULL REFERENCES commitments(id),
    key           TEXT NOT NULL,
    kind          TEXT NOT NULL,
    rule          TEXT NOT NULL,
    label         TEXT NOT NULL,
    planned_at    INTEGER NOT NULL,
    fire_at       INTEGER NOT NULL,
    state         TEXT NOT NULL DEFAULT 'planned',
    skip_code     TEXT,
    reason        TEXT,
    late          INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL,
    UNIQUE (commitment_id, key)
);
CREATE INDEX steps_due ON steps(fire_at) WHERE state = 'planned';

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    step_id         INTEGER NOT NULL REFERENCES steps(id),
    commitment_id   INTEGER NOT NULL REFERENCES commitments(id),
    audience        TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    message         BLOB NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    UNIQUE (step_id, audience, recipient)
);
CREATE INDEX deliveries_pending ON deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_commitment ON deliveries(commitment_id, audience);

CREATE TABLE problems (
    commitment_id INTEGER PRIMARY KEY,
    reason        TEXT NOT NULL,
    seen_at       INTEGER NOT NULL
);
"#;

/// Version 2: the reason a customer is given for a delay, and the history of due times.
const V2: &str = r#"
ALTER TABLE commitments ADD COLUMN reason TEXT;

CREATE TABLE revisions (
    id            INTEGER PRIMARY KEY,
    commitment_id INTEGER NOT NULL REFERENCES commitments(id),
    old_due       TEXT NOT NULL,
    new_due       TEXT NOT NULL,
    reason        TEXT,
    source        TEXT NOT NULL,
    automatic     INTEGER NOT NULL DEFAULT 0,
    notify        INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
CREATE INDEX revisions_commitment ON revisions(commitment_id);
"#;

/// Version 3: when a delivery failed for good, so the owner's notice can be planned.
const V3: &str = r#"
ALTER TABLE deliveries ADD COLUMN failed_at INTEGER;
"#;

/// Version 4: calendar jobs. Their runs are recorded once per occurrence, and their
/// emails (digests, reports) use the outbox like every other email, so a delivery
/// belongs to a step of a commitment or to a job run.
const V4: &str = r#"
CREATE TABLE job_runs (
    id         INTEGER PRIMARY KEY,
    schedule   TEXT NOT NULL,
    job        TEXT NOT NULL,
    planned_at INTEGER NOT NULL,
    ran_at     INTEGER NOT NULL,
    summary    TEXT,
    UNIQUE (schedule, planned_at)
);

CREATE TABLE deliveries_v4 (
    id              INTEGER PRIMARY KEY,
    step_id         INTEGER REFERENCES steps(id),
    commitment_id   INTEGER REFERENCES commitments(id),
    job_run_id      INTEGER REFERENCES job_runs(id),
    audience        TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    message         BLOB NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    failed_at       INTEGER,
    UNIQUE (step_id, audience, recipient),
    UNIQUE (job_run_id, recipient),
    CHECK ((step_id IS NULL) <> (job_run_id IS NULL))
);
INSERT INTO deliveries_v4 (id, step_id, commitment_id, audience, sender, recipient, subject, message_id,
                           message, state, attempts, next_attempt_at, last_error, created_at, sent_at, failed_at)
SELECT id, step_id, commitment_id, audience, sender, recipient, subject, message_id,
       message, state, attempts, next_attempt_at, last_error, created_at, sent_at, failed_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v4 RENAME TO deliveries;
CREATE INDEX deliveries_pending ON deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_commitment ON deliveries(commitment_id, audience);
CREATE INDEX deliveries_recipient ON deliveries(recipient);
CREATE INDEX deliveries_sent ON deliveries(sent_at) WHERE state = 'sent';
"#;

/// Version 5: the sender reads the outbox in the order emails were queued, a batch at
/// a time; this index holds only pending emails, in that order, with the time of their
/// next attempt, so a batch costs its own size however many emails wait or were sent.
const V5: &str = r#"
CREATE INDEX deliveries_queue ON deliveries(id, next_attempt_at) WHERE state = 'pending';
"#;

/// Version 6: a random id for the store, made when the store is created (or first
/// opened by a version that has it), which every Message-ID carries: staging and
/// production, or a store made again after a loss, then never give two emails one id.
const V6: &str = r#"
CREATE TABLE store_identity (
    one        INTEGER PRIMARY KEY CHECK (one = 1),
    id         TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO store_identity (one, id, created_at)
VALUES (1, lower(hex(randomblob(8))), CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
"#;

/// Version 7: a promise recorded when it was already late (`followup add --overdue`)
/// has its overdue reminders, alert and escalation counted from this moment (Unix
/// milliseconds) instead of skipped as past. Only integers, so that no other program's
/// text can make a row unreadable.
const V7: &str = r#"
ALTER TABLE commitments ADD COLUMN late_from INTEGER
    CHECK (late_from IS NULL OR typeof(late_from) = 'integer');
"#;

/// Version 8: an edit of a commitment is a revision too, recording each field it
/// changed (a JSON list of `{field, old, new}`); NULL for moves of the due time.
const V8: &str = r#"
ALTER TABLE revisions ADD COLUMN changes TEXT;
"#;

/// Version 9: a customer update's revision names its step, so that when the update
/// bounces the move can be undone; `undone` says why it was (the delivery error) and
/// `undone_at` when.
const V9: &str = r#"
ALTER TABLE revisions ADD COLUMN step_id INTEGER REFERENCES steps(id);
ALTER TABLE revisions ADD COLUMN undone TEXT;
ALTER TABLE revisions ADD COLUMN undone_at INTEGER;
CREATE INDEX revisions_step ON revisions(step_id) WHERE step_id IS NOT NULL;
"#;

/// Version 10: every action a person takes is a revision that says who and how.
/// `action` names it (`delay`, `edit`, `done`, `cancel`, `snooze`, `hold`, `send_now`,
/// `update` for the daemon's automatic update; NULL in rows older than this version,
/// which are moves or edits), `actor` who took it (the address a link was sent to, or
/// the user who ran the command; NULL for the daemon), `via` how (`cli`, `web`,
/// `daemon`). A hold or a send-now names the customer update's step by its key
/// (`step_key`), a snooze its end (`until_at`, Unix milliseconds). A commitment's
/// reminders to its owner are snoozed until `snoozed_until` (Unix milliseconds).
const V10: &str = r#"
ALTER TABLE revisions ADD COLUMN action TEXT;
ALTER TABLE revisions ADD COLUMN actor TEXT;
ALTER TABLE revisions ADD COLUMN via TEXT;
ALTER TABLE revisions ADD COLUMN step_key TEXT;
ALTER TABLE revisions ADD COLUMN until_at INTEGER;
ALTER TABLE commitments ADD COLUMN snoozed_until INTEGER
    CHECK (snoozed_until IS NULL OR typeof(snoozed_until) = 'integer');
"#;

/// Version 11: the follow-ups of the playbooks. `promise` is what the customer was
/// promised, in their words (customer mail says it instead of the internal title).
/// `outcome` closes a commitment that is done (`won`, `lost`, `resolved`,
/// `no-answer`), at `closed_at` (RFC 3339 text, as `done_at`): its follow-ups after
/// the work stop. `waiting_since` (RFC 3339 text) is set while the commitment waits on
/// the customer: its clock is paused. `customer_notes` keeps notes about a customer
/// (by lower-case address), not about one commitment.
const V11: &str = r#"
ALTER TABLE commitments ADD COLUMN promise TEXT;
ALTER TABLE commitments ADD COLUMN outcome TEXT
    CHECK (outcome IS NULL OR outcome IN ('won', 'lost', 'resolved', 'no-answer'));
ALTER TABLE commitments ADD COLUMN closed_at TEXT;
ALTER TABLE commitments ADD COLUMN waiting_since TEXT;
CREATE TABLE customer_notes (
    id         INTEGER PRIMARY KEY,
    address    TEXT NOT NULL,
    body       TEXT NOT NULL,
    actor      TEXT,
    via        TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX customer_notes_address ON customer_notes(address);
"#;

/// Every migration in order; the store runs the ones a file has not had yet.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
        M::up(V7),
        M::up(V8),
        M::up(V9),
        M::up(V10),
        M::up(V11),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }
}
