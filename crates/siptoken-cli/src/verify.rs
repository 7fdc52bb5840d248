//! `siptoken verify` and `siptoken inspect`.

use std::process::ExitCode;

use anyhow::Result;
use siptoken::json::VerifyReport;
use siptoken::{Verified, Verifier, VerifyOptions};

use crate::cli::{InspectArgs, VerifyArgs};
use crate::{input, EXIT_REJECTED};

pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    let ring = input::keyring(&args.keys.keys)?;
    let token = input::token(args.token.as_deref())?;
    let options = VerifyOptions {
        allow_legacy: args.allow_legacy,
        leeway_seconds: args.leeway.as_secs(),
        max_lifetime_seconds: args.max_lifetime.as_secs(),
        require_legacy_expiry: !args.allow_no_expiry,
        now: args.now,
    };
    let outcome = Verifier::with_options(&ring, options).verify(&token);
    let valid = outcome.is_ok();
    if args.json {
        println!(
            "{}",
            VerifyReport::new(outcome, args.show_password).to_json()
        );
    } else {
        match &outcome {
            Ok(verified) => print_claims(verified, args.show_password, args.now),
            Err(e) => eprintln!("siptoken: {e}"),
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REJECTED)
    })
}

fn print_claims(v: &Verified, show_password: bool, now: Option<i64>) {
    match v.kid() {
        Some(kid) => println!(
            "valid {} token for application {} (key {kid})",
            v.format(),
            v.app()
        ),
        None => println!("valid {} token for application {}", v.format(), v.app()),
    }
    let now = now.unwrap_or_else(siptoken::verify::system_now);
    let mut width = 0;
    v.claims().for_each(|name, _| width = width.max(name.len()));
    v.claims().for_each(|name, text| {
        let shown = match name {
            "password" if !show_password => "(hidden; --show-password prints it)".to_owned(),
            "expires" | "issued" => describe_time(text, now),
            _ => text.escape_debug().to_string(),
        };
        println!("  {name:width$}  {shown}");
    });
}

/// `1764120300 (2025-11-26T01:25:00Z, in 5m)`.
fn describe_time(text: &str, now: i64) -> String {
    let Ok(t) = text.parse::<i64>() else {
        return text.to_owned();
    };
    let when = time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let delta = t - now;
    let human = humantime::format_duration(std::time::Duration::from_secs(delta.unsigned_abs()));
    if delta >= 0 {
        format!("{t} ({when}, in {human})")
    } else {
        format!("{t} ({when}, {human} ago)")
    }
}

pub fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let token = input::token(args.token.as_deref())?;
    let info = match siptoken::inspect(&token) {
        Ok(info) => info,
        Err(e) => {
            if args.json {
                println!("{}", VerifyReport::new(Err(e), false).to_json());
            } else {
                eprintln!("siptoken: {e}");
            }
            return Ok(ExitCode::from(EXIT_REJECTED));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&info).expect("info serializes"));
        return Ok(ExitCode::SUCCESS);
    }
    println!("format  {}", info.format);
    println!("app     {}", info.app);
    if let Some(kid) = &info.kid {
        println!("kid     {kid}");
    }
    println!("token   {} bytes", info.token_len);
    match &info.nonce {
        Some(nonce) => {
            println!(
                "body    {} bytes: nonce 16, encrypted claims {}, tag 32",
                info.body_len, info.claims_len
            );
            println!("nonce   {nonce}");
        }
        None => println!(
            "body    {} bytes of encrypted claims (no nonce, no integrity check)",
            info.body_len
        ),
    }
    Ok(ExitCode::SUCCESS)
}
