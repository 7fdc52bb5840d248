//! Integrity of v1 tokens and coverage of every error code.

use siptoken::json::{options_from_json, ClaimsRequest};
use siptoken::{Claims, ErrorCode, Issuer, KeyRing, Verifier};

const RING: &str = "CRM=8263D535FFFFFFFF7B0F60\nCRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\nCRM.k2=fe162ce2b39d1cd78bbb0f2bcd59ed2aedcbe4b0bf4e8675fd84581dd1eb3a35\n";
const NOW: i64 = 1_764_120_000;

fn ring() -> KeyRing {
    RING.parse().unwrap()
}

fn token(ring: &KeyRing) -> String {
    let claims = Claims::builder("crm1", "s3cr<t ü", "sip.example.org")
        .visible_name("Operator 1")
        .port(5060)
        .build()
        .unwrap();
    Issuer::new(ring).at(NOW).issue("CRM", &claims).unwrap()
}

#[test]
fn every_single_bit_flip_of_a_v1_token_is_rejected() {
    let ring = ring();
    let token = token(&ring);
    let verifier = Verifier::new(&ring).allow_legacy(true).at(NOW);
    assert!(verifier.verify(&token).is_ok());
    let mut bytes = token.clone().into_bytes();
    let mut flips = 0;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            bytes[i] ^= 1 << bit;
            if let Ok(flipped) = std::str::from_utf8(&bytes) {
                // Every flip must fail; trimming whitespace is the only change the grammar
                // forgives, and a flip never turns a token character into surrounding whitespace
                // at a position other than the ends.
                match verifier.verify(flipped) {
                    Ok(_) => {
                        let trimmed = flipped.trim_ascii();
                        assert_eq!(
                            trimmed,
                            token.trim_ascii(),
                            "flip at byte {i} bit {bit} accepted"
                        );
                        assert!(i == 0 || i == bytes.len() - 1);
                    }
                    Err(e) => assert_ne!(e.code(), ErrorCode::TooLarge),
                }
            }
            bytes[i] ^= 1 << bit;
            flips += 1;
        }
    }
    assert_eq!(flips, token.len() * 8);
}

#[test]
fn every_single_bit_flip_of_the_decoded_body_fails_the_tag() {
    let ring = ring();
    let token = token(&ring);
    let (prefix, body) = token.split_at(token.rfind('.').unwrap() + 1);
    let mut raw = hex::decode(body).unwrap();
    let verifier = Verifier::new(&ring).at(NOW);
    for i in 0..raw.len() {
        for bit in 0..8 {
            raw[i] ^= 1 << bit;
            let err = verifier
                .verify(&format!("{prefix}{}", hex::encode(&raw)))
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadSignature, "byte {i} bit {bit}");
            raw[i] ^= 1 << bit;
        }
    }
}

#[test]
fn relabelling_the_key_id_or_app_fails_the_tag() {
    let ring: KeyRing = format!(
        "{RING}OTHER.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n"
    )
    .parse()
    .unwrap();
    let claims = Claims::builder("u", "p", "d").build().unwrap();
    let token = Issuer::new(&ring)
        .kid("k1")
        .at(NOW)
        .issue("CRM", &claims)
        .unwrap();
    let v = Verifier::new(&ring).at(NOW);
    assert!(v.verify(&token).is_ok());
    for forged in [
        token.replacen("CRM:", "OTHER:", 1),
        token.replacen(".k1.", ".k2.", 1),
    ] {
        assert_eq!(
            v.verify(&forged).unwrap_err().code(),
            ErrorCode::BadSignature,
            "{forged}"
        );
    }
}

