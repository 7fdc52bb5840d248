//! Legacy tokens agree byte for byte with the openssl pipeline integrators use today
//! (`openssl enc -aes-128-ctr -nosalt -K KEY -iv 0…0 | xxd -p`), in both directions.
//! Runs the real `openssl` binary.

use std::io::Write;
use std::process::{Command, Stdio};

const KEY: &str = "8263D535FFFFFFFF7B0F60";

fn openssl(xml: &[u8], key: &str, decrypt: bool) -> Vec<u8> {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "enc",
        "-aes-128-ctr",
        "-nosalt",
        "-K",
        key,
        "-iv",
        "00000000000000000000000000000000",
    ]);
    if decrypt {
        cmd.arg("-d");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null()) // openssl warns that a short key is zero-padded
        .spawn()
        .expect("the openssl binary (Debian package openssl) is needed for this test");
    child.stdin.take().unwrap().write_all(xml).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn siptoken(args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = assert_cmd::Command::cargo_bin("siptoken")
        .unwrap()
        .args(args)
        .env_remove("SIPTOKEN_KEYS")
        .write_stdin(stdin)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn keys_file(dir: &tempfile::TempDir, key: &str) -> String {
    let path = dir.path().join("keys.conf");
    std::fs::write(&path, format!("CRM={key}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// The accounts of the test: awkward characters in every field.
fn accounts() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let long = "L0ng!pass-".repeat(40);
    vec![
        ("crm1", "s3cret".into(), "sipnet.ru", "Operator 1"),
        (
            "helpdesk7",
            "p<a&s\"s'w>rd ü€".into(),
            "pbx.example.com",
            "Оператор №7",
        ),
        ("x", "tab\there\nnew line\r".into(), "d.example", "𝄞 music"),
        ("long", long, "sip.example.org", ""),
    ]
}

fn escaped(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
        .replace('\t', "&#9;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
}

#[test]
fn siptoken_issue_legacy_equals_the_openssl_pipeline() {
    for key in [KEY, "00112233445566778899aabbccddeeff", "01"] {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys_file(&dir, key);
        for (login, password, domain, name) in accounts() {
            let mut args = vec![
                "issue",
                "--legacy",
                "--keys",
                &keys,
                "--app",
                "CRM",
                "--login",
                login,
                "--domain",
                domain,
                "--expires",
                "1764120300",
                "--password-stdin",
            ];
            if !name.is_empty() {
                args.extend(["--visible-name", name]);
            }
            let (code, out, err) = siptoken(&args, &password);
            assert_eq!(code, 0, "{err}");
            // The XML an integrator would write by hand for the same account, in canonical order.
            let mut xml = format!(
                "<root login=\"{}\" password=\"{}\" domain=\"{}\"",
                escaped(login),
                escaped(&password),
                escaped(domain)
            );
            if !name.is_empty() {
                xml.push_str(&format!(" visibleName=\"{}\"", escaped(name)));
            }
            xml.push_str(" expires=\"1764120300\"/>");
            let expected = format!("CRM:{}", hex::encode(openssl(xml.as_bytes(), key, false)));
            assert_eq!(out.trim_end(), expected, "key {key}, login {login}");

            // And openssl decrypts our token back to exactly that XML.
            let body = hex::decode(&out.trim_end()[4..]).unwrap();
            assert_eq!(openssl(&body, key, true), xml.as_bytes());
        }
    }
}

#[test]
fn tokens_made_by_openssl_verify_with_siptoken() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_file(&dir, KEY);
    for (login, password, domain, name) in accounts() {
        // Attribute order and the optional authenticationName as integrators write them.
        let xml = format!(
            "<root login=\"{l}\" authenticationName=\"{l}\" password=\"{p}\" domain=\"{d}\" outboundProxy=\"{d}\" port=\"5060\" visibleName=\"{n}\" expires=\"1764120300\"/>",
            l = escaped(login), p = escaped(&password), d = escaped(domain), n = escaped(name)
        );
        let token = format!("CRM:{}", hex::encode(openssl(xml.as_bytes(), KEY, false)));
        let (code, out, err) = siptoken(
            &[
                "verify",
                "--json",
                "--show-password",
                "--allow-legacy",
                "--now",
                "1764120000",
                "--keys",
                &keys,
                &token,
            ],
            "",
        );
        assert_eq!(code, 0, "{err} {out}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        let claims = &report["claims"];
        assert_eq!(claims["login"], login);
        assert_eq!(claims["password"], password);
        assert_eq!(claims["domain"], domain);
        assert_eq!(claims["visibleName"], name);
        assert_eq!(claims["authenticationName"], login);
        assert_eq!(claims["port"], "5060");

        // xxd -p writes 60 hex digits a line; the upper-case spelling is accepted too.
        let upper = format!(
            "CRM:{}",
            hex::encode_upper(openssl(xml.as_bytes(), KEY, false))
        );
        let (code, _, err) = siptoken(
            &[
                "verify",
                "--allow-legacy",
                "--now",
                "1764120000",
                "--keys",
                &keys,
                &upper,
            ],
            "",
        );
        assert_eq!(code, 0, "{err}");
    }
}
