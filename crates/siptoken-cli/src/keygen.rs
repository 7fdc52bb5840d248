//! `siptoken keygen`: a fresh key ring line.

use std::process::ExitCode;

use anyhow::{bail, Result};
use siptoken::{is_valid_name, V1Key};

use crate::cli::KeygenArgs;

pub fn run(args: KeygenArgs) -> Result<ExitCode> {
    if !is_valid_name(&args.app) {
        bail!("invalid application name: use 1 to 32 of A-Z a-z 0-9 _ -");
    }
    // Both key kinds come from the same CSPRNG; a legacy key is the first half of a v1 key.
    let key = V1Key::random();
    let hex = key.to_hex();
    if args.legacy {
        println!("{}={}", args.app, &hex[..32]);
        return Ok(ExitCode::SUCCESS);
    }
    let kid = match args.kid {
        Some(kid) => kid,
        None => {
            let today = time::OffsetDateTime::now_utc().date();
            format!(
                "k{:04}{:02}{:02}",
                today.year(),
                u8::from(today.month()),
                today.day()
            )
        }
    };
    if !is_valid_name(&kid) {
        bail!("invalid key id: use 1 to 32 of A-Z a-z 0-9 _ -");
    }
    println!("{}.{}={}", args.app, kid, hex.as_str());
    Ok(ExitCode::SUCCESS)
}
