//! Unit tests of the ABI through its extern functions (the C, PHP and Python suites test the
//! built library from outside).

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::{null, null_mut};

use super::*;

const RING: &str = "CRM=8263D535FFFFFFFF7B0F60\n\
    CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n";
const CLAIMS: &str =
    r#"{"login":"crm1","password":"p<&\"'ü","domain":"sip.example.org","port":5060}"#;

/// One call of an ABI function, given the error slot.
type Case<'a> = Box<dyn Fn(*mut *mut c_char) -> c_int + 'a>;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Takes ownership of a returned string.
fn take(p: *mut c_char) -> String {
    assert!(!p.is_null());
    let s = unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned();
    unsafe { siptoken_free(p) };
    s
}

fn ring() -> *mut siptoken_keyring {
    let mut out = null_mut();
    let mut err = null_mut();
    let rc = unsafe { siptoken_keyring_from_str(c(RING).as_ptr(), &mut out, &mut err) };
    assert_eq!(rc, 0);
    assert!(err.is_null());
    out
}

fn name(code: c_int) -> &'static str {
    unsafe { CStr::from_ptr(siptoken_error_code(code)) }
        .to_str()
        .unwrap()
}

/// Calls an ABI function with an error slot; returns the code and the message (if any).
fn call(f: impl FnOnce(*mut *mut c_char) -> c_int) -> (c_int, Option<String>) {
    let mut err = null_mut();
    let rc = f(&mut err);
    let msg = (!err.is_null()).then(|| take(err));
    assert_eq!(rc == 0, msg.is_none(), "a message exactly on failure");
    (rc, msg)
}

/// `siptoken_issue` with Rust strings; the token (on success) goes to `*out`.
fn issue_raw(
    ring: *const siptoken_keyring,
    app: &str,
    claims: &str,
    legacy: c_int,
    out: *mut *mut c_char,
    err: *mut *mut c_char,
) -> c_int {
    unsafe { siptoken_issue(ring, c(app).as_ptr(), c(claims).as_ptr(), legacy, out, err) }
}

/// `siptoken_verify` with Rust strings; the result (on success) goes to `*out`.
fn verify_raw(
    ring: *const siptoken_keyring,
    token: &str,
    options: &str,
    out: *mut *mut c_char,
    err: *mut *mut c_char,
) -> c_int {
    unsafe { siptoken_verify(ring, c(token).as_ptr(), c(options).as_ptr(), out, err) }
}

#[test]
fn header_is_up_to_date() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(format!("{dir}/src/lib.rs"))
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let path = format!("{dir}/include/siptoken.h");
    if std::env::var_os("SIPTOKEN_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is stale: regenerate it with `SIPTOKEN_BLESS=1 cargo test -p siptoken-ffi header` and commit it"
    );
}

#[test]
fn code_constants_are_the_core_numbers() {
    let consts = [
        (SIPTOKEN_ERR_MALFORMED, ErrorCode::Malformed),
        (SIPTOKEN_ERR_UNKNOWN_APP, ErrorCode::UnknownApp),
        (SIPTOKEN_ERR_UNKNOWN_KEY, ErrorCode::UnknownKey),
        (SIPTOKEN_ERR_BAD_SIGNATURE, ErrorCode::BadSignature),
        (SIPTOKEN_ERR_LEGACY_DISABLED, ErrorCode::LegacyDisabled),
        (SIPTOKEN_ERR_INVALID_XML, ErrorCode::InvalidXml),
        (SIPTOKEN_ERR_MISSING_FIELD, ErrorCode::MissingField),
        (SIPTOKEN_ERR_INVALID_FIELD, ErrorCode::InvalidField),
        (SIPTOKEN_ERR_EXPIRED, ErrorCode::Expired),
        (SIPTOKEN_ERR_NOT_YET_VALID, ErrorCode::NotYetValid),
        (SIPTOKEN_ERR_LIFETIME_TOO_LONG, ErrorCode::LifetimeTooLong),
        (SIPTOKEN_ERR_TOO_LARGE, ErrorCode::TooLarge),
        (SIPTOKEN_ERR_INVALID_KEYRING, ErrorCode::InvalidKeyring),
        (SIPTOKEN_ERR_INVALID_JSON, ErrorCode::InvalidJson),
        (SIPTOKEN_ERR_IO, ErrorCode::Io),
    ];
    // Every core code has a constant, with the core's number and name.
    assert_eq!(
        consts.len(),
        ErrorCode::ALL.len(),
        "a core code has no SIPTOKEN_ERR_ constant"
    );
    for (n, code) in consts {
        assert_eq!(n, code.number());
        assert_eq!(name(n), code.as_str());
    }
    // The ABI's own codes come after the core's and collide with none.
    for (n, abi_name) in ABI_CODES {
        assert!(
            ErrorCode::from_number(n).is_none(),
            "core code {n} collides with {abi_name}"
        );
        assert_eq!(name(n), abi_name);
    }
    assert_eq!(name(0), "ok");
    assert_eq!(name(-1), "unknown");
    assert_eq!(name(19), "unknown");
    assert_eq!(name(c_int::MAX), "unknown");
}

