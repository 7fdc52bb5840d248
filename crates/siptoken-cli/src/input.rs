//! Reading the inputs that must not come from argv: passwords, tokens, key rings.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use siptoken::KeyRing;
use zeroize::Zeroizing;

use crate::cli::PasswordSource;

/// Removes one trailing "\n" or "\r\n" (what `echo` and editors add), nothing else.
fn strip_one_newline(mut s: Zeroizing<String>) -> Zeroizing<String> {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// Reads the password from the one source given.
pub fn password(source: &PasswordSource) -> Result<Zeroizing<String>> {
    let password = if source.password_stdin {
        let mut s = Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from standard input")?;
        strip_one_newline(s)
    } else if let Some(path) = &source.password_file {
        let s = std::fs::read_to_string(path)
            .with_context(|| format!("reading the password from {}", path.display()))?;
        strip_one_newline(Zeroizing::new(s))
    } else if let Some(var) = &source.password_env {
        match std::env::var(var) {
            Ok(s) => Zeroizing::new(s),
            Err(std::env::VarError::NotPresent) => {
                bail!("environment variable {var} (--password-env) is not set")
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                bail!("environment variable {var} (--password-env) is not valid UTF-8")
            }
        }
    } else {
        bail!("give the password with --password-stdin, --password-file FILE or --password-env VAR (never on the command line)");
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// The token from the argument, or from standard input when it is absent or `-`.
pub fn token(arg: Option<&str>) -> Result<String> {
    match arg {
        Some(token) if token != "-" => Ok(token.to_owned()),
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("no token: give TOKEN or pipe one on standard input");
            }
            let mut s = String::new();
            // Read a little past the size limit so that an oversized token is reported as such
            // without reading an unbounded stream.
            stdin
                .lock()
                .take(siptoken::MAX_TOKEN_LEN as u64 + 1024)
                .read_to_string(&mut s)
                .context("reading the token from standard input")?;
            Ok(s)
        }
    }
}

/// Opens a key ring, warning on stderr when others can read it.
pub fn keyring(path: &Path) -> Result<KeyRing> {
    if let Some(warning) = siptoken::permission_warning(path) {
        eprintln!("siptoken: warning: {warning}");
    }
    Ok(KeyRing::open(path)?)
}
