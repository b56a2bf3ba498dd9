//! `check-config`: reads the config directory like the daemon does and prints every
//! problem as `FILE:LINE:COL: message`.

use std::path::Path;
use std::process::ExitCode;

use crate::config::{TransportSettings, load};

/// Checks `dir`; exit 0 when valid, 78 (EX_CONFIG) with every error printed otherwise.
pub fn check(dir: &Path, allow_missing: bool) -> ExitCode {
    match load(dir, allow_missing) {
        Ok(config) => {
            let transport = match &config.mail.transport {
                TransportSettings::File { dir } => format!("file ({})", dir.display()),
                TransportSettings::Smtp(s) => {
                    format!("smtp ({}:{}, tls {:?})", s.host, s.port, s.tls)
                }
                TransportSettings::Sendmail { command } => {
                    format!("sendmail ({})", command.display())
                }
            };
            if let TransportSettings::Smtp(smtp) = &config.mail.transport
                && let Err(e) = smtp.password.read()
            {
                eprintln!("{}: {e}", config.dir.display());
                return ExitCode::from(super::EX_CONFIG);
            }
            if let Err(e) = config.store.location() {
                eprintln!("{}: {e}", config.dir.display());
                return ExitCode::from(super::EX_CONFIG);
            }
            println!("config in {} is valid", config.dir.display());
            println!("  store:     {}", config.store.describe());
            println!("  timezone:  {}", config.calendar.zone_name());
            println!("  transport: {transport}");
            if config.mail.dry_run {
                println!(
                    "  DRY RUN:   [mail] dry_run = true: emails are rendered and recorded, not sent"
                );
            }
            let names: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
            println!("  rules:     {}", names.join(", "));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            eprintln!("followup: {} error(s) in {}", errors.0.len(), dir.display());
            ExitCode::from(super::EX_CONFIG)
        }
    }
}