#[test]
fn docs_list_every_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/c-abi.md"))
        .expect("docs/c-abi.md");
    for (n, code) in code_table() {
        let row = format!("| {n} | `{}` |", code.to_str().unwrap());
        assert!(doc.contains(&row), "docs/c-abi.md lacks the row `{row}`");
    }
}

#[test]
fn version_is_the_core_version() {
    let v = unsafe { CStr::from_ptr(siptoken_version()) };
    assert_eq!(v.to_str().unwrap(), siptoken_core::VERSION);
}

#[test]
fn issue_then_verify_matches_the_cli_report() {
    let ring = ring();
    for legacy in [0, 1] {
        let mut token = null_mut();
        let (rc, _) = call(|err| issue_raw(ring, "CRM", CLAIMS, legacy, &mut token, err));
        assert_eq!(rc, 0);
        let token = take(token);
        assert_eq!(token.starts_with("CRM:v1.k1."), legacy == 0);

        let mut result = null_mut();
        let (rc, _) =
            call(|err| verify_raw(ring, &token, r#"{"allow_legacy":true}"#, &mut result, err));
        assert_eq!(rc, 0);
        let result = take(result);
        // Exactly what the core (and so `siptoken verify --json --show-password`) prints.
        let ring_rs: KeyRing = RING.parse().unwrap();
        let expected = VerifyReport::new(
            Verifier::new(&ring_rs).allow_legacy(true).verify(&token),
            true,
        )
        .to_json();
        assert_eq!(result, expected);
        let v: serde_json::Value = serde_json::from_str(&result).unwrap();
        assert_eq!(v["valid"], true);
        assert_eq!(v["claims"]["password"], "p<&\"'ü");
        assert_eq!(v["claims"]["port"], "5060");
        let expires: i64 = v["claims"]["expires"].as_str().unwrap().parse().unwrap();
        let now = siptoken_core::verify::system_now();
        assert!(
            (now + 295..=now + 300).contains(&expires),
            "default TTL is 300 s"
        );
    }
    unsafe { siptoken_keyring_free(ring) };
}

#[test]
fn ttl_seconds_and_judged_rejections() {
    let ring = ring();
    let mut token = null_mut();
    let claims = r#"{"login":"a","password":"b","domain":"c","ttl_seconds":10}"#;
    let (rc, _) = call(|err| issue_raw(ring, "CRM", claims, 0, &mut token, err));
    assert_eq!(rc, 0);
    let token = take(token);
    let later = siptoken_core::verify::system_now() + 10 + 31;
    let opts = format!(r#"{{"now":{later}}}"#);
    let mut result = null_mut();
    let (rc, _) = call(|err| verify_raw(ring, &token, &opts, &mut result, err));
    assert_eq!(rc, 0, "a rejected token is still a judged one");
    let v: serde_json::Value = serde_json::from_str(&take(result)).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"], "expired");
    unsafe { siptoken_keyring_free(ring) };
}

/// Issues a token through the ABI.
fn issue_through_abi(ring: *const siptoken_keyring, claims: &str, legacy: c_int) -> String {
    let mut token = null_mut();
    let (rc, msg) = call(|err| issue_raw(ring, "CRM", claims, legacy, &mut token, err));
    assert_eq!(rc, 0, "{msg:?}");
    take(token)
}

/// Verifies a token through the ABI; returns the parsed result object.
fn verify_through_abi(
    ring: *const siptoken_keyring,
    token: &str,
    options: &str,
) -> serde_json::Value {
    let mut result = null_mut();
    let (rc, msg) = call(|err| verify_raw(ring, token, options, &mut result, err));
    assert_eq!(rc, 0, "{msg:?}");
    serde_json::from_str(&take(result)).unwrap()
}

/// Issue 14, item 3: legacy tokens (no `issued`) escaped the maximum lifetime.
#[test]
fn legacy_expiry_beyond_the_maximum_lifetime_is_rejected() {
    let ring = ring();
    let far = issue_through_abi(
        ring,
        r#"{"login":"a","password":"b","domain":"c","expires":253402300799}"#,
        1,
    );
    let v = verify_through_abi(ring, &far, r#"{"allow_legacy":true,"now":1764120000}"#);
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["error"], "lifetime_too_long", "{v}");
    let v = verify_through_abi(
        ring,
        &far,
        r#"{"allow_legacy":true,"now":1764120000,"max_lifetime_seconds":253402300799}"#,
    );
    assert_eq!(v["valid"], true, "{v}");
    unsafe { siptoken_keyring_free(ring) };
}

/// Issue 14, item 9: a caller that only needs the claims can ask not to receive the password
/// (`"show_password": false`); the default stays as documented (shown).
#[test]
fn show_password_false_leaves_the_password_out() {
    let ring = ring();
    for legacy in [0, 1] {
        let token = issue_through_abi(ring, CLAIMS, legacy);
        let hidden = verify_through_abi(
            ring,
            &token,
            r#"{"allow_legacy":true,"show_password":false}"#,
        );
        assert_eq!(hidden["valid"], true, "{hidden}");
        assert!(hidden["claims"]["password"].is_null(), "{hidden}");
        assert_eq!(hidden["claims"]["login"], "crm1");
        assert!(!hidden.to_string().contains("p<&"), "{hidden}");
        // Exactly `siptoken verify --json` without --show-password.
        let ring_rs: KeyRing = RING.parse().unwrap();
        let cli = VerifyReport::new(
            Verifier::new(&ring_rs).allow_legacy(true).verify(&token),
            false,
        )
        .to_json();
        assert_eq!(
            hidden,
            serde_json::from_str::<serde_json::Value>(&cli).unwrap()
        );
        for shown in [
            r#"{"allow_legacy":true,"show_password":true}"#,
            r#"{"allow_legacy":true}"#,
        ] {
            let v = verify_through_abi(ring, &token, shown);
            assert_eq!(v["claims"]["password"], "p<&\"'ü", "{shown}");
        }
    }
    // Like every option: a wrong type is invalid_json, not silently ignored.
    let mut result = null_mut();
    let (rc, msg) = call(|err| {
        verify_raw(
            ring,
            "CRM:00",
            r#"{"show_password":"no"}"#,
            &mut result,
            err,
        )
    });
    assert_eq!(
        (name(rc), result.is_null()),
        ("invalid_json", true),
        "{msg:?}"
    );
    unsafe { siptoken_keyring_free(ring) };
}

#[test]
fn core_errors_come_back_as_codes_with_messages() {
    let ring = ring();
    let mut out = null_mut();
    let cases: Vec<(c_int, Case)> = vec![
        (
            SIPTOKEN_ERR_INVALID_JSON,
            Box::new(|err| issue_raw(ring, "CRM", "[1]", 0, &mut null_mut(), err)),
        ),
        (
            SIPTOKEN_ERR_MISSING_FIELD,
            Box::new(|err| issue_raw(ring, "CRM", r#"{"login":"a"}"#, 0, &mut null_mut(), err)),
        ),
        (
            SIPTOKEN_ERR_UNKNOWN_APP,
            Box::new(|err| issue_raw(ring, "NOPE", CLAIMS, 0, &mut null_mut(), err)),
        ),
        (
            SIPTOKEN_ERR_INVALID_JSON,
            Box::new(|err| {
                verify_raw(
                    ring,
                    "CRM:00",
                    r#"{"alow_legacy":true}"#,
                    &mut null_mut(),
                    err,
                )
            }),
        ),
        (
            SIPTOKEN_ERR_INVALID_KEYRING,
            Box::new(|err| unsafe {
                siptoken_keyring_from_str(c("CRM.k1=00112233").as_ptr(), &mut null_mut(), err)
            }),
        ),
        (
            SIPTOKEN_ERR_IO,
            Box::new(|err| unsafe {
                siptoken_keyring_open(c("/nonexistent/keys.conf").as_ptr(), &mut null_mut(), err)
            }),
        ),
    ];
    for (want, f) in cases {
        let (rc, msg) = call(f);
        assert_eq!(rc, want, "{msg:?}");
        let msg = msg.unwrap();
        assert!(!msg.is_empty());
        assert!(
            !msg.contains("00112233"),
            "no key material in messages: {msg}"
        );
    }
    // err may be NULL: the code alone is returned, nothing leaks.
    let rc = unsafe { siptoken_keyring_from_str(c("garbage").as_ptr(), &mut out, null_mut()) };
    assert_eq!(rc, SIPTOKEN_ERR_INVALID_KEYRING);
    assert!(out.is_null());
    unsafe { siptoken_keyring_free(ring) };
}

#[test]
fn null_arguments_are_errors_for_every_function() {
    let ring = ring();
    let (app, claims, token, path) = (c("CRM"), c(CLAIMS), c("CRM:00"), c("/dev/null"));
    let (mut ring_slot, mut slot) = (null_mut(), null_mut());
    let out_ring: *mut *mut siptoken_keyring = &mut ring_slot;
    let out: *mut *mut c_char = &mut slot;
    let cases: Vec<(&str, Case)> = vec![
        (
            "path",
            Box::new(|e| unsafe { siptoken_keyring_open(null(), out_ring, e) }),
        ),
        (
            "out",
            Box::new(|e| unsafe { siptoken_keyring_open(path.as_ptr(), null_mut(), e) }),
        ),
        (
            "text",
            Box::new(|e| unsafe { siptoken_keyring_from_str(null(), out_ring, e) }),
        ),
        (
            "out",
            Box::new(|e| unsafe { siptoken_keyring_from_str(app.as_ptr(), null_mut(), e) }),
        ),
        (
            "ring",
            Box::new(|e| unsafe {
                siptoken_issue(null(), app.as_ptr(), claims.as_ptr(), 0, out, e)
            }),
        ),
        (
            "app",
            Box::new(|e| unsafe { siptoken_issue(ring, null(), claims.as_ptr(), 0, out, e) }),
        ),
        (
            "claims_json",
            Box::new(|e| unsafe { siptoken_issue(ring, app.as_ptr(), null(), 0, out, e) }),
        ),
        (
            "token",
            Box::new(|e| unsafe {
                siptoken_issue(ring, app.as_ptr(), claims.as_ptr(), 0, null_mut(), e)
            }),
        ),
        (
            "ring",
            Box::new(|e| unsafe { siptoken_verify(null(), token.as_ptr(), null(), out, e) }),
        ),
        (
            "token",
            Box::new(|e| unsafe { siptoken_verify(ring, null(), null(), out, e) }),
        ),
        (
            "result_json",
            Box::new(|e| unsafe { siptoken_verify(ring, token.as_ptr(), null(), null_mut(), e) }),
        ),
    ];
    for (arg, f) in cases {
        let (rc, msg) = call(&f);
        assert_eq!(rc, SIPTOKEN_ERR_NULL_ARGUMENT, "{arg}");
        assert_eq!(msg.unwrap(), format!("argument `{arg}` is NULL"));
        // And without an error slot.
        assert_eq!(f(null_mut()), SIPTOKEN_ERR_NULL_ARGUMENT);
    }
    assert!(ring_slot.is_null() && slot.is_null());
    // The free functions accept NULL.
    unsafe {
        siptoken_free(null_mut());
        siptoken_keyring_free(null_mut());
        siptoken_keyring_free(ring);
    }
}

#[test]
fn invalid_utf8_is_an_error_for_every_string_argument() {
    let ring = ring();
    let bad = CString::new(vec![b'C', b'R', 0xff, b'M']).unwrap();
    let (app, claims, token) = (c("CRM"), c(CLAIMS), c("CRM:00"));
    let (mut ring_slot, mut slot) = (null_mut(), null_mut());
    let out_ring: *mut *mut siptoken_keyring = &mut ring_slot;
    let out: *mut *mut c_char = &mut slot;
    let cases: Vec<(&str, Case)> = vec![
        (
            "path",
            Box::new(|e| unsafe { siptoken_keyring_open(bad.as_ptr(), out_ring, e) }),
        ),
        (
            "text",
            Box::new(|e| unsafe { siptoken_keyring_from_str(bad.as_ptr(), out_ring, e) }),
        ),
        (
            "app",
            Box::new(|e| unsafe { siptoken_issue(ring, bad.as_ptr(), claims.as_ptr(), 0, out, e) }),
        ),
        (
            "claims_json",
            Box::new(|e| unsafe { siptoken_issue(ring, app.as_ptr(), bad.as_ptr(), 0, out, e) }),
        ),
        (
            "token",
            Box::new(|e| unsafe { siptoken_verify(ring, bad.as_ptr(), null(), out, e) }),
        ),
        (
            "options_json",
            Box::new(|e| unsafe { siptoken_verify(ring, token.as_ptr(), bad.as_ptr(), out, e) }),
        ),
    ];
    for (arg, f) in cases {
        let (rc, msg) = call(f);
        assert_eq!(rc, SIPTOKEN_ERR_INVALID_UTF8, "{arg}");
        assert_eq!(
            msg.unwrap(),
            format!("argument `{arg}` is not valid UTF-8 (invalid byte at offset 2)")
        );
    }
    assert!(ring_slot.is_null() && slot.is_null());
    unsafe { siptoken_keyring_free(ring) };
}

#[test]
fn panics_are_caught_at_the_boundary() {
    let mut err = null_mut();
    let rc = unsafe { guard(&mut err, || panic!("secret p@ss")) };
    assert_eq!(rc, SIPTOKEN_ERR_INTERNAL);
    let msg = take(err);
    assert!(msg.starts_with("internal error"), "{msg}");
    assert!(!msg.contains("p@ss"), "the payload is not shown");
    assert_eq!(
        unsafe { guard(null_mut(), || panic!("x")) },
        SIPTOKEN_ERR_INTERNAL
    );
}

#[test]
fn a_key_ring_file_opens() {
    let path: std::path::PathBuf =
        std::env::temp_dir().join(format!("siptoken-ffi-test-{}.conf", std::process::id()));
    std::fs::write(&path, RING).unwrap();
    let mut out: *mut siptoken_keyring = null_mut();
    let (rc, _) =
        call(|e| unsafe { siptoken_keyring_open(c(path.to_str().unwrap()).as_ptr(), &mut out, e) });
    std::fs::remove_file(&path).unwrap();
    assert_eq!(rc, 0);
    assert!(!out.is_null());
    unsafe { siptoken_keyring_free(out) };
}

#[test]
fn no_secret_in_error_messages() {
    let ring = ring();
    let bad_claims = [
        r#"{"login":"a","password":"SECRETPW","domain":"d","port":"99999"}"#,
        r#"{"login":"a","password":"SECRETPW","domain":"d","transport":"SECRETPW"}"#,
        r#"{"login":"a","password":"SECRETPW","domain":"d","expires":1,"issued":2}"#,
        r#"{"login":"a","password":"SECRETPW","domain":"d","ttl_seconds":"SECRETPW"}"#,
        r#"{"login":"a","password":"SECRETPW" "domain":"d"}"#,
        r#"{"login":"a","password":["SECRETPW"],"domain":"d"}"#,
        r#"{"login":"a","password":"SECRETPW","password":"SECRETPW","domain":"d"}"#,
    ];
    for claims in bad_claims {
        for legacy in [0, 1] {
            let (rc, msg) =
                call(|err| issue_raw(ring, "CRM", claims, legacy, &mut null_mut(), err));
            let msg = msg.unwrap();
            assert_ne!(rc, 0, "{claims}");
            assert!(!msg.contains("SECRETPW"), "{claims}: {msg}");
        }
    }
    let key = "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75e";
    for text in [
        format!("CRM.k1={key}"),
        format!("CRM={key}"),
        format!("CRM.k1={key}zz"),
        format!("CR M={key}"),
        key.to_owned(),
    ] {
        let (rc, msg) = call(|err| unsafe {
            siptoken_keyring_from_str(c(&text).as_ptr(), &mut null_mut(), err)
        });
        assert_eq!(rc, SIPTOKEN_ERR_INVALID_KEYRING, "{text}");
        let msg = msg.unwrap();
        assert!(!msg.contains("5ec2e7"), "key material in: {msg}");
    }
    unsafe { siptoken_keyring_free(ring) };
}
