//! The integration tests, one binary: each module is a topic and starts the real
//! `followup` binary through the harness in `tests/common`. One binary links once and
//! runs every topic's tests side by side, so the waits of one overlap the others'.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

mod actions;
mod clock;
mod cluster;
mod config;
mod customer_mail;
mod customers;
mod delivery;
mod followups;
mod input;
mod jobs;
mod mail;
mod mail_links;
mod migrate_postgres;
mod never_panics;
mod outbox;
mod playbooks;
mod postgres_harness;
mod postgres_tls;
mod reminders;
mod rules;
mod spam;
mod store;
mod store_postgres;
mod systemd;
mod test_email;
mod timeline;
mod verbs;
mod web;
mod web_harness;
mod web_owner;
mod web_server;
