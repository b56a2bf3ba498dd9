//! The `followup` binary: everything lives in the library; see `followup --help`.

fn main() -> std::process::ExitCode {
    followup::cli::main()
}