#[test]
fn every_error_code_is_produced() {
    let ring = ring();
    let good = token(&ring);
    let v = Verifier::new(&ring).allow_legacy(true).at(NOW);
    let legacy = |xml: &str| {
        siptoken::format::seal_legacy(
            "CRM",
            &siptoken::LegacyKey::from_bytes(&hex::decode("8263D535FFFFFFFF7B0F60").unwrap())
                .unwrap(),
            xml.as_bytes(),
        )
    };
    let code = |r: Result<siptoken::Verified, siptoken::Error>| r.unwrap_err().code();
    let mut seen = std::collections::BTreeSet::new();
    let mut check = |got: ErrorCode, want: ErrorCode| {
        assert_eq!(got, want);
        seen.insert(want.as_str());
    };
    check(code(v.verify("CRM")), ErrorCode::Malformed);
    check(
        code(v.verify(&good.replacen("CRM", "NOPE", 1))),
        ErrorCode::UnknownApp,
    );
    check(
        code(v.verify(&good.replacen(".k1.", ".k7.", 1).replacen(".k2.", ".k7.", 1))),
        ErrorCode::UnknownKey,
    );
    let mut bad = good.clone();
    bad.pop();
    bad.push('0');
    if bad == good {
        bad.pop();
        bad.push('1');
    }
    check(code(v.verify(&bad)), ErrorCode::BadSignature);
    check(
        code(Verifier::new(&ring).verify("CRM:00")),
        ErrorCode::LegacyDisabled,
    );
    check(code(v.verify(&legacy("<root"))), ErrorCode::InvalidXml);
    check(
        code(v.verify(&legacy(r#"<root login="u" password="p"/>"#))),
        ErrorCode::MissingField,
    );
    check(
        code(v.verify(&legacy(
            r#"<root login="u" password="p" domain="d" port="0"/>"#,
        ))),
        ErrorCode::InvalidField,
    );
    check(
        code(Verifier::new(&ring).at(NOW + 301 + 30).verify(&good)),
        ErrorCode::Expired,
    );
    check(
        code(Verifier::new(&ring).at(NOW - 31).verify(&good)),
        ErrorCode::NotYetValid,
    );
    let long = Claims::builder("u", "p", "d")
        .expires(NOW + 86_401)
        .build()
        .unwrap();
    let long = Issuer::new(&ring).at(NOW).issue("CRM", &long).unwrap();
    check(
        code(Verifier::new(&ring).at(NOW).verify(&long)),
        ErrorCode::LifetimeTooLong,
    );
    check(code(v.verify(&"0".repeat(8193))), ErrorCode::TooLarge);
    let huge = Claims::builder("u", "x".repeat(5000), "d").build().unwrap();
    check(
        Issuer::new(&ring).issue("CRM", &huge).unwrap_err().code(),
        ErrorCode::TooLarge,
    );
    check(
        "CRM=zz".parse::<KeyRing>().unwrap_err().code(),
        ErrorCode::InvalidKeyring,
    );
    check(
        ClaimsRequest::from_json("{").unwrap_err().code(),
        ErrorCode::InvalidJson,
    );
    check(
        options_from_json(r#"{"leeway": 5}"#).unwrap_err().code(),
        ErrorCode::InvalidJson,
    );
    check(
        KeyRing::open("/nonexistent/keys.conf").unwrap_err().code(),
        ErrorCode::Io,
    );
    for c in ErrorCode::ALL {
        assert!(seen.contains(c.as_str()), "{c} not produced");
        assert_eq!(ErrorCode::from_name(c.as_str()), Some(c));
    }
}

#[test]
fn legacy_single_use_key_ignores_hex_case() {
    let ring = ring();
    let claims = Claims::builder("u", "p", "d").build().unwrap();
    let t = Issuer::new(&ring)
        .legacy()
        .at(NOW)
        .issue("CRM", &claims)
        .unwrap();
    let upper = format!("CRM:{}", t[4..].to_ascii_uppercase());
    let v = Verifier::new(&ring).allow_legacy(true).at(NOW);
    assert_eq!(
        v.verify(&t).unwrap().replay_key(),
        v.verify(&upper).unwrap().replay_key()
    );
    let v1 = Issuer::new(&ring).at(NOW).issue("CRM", &claims).unwrap();
    let verified = v.verify(&v1).unwrap();
    assert_eq!(Some(verified.replay_key()), verified.claims().id());
}

/// Issue 14, item 13: leeway and maximum lifetime come from JSON, command lines and config
/// files as u64; the verifier saturates every sum instead of wrapping or panicking (the tests
/// run with overflow checks on), at both ends of the clock.
#[test]
fn huge_leeway_and_lifetime_saturate() {
    use siptoken::VerifyOptions;
    let ring = ring();
    let far = Claims::builder("u", "p", "d")
        .expires(siptoken::claims::MAX_UNIX_TIME)
        .build()
        .unwrap();
    let legacy_far = Issuer::new(&ring).legacy().issue("CRM", &far).unwrap();
    let v1_far = Issuer::new(&ring).at(0).issue("CRM", &far).unwrap();
    let old = Claims::builder("u", "p", "d").expires(0).build().unwrap();
    let legacy_old = Issuer::new(&ring).legacy().issue("CRM", &old).unwrap();
    for now in [-1, 0, NOW, i64::MAX] {
        let huge = VerifyOptions {
            allow_legacy: true,
            leeway_seconds: u64::MAX,
            max_lifetime_seconds: u64::MAX,
            now: Some(now),
            ..VerifyOptions::default()
        };
        let v = Verifier::with_options(&ring, huge);
        for token in [&legacy_far, &v1_far, &legacy_old] {
            assert!(v.verify(token).is_ok(), "now {now}");
        }
    }
    let strict = VerifyOptions {
        allow_legacy: true,
        leeway_seconds: 0,
        max_lifetime_seconds: 0,
        now: Some(NOW),
        ..VerifyOptions::default()
    };
    let v = Verifier::with_options(&ring, strict);
    for (token, error) in [
        (&legacy_far, ErrorCode::LifetimeTooLong),
        (&v1_far, ErrorCode::LifetimeTooLong),
        (&legacy_old, ErrorCode::Expired),
    ] {
        assert_eq!(v.verify(token).unwrap_err().code(), error);
    }
}
