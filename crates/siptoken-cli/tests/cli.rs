//! Runs the built `siptoken` binary end to end.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::ACCOUNT;
use serde_json::Value;

mod common;

const V1_KEY: &str = "6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2";
const LEGACY_KEY: &str = "8263D535FFFFFFFF7B0F60";
const PASSWORD: &str = "p<a&s\"s'w>rd ü€ Пароль";

struct Env {
    dir: tempfile::TempDir,
    keys: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.conf");
    std::fs::write(
        &keys,
        format!("# test ring\nCRM={LEGACY_KEY}\nCRM.k1={V1_KEY}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    Env { dir, keys }
}

fn siptoken() -> Command {
    let mut cmd = Command::cargo_bin("siptoken").unwrap();
    cmd.env_remove("SIPTOKEN_KEYS");
    cmd
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command, stdin: &str) -> Output {
    let out = cmd.write_stdin(stdin.as_bytes().to_vec()).output().unwrap();
    Output {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn issue(e: &Env, extra: &[&str], password: &str) -> Output {
    let mut cmd = siptoken();
    cmd.args(["issue", "--keys"])
        .arg(&e.keys)
        .args(ACCOUNT)
        .arg("--password-stdin");
    cmd.args(extra);
    run(&mut cmd, password)
}

/// Asserts that the run exited with `code` and that its stderr contains `message`.
fn assert_fails(out: &Output, code: i32, message: &str) {
    assert_eq!(out.code, code, "{}", out.stderr);
    assert!(out.stderr.contains(message), "{}", out.stderr);
}

fn verify_json(keys: &Path, token: &str, extra: &[&str]) -> (i32, Value) {
    let mut cmd = siptoken();
    cmd.args(["verify", "--json", "--keys"])
        .arg(keys)
        .args(extra);
    let out = run(&mut cmd, token);
    (out.code, serde_json::from_str(&out.stdout).unwrap())
}

fn assert_no_secret(texts: &[&str]) {
    for text in texts {
        for secret in [
            PASSWORD,
            "hunter2",
            V1_KEY,
            &V1_KEY[..32],
            &V1_KEY[32..],
            LEGACY_KEY,
        ] {
            assert!(
                !text.contains(secret),
                "secret {secret:?} appears in {text:?}"
            );
        }
    }
}

#[test]
fn issue_then_verify_round_trips_every_character() {
    let e = env();
    let out = issue(
        &e,
        &[
            "--visible-name",
            "Оператор №7",
            "--port",
            "5080",
            "--transport",
            "tcp",
            "--claim",
            "x-crm-user=42",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let token = out.stdout.trim();
    assert!(token.starts_with("CRM:v1.k1."), "{token}");
    assert_no_secret(&[&out.stdout, &out.stderr]);

    let (code, report) = verify_json(&e.keys, token, &["--show-password"]);
    assert_eq!(code, 0);
    assert_eq!(report["valid"], true);
    assert_eq!(report["format"], "v1");
    assert_eq!(report["app"], "CRM");
    assert_eq!(report["kid"], "k1");
    let claims = &report["claims"];
    assert_eq!(
        claims["password"], PASSWORD,
        "one trailing newline stripped, nothing else"
    );
    assert_eq!(claims["login"], "crm1");
    assert_eq!(claims["visibleName"], "Оператор №7");
    assert_eq!(claims["port"], "5080");
    assert_eq!(claims["transport"], "tcp");
    assert_eq!(claims["x-crm-user"], "42");
    let issued: i64 = claims["issued"].as_str().unwrap().parse().unwrap();
    let expires: i64 = claims["expires"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires - issued, 300, "default TTL is 5 minutes");
    assert_eq!(claims["id"].as_str().unwrap().len(), 32);

    // Without --show-password the password is null in JSON and hidden in text.
    let (_, redacted) = verify_json(&e.keys, token, &[]);
    assert_eq!(redacted["claims"]["password"], Value::Null);
    let mut cmd = siptoken();
    let text = run(cmd.args(["verify", "--keys"]).arg(&e.keys).arg(token), "");
    assert_eq!(text.code, 0);
    assert!(text
        .stdout
        .contains("valid v1 token for application CRM (key k1)"));
    assert!(text.stdout.contains("Оператор №7"));
    assert_no_secret(&[&text.stdout, &text.stderr, &redacted.to_string()]);
}

/// `siptoken issue` for login `a` at domain `d`, with `source` giving the password (or not).
fn issue_with_source(e: &Env, source: &[&str], env: Option<(&str, &str)>) -> Output {
    let mut cmd = siptoken();
    cmd.args(["issue", "--keys"])
        .arg(&e.keys)
        .args(["--app", "CRM", "--login", "a", "--domain", "d"])
        .args(source);
    if let Some((name, value)) = env {
        cmd.env(name, value);
    }
    run(&mut cmd, "")
}

#[test]
fn password_sources_file_and_env() {
    let e = env();
    let file = e.dir.path().join("pw");
    std::fs::write(&file, "from-file\r\n").unwrap();
    let out = issue_with_source(&e, &["--password-file", file.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (_, r) = verify_json(&e.keys, out.stdout.trim(), &["--show-password"]);
    assert_eq!(r["claims"]["password"], "from-file");

    let out = issue_with_source(
        &e,
        &["--password-env", "SIP_PW"],
        Some(("SIP_PW", "from-env")),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (_, r) = verify_json(&e.keys, out.stdout.trim(), &["--show-password"]);
    assert_eq!(r["claims"]["password"], "from-env");

    let out = issue_with_source(&e, &["--password-env", "NOT_SET_ANYWHERE"], None);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("NOT_SET_ANYWHERE") && out.stderr.contains("not set"),
        "{}",
        out.stderr
    );

    let out = issue_with_source(&e, &[], None);
    assert_fails(&out, 2, "--password-stdin");

    let out = issue(&e, &[], "\n");
    assert_fails(&out, 2, "password is empty");

    // There is no way to pass a password in argv.
    let out = issue_with_source(&e, &["--password", "hunter2"], None);
    assert_fails(&out, 2, "unexpected argument '--password'");
}

#[test]
fn batch_answers_line_for_line_and_reports_bad_lines() {
    let e = env();
    let input = format!(
        "{}\n{}\n{}\n\n{}\n",
        serde_json::json!({"login": "a1", "password": PASSWORD, "domain": "d.example", "port": 5060}),
        r#"{"login": "a2", "domain": "d.example"}"#,
        serde_json::json!({"login": "a3", "password": "hunter2", "domain": "d.example", "ttl_seconds": 60, "x-extra": "kept"}),
        "not json",
    );
    let mut cmd = siptoken();
    cmd.args(["issue", "--keys"])
        .arg(&e.keys)
        .args(["--app", "CRM", "--batch", "-"]);
    let out = run(&mut cmd, &input);
    assert_eq!(out.code, 1, "a failed line makes the exit status 1");
    let lines: Vec<&str> = out.stdout.split('\n').collect();
    assert_eq!(lines.len(), 6, "{:?}", out.stdout); // five answers and the final newline
    assert!(
        lines[1].is_empty() && lines[3].is_empty() && lines[4].is_empty() && lines[5].is_empty()
    );
    assert!(
        out.stderr
            .contains("line 2: required field \"password\" is missing"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("line 4: empty line"), "{}", out.stderr);
    assert!(
        out.stderr.contains("line 5: invalid JSON"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("3 of 5 lines failed"), "{}", out.stderr);
    assert_no_secret(&[&out.stderr]);

    let (code, r1) = verify_json(&e.keys, lines[0], &["--show-password"]);
    assert_eq!(code, 0);
    assert_eq!(r1["claims"]["password"], PASSWORD);
    assert_eq!(r1["claims"]["port"], "5060");
    let (code, r3) = verify_json(&e.keys, lines[2], &["--show-password"]);
    assert_eq!(code, 0);
    assert_eq!(r3["claims"]["x-extra"], "kept");
    let life = |r: &Value| {
        r["claims"]["expires"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            - r["claims"]["issued"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
    };
    assert_eq!(life(&r1), 300);
    assert_eq!(life(&r3), 60);
}

#[test]
fn batch_from_a_file_all_good_exits_zero() {
    let e = env();
    let path = e.dir.path().join("accounts.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..50 {
        writeln!(f, "{}", serde_json::json!({"login": format!("op{i}"), "password": format!("pw{i}"), "domain": "d.example"})).unwrap();
    }
    drop(f);
    let mut cmd = siptoken();
    cmd.args(["issue", "--legacy", "--keys"])
        .arg(&e.keys)
        .args(["--app", "CRM", "--batch"])
        .arg(&path);
    let out = run(&mut cmd, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let tokens: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(tokens.len(), 50);
    let (code, r) = verify_json(&e.keys, tokens[49], &["--allow-legacy", "--show-password"]);
    assert_eq!(code, 0);
    assert_eq!(r["format"], "legacy");
    assert_eq!(r["claims"]["login"], "op49");
    assert_eq!(r["claims"]["password"], "pw49");
}

#[test]
fn rejections_exit_one_with_a_specific_message() {
    let e = env();
    let out = issue(&e, &["--now", "1764120000", "--ttl", "60"], "hunter2");
    let token = out.stdout.trim().to_owned();

    let mut cmd = siptoken();
    let out = run(
        cmd.args(["verify", "--now", "1764120100", "--keys"])
            .arg(&e.keys)
            .arg(&token),
        "",
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "siptoken: token expired at 2025-11-26T01:21:00Z (now 2025-11-26T01:21:40Z)\n"
    );

    let (code, r) = verify_json(&e.keys, &token, &["--now", "1764120100"]);
    assert_eq!(code, 1);
    assert_eq!(r["valid"], false);
    assert_eq!(r["error"], "expired");
    assert!(r["message"].as_str().unwrap().contains("expired at"));
    assert_eq!(r.as_object().unwrap().len(), 3);

    let (code, r) = verify_json(&e.keys, &token, &["--now", "1764120100", "--leeway", "1m"]);
    assert_eq!(
        (code, r["valid"].as_bool()),
        (0, Some(true)),
        "leeway 1m covers 40 s"
    );

    let tampered = format!(
        "{}{}",
        &token[..token.len() - 1],
        if token.ends_with('0') { '1' } else { '0' }
    );
    let (code, r) = verify_json(&e.keys, &tampered, &["--now", "1764120000"]);
    assert_eq!((code, r["error"].as_str()), (1, Some("bad_signature")));

    let legacy = issue(&e, &["--legacy"], "hunter2").stdout.trim().to_owned();
    let (code, r) = verify_json(&e.keys, &legacy, &[]);
    assert_eq!((code, r["error"].as_str()), (1, Some("legacy_disabled")));
    let (code, r) = verify_json(&e.keys, &legacy, &["--allow-legacy"]);
    assert_eq!((code, r["format"].as_str()), (0, Some("legacy")));

    let mut cmd = siptoken();
    let out = run(
        cmd.args(["verify", "--keys"])
            .arg(&e.keys)
            .arg("NOPE:v1.k1.00"),
        "",
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("siptoken: malformed token:"),
        "{}",
        out.stderr
    );
}

/// Issue 14, item 3: a legacy token has no `issued`, so its lifetime went unchecked and one
/// expiring in the year 9999 verified.
#[test]
fn legacy_expiry_beyond_the_maximum_lifetime_is_rejected() {
    let e = env();
    // A legacy token expiring at `expires`, verified at 1764120000 with `extra` options: the
    // verdict `valid` (Ok) or the error code (Err).
    let verdict = |expires: &str, extra: &[&str]| {
        let token = issue(&e, &["--legacy", "--expires", expires], "hunter2");
        assert_eq!(token.code, 0, "{}", token.stderr);
        let mut args = vec!["--allow-legacy", "--now", "1764120000"];
        args.extend(extra);
        let (code, r) = verify_json(&e.keys, token.stdout.trim(), &args);
        match r["error"].as_str() {
            Some(error) => (code, Err(error.to_owned())),
            None => (code, Ok(r["valid"].as_bool())),
        }
    };
    let too_long = (1, Err("lifetime_too_long".to_owned()));
    let valid = (0, Ok(Some(true)));
    assert_eq!(verdict("253402300799", &[]), too_long);
    // now + 24 h + 30 s is the last accepted expiry; a longer --max-lifetime moves the bound.
    assert_eq!(verdict("1764206430", &[]), valid);
    assert_eq!(verdict("1764206431", &[]), too_long);
    assert_eq!(verdict("1764206431", &["--max-lifetime", "25h"]), valid);
}

/// Issue 14, item 13: --leeway and --max-lifetime are bounded like the gateway's settings
/// (leeway at most 5 minutes, lifetime 1 s to 7 days), with an error naming the option.
#[test]
fn leeway_and_max_lifetime_are_bounded() {
    let e = env();
    let token = issue(&e, &["--now", "1764120000"], "hunter2").stdout;
    for ok in [
        ["--leeway", "5m"],
        ["--max-lifetime", "7d"],
        ["--leeway", "0"],
    ] {
        let (code, r) = verify_json(
            &e.keys,
            token.trim(),
            &[&ok[..], &["--now", "1764120000"]].concat(),
        );
        assert_eq!((code, r["valid"].as_bool()), (0, Some(true)), "{ok:?}: {r}");
    }
    for (bad, option) in [
        (["--leeway", "301s"], "--leeway"),
        (["--leeway", "18446744073709551615"], "--leeway"),
        (["--max-lifetime", "7days 1s"], "--max-lifetime"),
        (["--max-lifetime", "0"], "--max-lifetime"),
    ] {
        let mut cmd = siptoken();
        let out = run(
            cmd.args(["verify", "--now", "1764120000", "--keys"])
                .arg(&e.keys)
                .args(bad)
                .arg(token.trim()),
            "",
        );
        assert_fails(&out, 2, option);
    }
}

#[test]
fn configuration_errors_exit_two_without_key_material() {
    let e = env();
    let bad = e.dir.path().join("bad.conf");
    std::fs::write(&bad, format!("CRM.k1={V1_KEY}\nCRM.k2={}\n", &V1_KEY[..40])).unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = siptoken();
    let out = run(cmd.args(["verify", "--keys"]).arg(&bad).arg("CRM:00"), "");
    assert_fails(
        &out,
        2,
        "line 2: a v1 key must be exactly 32 bytes (got 20 bytes)",
    );
    assert_no_secret(&[&out.stderr]);

    let mut cmd = siptoken();
    let out = run(
        cmd.args(["verify", "--keys", "/nonexistent/keys.conf", "CRM:00"]),
        "",
    );
    assert_fails(&out, 2, "/nonexistent/keys.conf: No such file or directory");

    let mut cmd = siptoken();
    let out = run(cmd.args(["issue", "--app", "CRM"]), "");
    assert_eq!(out.code, 2, "missing --keys is a usage error");

    let out = issue(&e, &["--kid", "k9"], "hunter2");
    assert_fails(&out, 2, "unknown key \"k9\"");
}

#[test]
fn keys_from_environment_and_permission_warning() {
    let e = env();
    let mut cmd = siptoken();
    cmd.env("SIPTOKEN_KEYS", &e.keys).args([
        "issue",
        "--app",
        "CRM",
        "--login",
        "a",
        "--domain",
        "d",
        "--password-stdin",
    ]);
    let out = run(&mut cmd, "hunter2");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.is_empty(),
        "mode 600 gives no warning: {}",
        out.stderr
    );

    std::fs::set_permissions(&e.keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = issue(&e, &[], "hunter2");
    assert_eq!(out.code, 0);
    assert!(
        out.stderr.contains("warning: key ring") && out.stderr.contains("readable by others"),
        "{}",
        out.stderr
    );
}

#[test]
fn inspect_needs_no_key() {
    let e = env();
    let token = issue(&e, &[], "hunter2").stdout.trim().to_owned();
    let mut cmd = siptoken();
    let out = run(cmd.args(["inspect", "--json", &token]), "");
    assert_eq!(out.code, 0);
    let info: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(info["format"], "v1");
    assert_eq!(info["kid"], "k1");
    assert_eq!(info["token_len"], token.len());
    let mut cmd = siptoken();
    let out = run(cmd.args(["inspect", "-"]), &format!("{token}\n"));
    assert!(
        out.stdout.contains("nonce 16") && out.stdout.contains("kid     k1"),
        "{}",
        out.stdout
    );
    let mut cmd = siptoken();
    let out = run(cmd.args(["inspect", "CRM:xyzw"]), "");
    assert_fails(&out, 1, "not hexadecimal");
}

#[test]
fn keygen_lines_form_a_working_ring() {
    let e = env();
    let mut ring = String::new();
    for args in [
        &["--app", "NEW", "--kid", "a"][..],
        &["--app", "NEW", "--kid", "b"],
        &["--app", "NEW", "--legacy"],
    ] {
        let mut cmd = siptoken();
        let out = run(cmd.arg("keygen").args(args), "");
        assert_eq!(out.code, 0);
        ring.push_str(&out.stdout);
    }
    let lines: Vec<&str> = ring.lines().collect();
    assert!(lines[0].starts_with("NEW.a=") && lines[0].len() == 6 + 64);
    assert!(lines[2].starts_with("NEW=") && lines[2].len() == 4 + 32);
    assert_ne!(lines[0][6..], lines[1][6..]);
    let keys = e.dir.path().join("new.conf");
    std::fs::write(&keys, &ring).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = siptoken();
    cmd.args(["issue", "--keys"]).arg(&keys).args([
        "--app",
        "NEW",
        "--login",
        "a",
        "--domain",
        "d",
        "--password-stdin",
    ]);
    let out = run(&mut cmd, "pw");
    assert!(
        out.stdout.starts_with("NEW:v1.b."),
        "the last key listed issues: {}",
        out.stdout
    );
    let (code, _) = verify_json(&keys, out.stdout.trim(), &[]);
    assert_eq!(code, 0);

    let mut cmd = siptoken();
    let out = run(cmd.args(["keygen", "--app", "bad name"]), "");
    assert_eq!(out.code, 2);
}

#[test]
fn a_closed_pipe_ends_the_process_quietly() {
    // `siptoken verify … | grep -q …`: the reader is gone before the output is written. The
    // token goes in on stdin only after the read end of stdout is closed, so the write must
    // meet a broken pipe.
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    let e = env();
    let token = issue(&e, &[], "hunter2").stdout;
    let keys = e.keys.to_str().unwrap();
    for args in [
        &["verify", "--keys", keys, "-"][..],
        &["verify", "--json", "--keys", keys, "-"],
        &["inspect", "-"],
    ] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("siptoken"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        child
            .stdin
            .take()
            .unwrap()
            .write_all(token.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(13),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}

#[test]
fn completions_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = siptoken();
        let out = run(cmd.args(["completions", shell]), "");
        assert_eq!(out.code, 0);
        assert!(
            out.stdout.contains("verify") && out.stdout.contains("password-stdin"),
            "{shell}"
        );
    }
}

#[test]
fn committed_man_pages_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = siptoken();
    let out = run(cmd.args(["manpages", "--dir"]).arg(dir.path()), "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../man");
    let mut generated: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    generated.sort();
    assert!(generated.len() >= 5, "{generated:?}");
    for name in generated {
        let fresh = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let committed = std::fs::read_to_string(man.join(&name)).unwrap_or_default();
        assert!(
            fresh == committed,
            "man/{} is stale: run `cargo run -- manpages --dir man` and commit",
            name.to_string_lossy()
        );
    }
}
