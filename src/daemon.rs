//! The daemon: opens the store, starts the watcher, the planning task and the sender,
//! tells systemd it is ready, and then waits for control messages (reload, shutdown)
//! that the signal handler of [`run`] or a test sends to [`serve`].

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use jiff::SignedDuration;
use tokio::sync::{Notify, mpsc, watch};

use crate::config::{self, Config};
use crate::mail::Mailer;
use crate::notify;
use crate::scheduler::{self, Shared, sender};
use crate::store;

/// What the outside world asks of a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Read the config again; keep the old one if the new one is invalid.
    Reload,
    /// Stop taking new work, finish in-flight sends, exit.
    Shutdown,
}

/// Runs the daemon on `config` until a [`Control::Shutdown`] arrives or `control`
/// closes. `dir` is re-read on [`Control::Reload`].
pub async fn serve(
    dir: PathBuf,
    config: Config,
    mut control: mpsc::Receiver<Control>,
) -> anyhow::Result<()> {
    let location = config
        .store
        .location()
        .context("reading the store's password")?;
    let clock = crate::clock::Clock::from_env_watched()?;
    let store_changed = Arc::new(Notify::new());
    let (served, claim) = tokio::task::spawn_blocking({
        let clock = clock.clone();
        let changed = store_changed.clone();
        move || {
            let served = store::serve(&location, changed)?;
            let store = served.store();
            let claim = store.claim_work(&daemon_name(), LEASE, clock.now())?;
            // Emails composed ahead by an earlier run are composed again: the commitment
            // may have changed while no daemon was there to take them back, and a step
            // whose time passed meanwhile owes its rule's catch-up.
            let now = clock.now();
            let taken = store.withdraw_all_ahead(now)?;
            if taken > 0 {
                tracing::info!(
                    steps = taken,
                    "emails composed ahead by the last run are composed again"
                );
            }
            Ok::<_, anyhow::Error>((served, claim))
        }
    })
    .await
    .context("opening the store")??;
    let mailer = Mailer::build(&config.mail).context("setting up the mail transport")?;
    let summary = describe(&config);
    let renews = served.shared();
    let (store, _served) = served.into_parts();
    let store_shown = config.store.describe();
    let shared = Shared::new(store, store_changed, claim, config, mailer, clock);

    let (stop, stopped) = watch::channel(false);
    // Before planning starts: the first emails it composes carry the links.
    let web = crate::web::start(&shared, stopped.clone()).await;
    let planning = tokio::spawn(scheduler::run_planning(shared.clone(), stopped.clone()));
    let mut renewing = renews.then(|| tokio::spawn(renew(shared.clone(), stopped.clone())));
    let sending = tokio::spawn(sender::run(shared.clone(), stopped));

    tracing::info!(store = %store_shown, config = %dir.display(), "{summary}");
    notify::ready(&format!("serving: {summary}"));

    let mut taken_over = false;
    loop {
        tokio::select! {
            message = control.recv() => match message {
                Some(Control::Reload) => reload(&shared, &dir).await,
                Some(Control::Shutdown) | None => break,
            },
            _ = async { renewing.as_mut().expect("guarded").await }, if renewing.is_some() => {
                renewing = None;
                taken_over = true;
                break;
            }
        }
    }
    tracing::info!("stopping: no new work is taken; in-flight sends get 10 seconds");
    notify::stopping();
    let _ = stop.send(true);
    let _ = planning.await;
    let _ = sending.await;
    if let Some(web) = web {
        let _ = web.await;
    }
    if let Some(renewing) = renewing {
        renewing.abort();
    }
    if renews && !taken_over {
        let claim = shared.claim.clone();
        match shared.store.call(move |s| s.release_claim(&claim)).await {
            Ok(()) => tracing::info!("this daemon's claim on the store's work is given up"),
            Err(e) => tracing::warn!(
                cause = %e,
                "cannot give up the claim on the store's work; the other daemons take it over when its lease runs out"
            ),
        }
    }
    if taken_over {
        anyhow::bail!(
            "another daemon took this daemon's work over while it could not reach the store; stopped, so that a new start claims work afresh"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long a claim on the store's work lasts unless renewed: a daemon that dies is
/// taken over within a lease and a renewal. SQLite's single daemon holds the store's
/// lock as well, so nothing takes its work over meanwhile, and it never renews.
const LEASE: SignedDuration = SignedDuration::from_secs(15);

/// How often a daemon on a shared store renews its claim and looks at the store for
/// work another daemon planned or left behind.
const RENEW: std::time::Duration = std::time::Duration::from_secs(5);

/// Renews the claim of a daemon on a shared store every [`RENEW`] until `stop`, and
/// each time wakes the planning task and the sender: the others' steps and emails, and
/// a dead daemon's that the renewal freed, are theirs to take too, and no notification
/// tells of them. Returns only when another daemon took this one's work over.
async fn renew(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut cut_off = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RENEW) => {}
            _ = stop.changed() => return,
        }
        let (claim, now) = (shared.claim.clone(), shared.now());
        match shared
            .store
            .call(move |s| s.renew_claim(&claim, LEASE, now))
            .await
        {
            Ok(renewed) => {
                if cut_off {
                    tracing::info!("the claim on the store's work is renewed again");
                    cut_off = false;
                }
                if renewed.freed > 0 {
                    tracing::warn!(
                        freed = renewed.freed,
                        "another daemon's lease ran out; its steps and emails are free for the daemons still running"
                    );
                }
            }
            Err(store::StoreError::Claim(e)) => {
                tracing::error!(cause = %e, "this daemon's work was taken over");
                return;
            }
            Err(e) => {
                if !cut_off {
                    tracing::warn!(cause = %e, "cannot renew the claim on the store's work; its work stays its own until another daemon takes it over");
                    cut_off = true;
                }
            }
        }
        shared.plan_now.notify_one();
        shared.outbox.notify_one();
    }
}

