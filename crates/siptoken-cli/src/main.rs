//! `siptoken`: issue and verify SIP-credential tokens from the shell.

mod cli;
mod input;
mod issue;
mod keygen;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};

/// Exit status when a token is rejected (or a batch line fails).
pub const EXIT_REJECTED: u8 = 1;
/// Exit status for usage, input and configuration errors.
pub const EXIT_USAGE: u8 = 2;

/// Restores the default action of SIGPIPE, which the Rust runtime sets to "ignore": when the
/// reader of our output goes away (`siptoken verify … | grep -q valid`), the process ends quietly
/// like any Unix filter, instead of `println!` panicking on the broken pipe.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Issue(args) => issue::run(*args),
        Command::Verify(args) => verify::run(args),
        Command::Inspect(args) => verify::inspect(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "siptoken",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpages(args) => clap_mangen::generate_to(Cli::command(), &args.dir)
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.dir.display())),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("siptoken: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
