//! `completions SHELL` and `man`: shell completions and manual pages generated from the
//! command-line definition itself, so they cannot drift from it. Packages ship both.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};

use super::Cli;

/// `followup man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write followup.1 and a page per command (followup-add.1, ...) into DIR instead of
    /// printing followup.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    // Into memory first: clap_complete panics when a write fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "followup", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing the completions")
}

/// Prints followup(1), or writes every page into `--dir`.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    match args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            render_main_page(&mut out).context("writing the manual page")?;
            out.flush().context("writing the manual page")
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let command = Cli::command().disable_help_subcommand(true);
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
            // The main page again, with the sections only it has.
            let path = dir.join("followup.1");
            let mut file = std::fs::File::create(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            render_main_page(&mut file).with_context(|| format!("writing {}", path.display()))
        }
    }
}

/// followup(1): clap's page, with files, environment and exit status before VERSION.
fn render_main_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let command = Cli::command().disable_help_subcommand(true);
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    let at = page.find(".SH VERSION").unwrap_or(page.len());
    out.write_all(page[..at].as_bytes())?;
    out.write_all(EXTRA_SECTIONS.as_bytes())?;
    out.write_all(page[at..].as_bytes())
}

/// The parts of followup(1) that are not in the argument definitions.
const EXTRA_SECTIONS: &str = r#".SH FILES
.TP
\fI/etc/followup/*.toml\fR
The configuration, read in file-name order. \fBfollowup check-config\fR checks it.
.TP
\fI/etc/followup/smtp-password\fR
The SMTP password (mode 0600), passed to the service as the systemd credential
\fIsmtp-password\fR when [mail.smtp] password_credential names it.
.TP
\fI/var/lib/followup/followup.db\fR
The store: commitments, their timelines and every email, in SQLite.
.SH ENVIRONMENT
.TP
\fBFOLLOWUP_CONFIG\fR
The config directory when \fB\-\-config\fR is not given.
.TP
\fBRUST_LOG\fR
The log level (e.g. \fIdebug\fR), overriding [log] level.
.TP
\fBCREDENTIALS_DIRECTORY\fR
Where systemd put the service's credentials (LoadCredential=).
.SH "EXIT STATUS"
0 success; 1 the command failed (the message says why); 2 wrong usage; 78 invalid config.
.SH "SEE ALSO"
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBsystemd.exec\fR(5)
"#;