/// The daemon's name as its claims carry it: its host and process id.
fn daemon_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

fn describe(config: &Config) -> String {
    let transport = match &config.mail.transport {
        config::TransportSettings::File { dir } => format!("mail to files in {}", dir.display()),
        config::TransportSettings::Smtp(s) => format!("mail via SMTP {}:{}", s.host, s.port),
        config::TransportSettings::Sendmail { command } => {
            format!("mail via {}", command.display())
        }
    };
    let rules = match config.rules.len() {
        1 => "1 rule".to_string(),
        n => format!("{n} rules"),
    };
    let dry_run = if config.mail.dry_run {
        ", DRY RUN: nothing is sent"
    } else {
        ""
    };
    format!("{rules}, {transport}{dry_run}")
}

async fn reload(shared: &Shared, dir: &std::path::Path) {
    notify::reloading();
    tracing::info!(config = %dir.display(), "reloading the config");
    match config::load(dir, false) {
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!("{e}");
            }
            tracing::error!("the new config is invalid; the running config stays in force");
            *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                Some("reload refused: the config has errors (see the log)".into());
        }
        Ok(new) => {
            let old = shared.config();
            if new.store.describe() != old.store.describe() {
                tracing::warn!(
                    running = %old.store.describe(),
                    configured = %new.store.describe(),
                    "the store path changed; it takes effect at the next restart"
                );
            }
            let mut new = new;
            new.store = old.store.clone();
            match Mailer::build(&new.mail) {
                Ok(mailer) => {
                    crate::logging::apply(new.log_level);
                    tracing::info!("{}; re-planning open commitments", describe(&new));
                    let mail_changed = mail_changed(&old.mail, &new.mail);
                    shared.swap(new, mailer);
                    if mail_changed {
                        retry_held(shared).await;
                    }
                }
                Err(e) => {
                    tracing::error!(cause = %e, "the new mail settings cannot be used; the running config stays in force")
                }
            }
        }
    }
    notify::ready(&format!("serving: {}", describe(&shared.config())));
}

/// True if a reload changed `[mail]`. The settings hold no secret (a password is read
/// when the transport is built) and their debug form names every one of them.
fn mail_changed(old: &config::MailSettings, new: &config::MailSettings) -> bool {
    format!("{old:?}") != format!("{new:?}")
}

/// After the mail settings changed, held mail is tried at once instead of waiting out
/// its backoff: the change was most likely the fix. Called after the new transport is
/// in force, so that nothing made due here goes through the old one.
async fn retry_held(shared: &Shared) {
    let now = shared.now();
    match shared.store.call(move |s| s.retry(None, now)).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(
                deliveries = n,
                "the mail settings changed; held emails are tried now"
            );
            shared.outbox.notify_one();
        }
        Err(e) => {
            tracing::error!(cause = %e, "cannot make held emails due; they wait for their retry time")
        }
    }
}

/// Runs the daemon with signal handling: SIGTERM and SIGINT stop it, SIGHUP reloads.
pub async fn run(dir: PathBuf, config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = term.recv() => Control::Shutdown,
                _ = int.recv() => Control::Shutdown,
                _ = hup.recv() => Control::Reload,
            };
            if tx.send(message).await.is_err() || message == Control::Shutdown {
                break;
            }
        }
    });
    serve(dir, config, rx).await
}
