//! Standard output for every verb, and what a closed pipe means for it.
//!
//! `followup show 1 | head -1` closes the pipe after one line. std's `println!` panics
//! on the failed write; the SIGPIPE default would end the process instead, but the
//! daemon keeps SIGPIPE ignored so that a socket closed by a peer is an error it can
//! handle, and the verbs share its binary. So every verb writes through here: the
//! macros below shadow std's `println!` and `print!` in `cli` and the modules declared
//! after this one, and a closed pipe ends the process quietly with exit 0, like `cat`
//! ends under SIGPIPE. Verbs that write through a `Write` of their own return the error;
//! [`is_closed_pipe`] lets `main` treat it the same way.

use std::fmt;
use std::io::{self, Write as _};

/// `println!` through [`write`].
macro_rules! println {
    () => {
        $crate::cli::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`write`].
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!($($arg)*))
    };
}

/// Writes to standard output. A closed pipe ends the process with exit 0: the reader
/// has what it wanted. Any other failure (a full disk) ends it with exit 1 and says so.
pub(crate) fn write(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        drop(out);
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("followup: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Whether `error` comes from writing to a pipe whose reader has gone.
pub(crate) fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let io = cause.downcast_ref::<io::Error>().or_else(|| {
            cause
                .downcast_ref::<csv::Error>()
                .and_then(|e| match e.kind() {
                    csv::ErrorKind::Io(io) => Some(io),
                    _ => None,
                })
        });
        io.is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
