//! `siptoken issue`: one token from flags, or one per JSON line with `--batch`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use siptoken::json::ClaimsRequest;
use siptoken::{Claims, Issuer, Transport};

use crate::cli::{IssueArgs, TransportArg};
use crate::{input, EXIT_REJECTED};

pub fn run(args: IssueArgs) -> Result<ExitCode> {
    let ring = input::keyring(&args.keys.keys)?;
    let mut issuer = Issuer::new(&ring).ttl(args.ttl);
    if args.legacy {
        issuer = issuer.legacy();
    }
    if let Some(kid) = &args.kid {
        issuer = issuer.kid(kid.as_str());
    }
    // One clock reading for the whole run: every token of a batch gets the same `issued`.
    issuer = issuer.at(args.now.unwrap_or_else(siptoken::verify::system_now));

    if let Some(path) = &args.batch {
        return batch(&issuer, &args, path);
    }

    let claims = claims_from_flags(&args)?;
    let token = issuer.issue(&args.app, &claims)?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn claims_from_flags(args: &IssueArgs) -> Result<Claims> {
    let password = input::password(&args.password)?;
    let (Some(login), Some(domain)) = (&args.login, &args.domain) else {
        bail!("--login and --domain are required without --batch");
    };
    let mut b = Claims::builder(login.as_str(), password, domain.as_str());
    if let Some(v) = &args.auth_name {
        b = b.auth_name(v.as_str());
    }
    if let Some(v) = &args.outbound_proxy {
        b = b.outbound_proxy(v.as_str());
    }
    if let Some(v) = args.port {
        b = b.port(v);
    }
    if let Some(v) = &args.visible_name {
        b = b.visible_name(v.as_str());
    }
    if let Some(v) = args.transport {
        b = b.transport(match v {
            TransportArg::Udp => Transport::Udp,
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::Tls => Transport::Tls,
        });
    }
    if args.no_register {
        b = b.registered(false);
    }
    if let Some(v) = args.expires {
        b = b.expires(v);
    }
    for claim in &args.claims {
        let Some((name, value)) = claim.split_once('=') else {
            bail!("--claim wants NAME=VALUE");
        };
        b = b.extra(name, value);
    }
    Ok(b.build()?)
}

fn batch(issuer: &Issuer<'_>, args: &IssueArgs, path: &std::path::Path) -> Result<ExitCode> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut failed = 0usize;
    let mut line = zeroize::Zeroizing::new(String::new());
    let mut reader = reader;
    let mut number = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("reading line {} of {}", number + 1, path.display()))?;
        if n == 0 {
            break;
        }
        number += 1;
        let text = line.trim_end_matches(['\n', '\r']);
        match issue_line(issuer, &args.app, text) {
            Ok(token) => writeln!(out, "{token}"),
            Err(e) => {
                failed += 1;
                eprintln!("siptoken: line {number}: {e}");
                writeln!(out)
            }
        }
        .context("writing the tokens")?;
    }
    out.flush().context("writing the tokens")?;
    if failed > 0 {
        eprintln!("siptoken: {failed} of {number} lines failed");
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}

fn issue_line(issuer: &Issuer<'_>, app: &str, text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("empty line (expected a JSON object)".into());
    }
    let request = ClaimsRequest::from_json(text).map_err(|e| e.to_string())?;
    let result = match request.ttl {
        Some(ttl) if request.claims.expires().is_none() => {
            issuer.clone().ttl(ttl).issue(app, &request.claims)
        }
        _ => issuer.issue(app, &request.claims),
    };
    result.map_err(|e| e.to_string())
}
