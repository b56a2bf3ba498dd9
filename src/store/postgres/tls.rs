//! Reaching the database: the client's settings from a URL, and TLS through rustls.
//!
//! The URL's words decide, as for libpq: `sslmode=require`, `verify-ca` or
//! `verify-full` encrypt the connection; `sslrootcert=FILE` names the certificates
//! to trust (PEM), `sslrootcert=system` or none the public certificate authorities.
//! Unlike libpq, an encrypted connection always checks the server's certificate and
//! its name (libpq's `verify-full`): an unchecked one would hide nothing from whoever
//! sits in between. `disable` and `prefer` (the default) connect in the clear.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use ::postgres::config::Host;
use ::postgres::{Client, Config, NoTls};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::url::tls_words;

/// Where the database is and how to speak to it: what a connection is made again from.
#[derive(Clone)]
pub(super) struct Target {
    pub config: Config,
    /// The TLS client, when the URL asks for TLS.
    tls: Option<MakeRustlsConnect>,
}

/// Why a URL cannot be connected to, before anything is sent.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("url is not a PostgreSQL connection URL: {0}")]
    Url(#[source] ::postgres::Error),
    #[error(
        "sslrootcert is for checking the server's certificate: add sslmode=verify-full to the url"
    )]
    RootWithoutTls,
    #[error("sslcert and sslkey (a client certificate) are not supported: sign in with a password")]
    ClientCertificate,
    #[error("cannot read the certificates of sslrootcert {path}: {source}")]
    Root {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("sslrootcert {path} holds no certificate (PEM: -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: String },
    #[error("sslrootcert {path} holds a certificate that cannot be trusted: {source}")]
    BadRoot {
        path: String,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),
}

/// Where an option goes among those the URL gives.
#[derive(Clone, Copy)]
enum Place {
    /// Before them: the URL may set it otherwise.
    First,
    /// After them: it holds whatever the URL says.
    Last,
}
use Place::{First, Last};

impl Target {
    /// The settings of `url` (which may hold a password); connecting gives up after
    /// 10 s.
    pub fn of(url: &str) -> Result<Target, TargetError> {
        let words = tls_words(url);
        if words.client_certificate {
            return Err(TargetError::ClientCertificate);
        }
        let mut config = Config::from_str(&words.url).map_err(TargetError::Url)?;
        let wants_tls =
            words.verify || config.get_ssl_mode() == ::postgres::config::SslMode::Require;
        if words.root.is_some() && !wants_tls {
            return Err(TargetError::RootWithoutTls);
        }
        let tls = if wants_tls {
            Some(MakeRustlsConnect::new(client_config(
                words.root.as_deref(),
            )?))
        } else {
            config.ssl_mode(::postgres::config::SslMode::Disable);
            None
        };
        if config.get_application_name().is_none() {
            config.application_name("followup");
        }
        config.connect_timeout(Duration::from_secs(10));
        Ok(Target { config, tls }.with_option("-c jit=off", First))
    }

    /// Adds `option` (`-c name=value`) to the session's options, before or after
    /// those the URL gives; of two settings of one name, the later holds.
    fn with_option(mut self, option: &str, place: Place) -> Target {
        let options = match (self.config.get_options(), place) {
            (None, _) => option.to_string(),
            (Some(given), First) => format!("{option} {given}"),
            (Some(given), Last) => format!("{given} {option}"),
        };
        self.config.options(&options);
        self
    }

    /// The same, for a session whose commits do not wait for the server to flush
    /// them to disk (`synchronous_commit = off`): the daemon's own connection, which
    /// plans, fires and records sends. A crash of the database server may then roll
    /// back its last fraction of a second of them, which can send an email again (with
    /// its Message-ID) and never loses one: what was rolled back is planned, fired or
    /// sent again. That is SQLite's `synchronous = NORMAL`, and it spares every
    /// commit a disk flush. Commands and the web pages wait for the flush as usual.
    pub fn without_waiting_for_flush(self) -> Target {
        self.with_option("-c synchronous_commit=off", Last)
    }

    /// A new connection.
    pub fn connect(&self) -> Result<Client, ::postgres::Error> {
        match &self.tls {
            None => self.config.connect(NoTls),
            Some(tls) => self.config.connect(tls.clone()),
        }
    }

    /// Whether the connection crosses a network unencrypted: TCP to another machine
    /// without TLS.
    pub fn in_the_clear(&self) -> bool {
        self.tls.is_none()
            && self.config.get_hosts().iter().any(|host| match host {
                Host::Tcp(name) => !is_this_machine(name),
                Host::Unix(_) => false,
            })
    }
}

/// What to do about a certificate the connection refused, for the error's words.
pub(super) fn hint(cause: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut next = Some(cause);
    while let Some(e) = next {
        if let Some(rustls::Error::InvalidCertificate(why)) = e.downcast_ref::<rustls::Error>() {
            return Some(match why {
                rustls::CertificateError::UnknownIssuer => {
                    "no authority of sslrootcert, or none of the public ones without it, signed the server's certificate"
                }
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "the url must name the host as the server's certificate does"
                }
                _ => "the server's certificate cannot be trusted",
            });
        }
        // An I/O error's source is its inner error's source, not the inner error.
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn is_this_machine(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// rustls's settings: the roots of `sslrootcert`, else the public ones.
fn client_config(root: Option<&str>) -> Result<rustls::ClientConfig, TargetError> {
    let mut roots = rustls::RootCertStore::empty();
    match root {
        None | Some("system") => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|found| found.collect::<Result<Vec<_>, _>>())
                .map_err(|source| TargetError::Root {
                    path: path.to_string(),
                    source,
                })?;
            if certificates.is_empty() {
                return Err(TargetError::NoCertificate {
                    path: path.to_string(),
                });
            }
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|source| TargetError::BadRoot {
                        path: path.to_string(),
                        source,
                    })?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TargetError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::{Target, TargetError};

    fn target(url: &str) -> Target {
        Target::of(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn tls_is_used_when_the_url_asks_for_it_and_a_network_in_the_clear_is_told_apart() {
        for (url, tls, in_the_clear) in [
            ("postgres://ana@db.internal/followup", false, true),
            (
                "postgres://ana@db.internal/followup?sslmode=prefer",
                false,
                true,
            ),
            (
                "postgres://ana@db.internal/followup?sslmode=disable",
                false,
                true,
            ),
            (
                "postgres://ana@db.internal/followup?sslmode=require",
                true,
                false,
            ),
            (
                "postgres://ana@db.internal/followup?sslmode=verify-full",
                true,
                false,
            ),
            (
                "postgres://ana@db.internal/followup?sslmode=verify-ca&sslrootcert=system",
                true,
                false,
            ),
            ("postgres://ana@localhost/followup", false, false),
            ("postgres://ana@127.0.0.1:5433/followup", false, false),
            ("postgres://ana@[::1]/followup", false, false),
            (
                "host=/run/postgresql user=ana dbname=followup",
                false,
                false,
            ),
        ] {
            let target = target(url);
            assert_eq!(target.tls.is_some(), tls, "{url}");
            assert_eq!(target.in_the_clear(), in_the_clear, "{url}");
        }
    }

    #[test]
    fn every_session_runs_without_jit_unless_the_url_says_otherwise() {
        assert_eq!(
            target("postgres://ana@db/followup").config.get_options(),
            Some("-c jit=off")
        );
        // Of two settings of one name the server keeps the later: the URL's.
        assert_eq!(
            target("postgres://ana@db/followup?options=-c%20jit%3Don")
                .config
                .get_options(),
            Some("-c jit=off -c jit=on")
        );
    }

    #[test]
    fn the_daemons_own_session_does_not_wait_for_flushes_and_keeps_the_urls_options() {
        let daemon = |url: &str| target(url).without_waiting_for_flush();
        assert_eq!(
            daemon("postgres://ana@db/followup").config.get_options(),
            Some("-c jit=off -c synchronous_commit=off")
        );
        assert_eq!(
            daemon("postgres://ana@db/followup?options=-c%20statement_timeout%3D5s")
                .config
                .get_options(),
            Some("-c jit=off -c statement_timeout=5s -c synchronous_commit=off")
        );
    }

    #[test]
    fn a_root_certificate_that_cannot_be_used_is_refused_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let url = |root: &std::path::Path, mode: &str| {
            format!(
                "postgres://ana@db/followup?sslmode={mode}&sslrootcert={}",
                root.display()
            )
        };
        let refused = |url: String| Target::of(&url).err().unwrap_or_else(|| panic!("{url}"));
        assert!(matches!(
            refused(url(&missing, "verify-full")),
            TargetError::Root { path, .. } if path.ends_with("missing.pem")
        ));
        assert!(matches!(
            refused(url(&empty, "verify-full")),
            TargetError::NoCertificate { path } if path.ends_with("empty.pem")
        ));
        assert!(matches!(
            refused(url(&empty, "prefer")),
            TargetError::RootWithoutTls
        ));
        assert!(matches!(
            refused("postgres://ana@db/followup?sslmode=require&sslcert=/etc/me.pem".into()),
            TargetError::ClientCertificate
        ));
        assert!(matches!(
            refused("postgres://ana@db/followup?sslmode=sometimes".into()),
            TargetError::Url(_)
        ));
    }
}
