//! Secrets never leak from the `siptoken` command line: every subcommand, successes and
//! failures, run with the most verbose settings there are (the CLI has no log levels; every
//! run gets `RUST_LOG=trace` and `RUST_BACKTRACE=full` anyway), and no output may contain a
//! SIP password, a key (hex, either case) or a whole token — except each command's own product
//! on stdout: `issue` prints tokens, `keygen` a new key, `verify --show-password` the password.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

const V1_KEY: &str = "6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2";
const LEGACY_KEY: &str = "8263D535FFFFFFFF7B0F60";
/// A different v1 key for the same app: tokens under [`V1_KEY`] fail against it.
const OTHER_KEY: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const PASSWORDS: [&str; 4] = [
    "Cli-Sip-Pw-5e2a9",
    "Batch-Pw-Good-71c3",
    "Batch-Pw-Bad-0f9e",
    "Env-Pw-3b8d4",
];

struct Run<'a> {
    name: &'a str,
    out: Output,
}

fn siptoken(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_siptoken"));
    cmd.args(args)
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "full")
        .env_remove("SIPTOKEN_KEYS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // A command that does not read stdin may exit first: a broken pipe here is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn ring_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// `siptoken issue` arguments for account `x` at domain `d` of `app`, under the key ring file
/// `keys`, the password read from stdin.
fn issue_x_args<'a>(keys: &'a str, app: &'a str) -> Vec<&'a str> {
    vec![
        "issue",
        "--keys",
        keys,
        "--app",
        app,
        "--login",
        "x",
        "--domain",
        "d",
        "--password-stdin",
    ]
}

/// Every secret, spelled every way an output could carry it.
fn secrets(tokens: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pw in PASSWORDS {
        out.push((format!("password {pw}"), pw.to_owned()));
    }
    for key in [V1_KEY, LEGACY_KEY, OTHER_KEY] {
        out.push((format!("key {key}"), key.to_ascii_lowercase()));
        out.push((format!("key {key}"), key.to_ascii_uppercase()));
        // A key cut short or with a bad digit is still most of the key.
        out.push((format!("most of key {key}"), key[..16].to_ascii_lowercase()));
        out.push((format!("most of key {key}"), key[..16].to_ascii_uppercase()));
    }
    for t in tokens {
        out.push(("a whole token".into(), t.clone()));
        out.push(("a token's tail".into(), t[t.len() - 32..].to_owned()));
    }
    out
}

/// Checks stderr always, stdout except for the `allowed` secrets (the command's product).
fn check(run: &Run, tokens: &[String], allowed_on_stdout: &[&str]) {
    let stdout = String::from_utf8_lossy(&run.out.stdout);
    let stderr = String::from_utf8_lossy(&run.out.stderr);
    for (what, secret) in secrets(tokens) {
        assert!(
            !stderr.contains(&secret),
            "{}: {what} on stderr:\n{stderr}",
            run.name
        );
        if !allowed_on_stdout.iter().any(|a| a.contains(&secret)) {
            assert!(
                !stdout.contains(&secret),
                "{}: {what} on stdout:\n{stdout}",
                run.name
            );
        }
    }
}

#[test]
fn no_password_key_or_token_in_any_cli_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ring = ring_file(
        d,
        "keys.conf",
        &format!("# test ring\nCRM={LEGACY_KEY}\nCRM.k1={V1_KEY}\n"),
    );
    let ring = ring.to_str().unwrap();
    let other = ring_file(d, "other.conf", &format!("CRM.k1={OTHER_KEY}\n"));
    let other = other.to_str().unwrap();
    let pw_file = d.join("pw.txt");
    std::fs::write(&pw_file, format!("{}\n", PASSWORDS[0])).unwrap();
    let pw_file = pw_file.to_str().unwrap();
    let account = common::ACCOUNT;
    let mut runs: Vec<(Run, Vec<String>)> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let run = |name: &'static str, args: &[&str], stdin: &str, env: &[(&str, &str)]| Run {
        name,
        out: siptoken(args, stdin, env),
    };

    // Issue: stdin, file, environment; v1 and legacy.
    let issue = |name, extra: &[&str], stdin: &str, env: &[(&str, &str)]| {
        let mut args = vec!["issue", "--keys", ring];
        args.extend_from_slice(&account);
        args.extend_from_slice(extra);
        let r = run(name, &args, stdin, env);
        assert!(r.out.status.success(), "{name}: {:?}", r.out);
        let token = String::from_utf8(r.out.stdout.clone())
            .unwrap()
            .trim()
            .to_owned();
        (r, token)
    };
    let (r, v1) = issue("issue v1 (stdin)", &["--password-stdin"], PASSWORDS[0], &[]);
    runs.push((r, vec![v1.clone()]));
    let (r, legacy) = issue(
        "issue legacy (file)",
        &["--legacy", "--password-file", pw_file],
        "",
        &[],
    );
    runs.push((r, vec![legacy.clone()]));
    let (r, env_token) = issue(
        "issue v1 (env)",
        &["--password-env", "SIP_PW", "--transport", "tls"],
        "",
        &[("SIP_PW", PASSWORDS[3])],
    );
    runs.push((r, vec![env_token.clone()]));
    tokens.extend([v1.clone(), legacy.clone(), env_token.clone()]);

    // Batch with good and bad lines: errors name the line, never its password.
    let batch = d.join("batch.jsonl");
    std::fs::write(
        &batch,
        format!(
            "{{\"login\":\"a\",\"domain\":\"sip.example.org\",\"password\":\"{}\"}}\n\
             {{\"login\":\"b\",\"password\":\"{}\"}}\n\
             {{\"login\":\"c\",\"domain\":\"sip.example.org\",\"password\":\"{}\",\"port\":\"x\"}}\n\
             {{\"login\":\"d\",\"domain\":\"sip.example.org\",\"password\":\"{}\"\n\
             not json {}\n",
            PASSWORDS[1], PASSWORDS[2], PASSWORDS[2], PASSWORDS[2], PASSWORDS[2]
        ),
    )
    .unwrap();
    let r = run(
        "issue --batch",
        &[
            "issue",
            "--keys",
            ring,
            "--app",
            "CRM",
            "--batch",
            batch.to_str().unwrap(),
        ],
        "",
        &[],
    );
    assert_eq!(r.out.status.code(), Some(1), "{:?}", r.out);
    let batch_tokens: Vec<String> = String::from_utf8(r.out.stdout.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(batch_tokens.len(), 1, "{:?}", r.out);
    assert!(!r.out.stderr.is_empty(), "bad lines are reported");
    runs.push((r, batch_tokens.clone()));
    tokens.extend(batch_tokens);

    // Issue failures: missing or empty password, unknown app, bad key ring lines.
    runs.push((
        run(
            "issue without a password source",
            &[
                "issue", "--keys", ring, "--app", "CRM", "--login", "x", "--domain", "d",
            ],
            PASSWORDS[0],
            &[],
        ),
        vec![],
    ));
    runs.push((
        run(
            "issue, unknown app",
            &issue_x_args(ring, "ERP"),
            PASSWORDS[0],
            &[],
        ),
        vec![],
    ));
    for (name, text) in [
        (
            "key ring: key one digit short",
            format!("CRM.k1={}\n", &V1_KEY[..63]),
        ),
        (
            "key ring: bad hex digit",
            format!("CRM.k1={}zz\n", &V1_KEY[..62]),
        ),
        (
            "key ring: 31-byte v1 key",
            format!("CRM.k1={}\n", &V1_KEY[..62]),
        ),
        (
            "key ring: legacy key too long",
            format!("CRM={LEGACY_KEY}{LEGACY_KEY}\n"),
        ),
        ("key ring: no name", format!("={V1_KEY}\n")),
        (
            "key ring: duplicate",
            format!("CRM.k1={V1_KEY}\nCRM.k1={V1_KEY}\n"),
        ),
    ] {
        let bad = ring_file(d, "bad.conf", &text);
        let r = run(
            name,
            &issue_x_args(bad.to_str().unwrap(), "CRM"),
            PASSWORDS[0],
            &[],
        );
        assert_eq!(r.out.status.code(), Some(2), "{name}: {:?}", r.out);
        runs.push((r, vec![]));
    }
    let loose = d.join("loose.conf");
    std::fs::write(&loose, format!("CRM.k1={V1_KEY}\n")).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    runs.push((
        run(
            "issue with a world-readable key ring",
            &issue_x_args(loose.to_str().unwrap(), "CRM"),
            PASSWORDS[0],
            &[],
        ),
        vec![],
    ));

    // Verify and inspect: tokens as argument and on stdin, valid and not.
    let mut tampered = v1.clone().into_bytes();
    let n = tampered.len();
    tampered[n - 1] = if tampered[n - 1] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    tokens.push(tampered.clone());
    for (name, args, stdin) in [
        ("verify", vec!["verify", "--keys", ring, &v1], ""),
        (
            "verify --json (stdin)",
            vec!["verify", "--keys", ring, "--json"],
            v1.as_str(),
        ),
        (
            "verify legacy, not allowed",
            vec!["verify", "--keys", ring, &legacy],
            "",
        ),
        (
            "verify legacy --json",
            vec![
                "verify",
                "--keys",
                ring,
                "--allow-legacy",
                "--json",
                &legacy,
            ],
            "",
        ),
        (
            "verify tampered",
            vec!["verify", "--keys", ring, &tampered],
            "",
        ),
        (
            "verify tampered --json",
            vec!["verify", "--keys", ring, "--json", &tampered],
            "",
        ),
        (
            "verify with another key",
            vec!["verify", "--keys", other, &v1],
            "",
        ),
        (
            "verify expired",
            vec!["verify", "--keys", ring, "--now", "4102444800", &v1],
            "",
        ),
        (
            "verify garbage",
            vec!["verify", "--keys", ring, "CRM:v1.k1.zz"],
            "",
        ),
        (
            "verify, missing key ring",
            vec!["verify", "--keys", "/nonexistent", &v1],
            "",
        ),
        ("inspect", vec!["inspect", &v1], ""),
        (
            "inspect --json (stdin)",
            vec!["inspect", "--json"],
            legacy.as_str(),
        ),
        ("inspect tampered", vec!["inspect", &tampered], ""),
        ("keygen", vec!["keygen", "--app", "CRM", "--kid", "k2"], ""),
        (
            "keygen --legacy",
            vec!["keygen", "--app", "CRM", "--legacy"],
            "",
        ),
        ("keygen, bad app", vec!["keygen", "--app", "C R=M"], ""),
        ("completions", vec!["completions", "bash"], ""),
        ("no subcommand", vec![], ""),
    ] {
        runs.push((run(name, &args, stdin, &[]), vec![]));
    }
    // verify --show-password prints the password by request: that one is allowed on stdout.
    let r = run(
        "verify --show-password",
        &["verify", "--keys", ring, "--show-password", &v1],
        "",
        &[],
    );
    assert!(String::from_utf8_lossy(&r.out.stdout).contains(PASSWORDS[0]));
    check(&r, &tokens, &[PASSWORDS[0]]);

    for (r, produced) in &runs {
        let allowed: Vec<&str> = produced.iter().map(String::as_str).collect();
        check(r, &tokens, &allowed);
    }
    eprintln!(
        "{} runs checked against {} secrets",
        runs.len() + 1,
        secrets(&tokens).len()
    );
}
