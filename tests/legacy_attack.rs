//! Why the legacy format must go: its attacks, run against the real verifier.
//!
//! Every legacy token of one key is XORed with the same keystream (AES-CTR, zero IV), and nothing
//! checks integrity. So:
//!
//! 1. Whoever knows the plaintext of one token (its layout is public; an operator knows their own
//!    account) recovers the keystream and can make tokens for any other account, host or expiry.
//! 2. Even without knowing the password, flipping ciphertext bits at known positions rewrites the
//!    known parts (expiry, host) — the token stays "valid" forever, or sends the credentials to
//!    another server.
//!
//! The same attempts against v1 fail with `bad_signature`. docs/security.md explains.

use siptoken::format::seal_legacy;
use siptoken::{Claims, ErrorCode, Issuer, KeyRing, LegacyKey, Verifier};

const RING: &str = "CRM=8263D535FFFFFFFF7B0F60\nCRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n";
const NOW: i64 = 1_764_120_000;

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

fn body(token: &str) -> Vec<u8> {
    hex::decode(&token[token.rfind([':', '.']).unwrap() + 1..]).unwrap()
}

/// The operator's own token, as the page receives it: the operator knows every field.
fn own_claims() -> Claims {
    Claims::builder("operator7", "my-own-sip-pass", "sip.example.org")
        .visible_name("Operator Seven, Sales Department")
        .expires(NOW + 300)
        .build()
        .unwrap()
}

/// The operator's own token in the legacy format, under [`RING`]'s legacy key.
fn own_legacy_token(ring: &KeyRing) -> String {
    Issuer::new(ring)
        .legacy()
        .issue("CRM", &own_claims())
        .unwrap()
}

/// The operator's own v1 token (issued at [`NOW`]) and the claims XML its ciphertext carries,
/// as the verifier reads it back.
fn own_v1_token_and_xml(ring: &KeyRing) -> (String, zeroize::Zeroizing<String>) {
    let v1 = Issuer::new(ring)
        .at(NOW)
        .issue("CRM", &own_claims())
        .unwrap();
    let xml = Verifier::new(ring)
        .at(NOW)
        .verify(&v1)
        .unwrap()
        .claims()
        .to_xml();
    (v1, xml)
}

#[test]
fn legacy_keystream_recovery_forges_a_token_for_another_account() {
    let ring: KeyRing = RING.parse().unwrap();
    let token = own_legacy_token(&ring);
    let known_xml = own_claims().to_xml();
    let keystream = xor(&body(&token), known_xml.as_bytes());

    // A token for the director's account, registered through the attacker's host, valid for a
    // day (the most a token without `issued` gets; tomorrow the attacker makes another) — made
    // without the key.
    let forged_xml =
        r#"<root login="director" password="guess" domain="evil.example" expires="1764206400"/>"#;
    assert!(forged_xml.len() <= keystream.len());
    let forged = format!(
        "CRM:{}",
        hex::encode(xor(forged_xml.as_bytes(), &keystream))
    );

    let legacy = Verifier::new(&ring).allow_legacy(true).at(NOW);
    let accepted = legacy
        .verify(&forged)
        .expect("the legacy verifier cannot tell");
    assert_eq!(accepted.claims().login(), "director");
    assert_eq!(accepted.claims().domain(), "evil.example");
    assert_eq!(accepted.claims().expires(), Some(NOW + 86_400));

    // The keystream is the same for every token of the key: it also matches the key itself.
    let key = LegacyKey::from_bytes(&hex::decode("8263D535FFFFFFFF7B0F60").unwrap()).unwrap();
    assert_eq!(seal_legacy("CRM", &key, forged_xml.as_bytes()), forged);

    // v1: the same recovery gives a keystream for that one nonce only, and any change breaks
    // the tag.
    let (v1, v1_xml) = own_v1_token_and_xml(&ring);
    let raw = body(&v1);
    let (nonce, rest) = raw.split_at(16);
    let ct = &rest[..rest.len() - 32];
    let ks = xor(ct, v1_xml.as_bytes());
    let mut forged_body = nonce.to_vec();
    forged_body.extend(xor(forged_xml.as_bytes(), &ks));
    forged_body.extend(&rest[rest.len() - 32..]);
    let forged_v1 = format!("CRM:v1.k1.{}", hex::encode(forged_body));
    let err = Verifier::new(&ring).at(NOW).verify(&forged_v1).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadSignature);
}

#[test]
fn legacy_bit_flips_extend_the_expiry_without_knowing_the_password() {
    let ring: KeyRing = RING.parse().unwrap();
    let token = own_legacy_token(&ring);
    let mut ct = body(&token);
    // The attacker knows where `expires="…"` is and what it says, not the password.
    let xml = own_claims().to_xml();
    let at = xml.find("expires=\"").unwrap() + "expires=\"".len();
    let old = (NOW + 300).to_string();
    let new = "2000000000"; // 2033
    assert_eq!(old.len(), new.len());
    for (i, (o, n)) in old.bytes().zip(new.bytes()).enumerate() {
        ct[at + i] ^= o ^ n;
    }
    let forged = format!("CRM:{}", hex::encode(&ct));
    // Used years after its real expiry. (A token without `issued` may expire at most max
    // lifetime + leeway after now, so the attacker writes an expiry within a day of the use.)
    let later = Verifier::new(&ring).allow_legacy(true).at(1_999_990_000);
    let accepted = later
        .verify(&forged)
        .expect("a legacy token cannot detect the flip");
    assert_eq!(accepted.claims().expires(), Some(2_000_000_000));
    assert_eq!(accepted.claims().password().expose(), "my-own-sip-pass");

    // v1 with the same flips: bad_signature.
    let (v1, v1_xml) = own_v1_token_and_xml(&ring);
    let mut raw = body(&v1);
    let at = 16 + v1_xml.find("expires=\"").unwrap() + "expires=\"".len();
    for (i, (o, n)) in old.bytes().zip(new.bytes()).enumerate() {
        raw[at + i] ^= o ^ n;
    }
    let forged = format!("CRM:v1.k1.{}", hex::encode(&raw));
    let err = Verifier::new(&ring)
        .at(1_999_990_000)
        .verify(&forged)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadSignature);
}

/// Issue 14, item 3: the lifetime was checked only against `issued`, which legacy tokens never
/// carry, so a flipped `expires` far in the future verified (and its single-use entry was kept
/// until then). Without `issued`, `expires` may now be at most max lifetime + leeway from now.
#[test]
fn legacy_bit_flips_cannot_push_the_expiry_past_the_maximum_lifetime() {
    let ring: KeyRing = RING.parse().unwrap();
    let token = own_legacy_token(&ring);
    let xml = own_claims().to_xml();
    let at = xml.find("expires=\"").unwrap() + "expires=\"".len();
    let old = (NOW + 300).to_string();
    let flip_expiry = |new: &str| {
        assert_eq!(old.len(), new.len());
        let mut ct = body(&token);
        for (i, (o, n)) in old.bytes().zip(new.bytes()).enumerate() {
            ct[at + i] ^= o ^ n;
        }
        format!("CRM:{}", hex::encode(&ct))
    };
    let legacy = Verifier::new(&ring).allow_legacy(true).at(NOW);

    // Year 2286, made without the key: refused however far the issuer's clock is off.
    let far = flip_expiry("9999999999");
    let err = legacy.verify(&far).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LifetimeTooLong, "{err}");

    // The bound is now + max lifetime (24 h) + leeway (30 s), inclusive.
    let edge = flip_expiry(&(NOW + 86_400 + 30).to_string());
    assert_eq!(
        legacy.verify(&edge).unwrap().claims().expires(),
        Some(NOW + 86_430)
    );
    let past_edge = flip_expiry(&(NOW + 86_400 + 31).to_string());
    assert_eq!(
        legacy.verify(&past_edge).unwrap_err().code(),
        ErrorCode::LifetimeTooLong
    );
}

/// Flips the ciphertext bytes of `token` (a legacy token) at `at` so that the plaintext reads
/// `new` there instead of `old`.
fn flip(token: &str, at: usize, old: &[u8], new: &[u8]) -> String {
    assert_eq!(old.len(), new.len());
    let mut ct = body(token);
    for (i, (o, n)) in old.iter().zip(new).enumerate() {
        ct[at + i] ^= o ^ n;
    }
    format!("CRM:{}", hex::encode(&ct))
}

/// Issue 14, item 2: the single-use key of a legacy token hashed its ciphertext, so flipping
/// the known space after `<root` into a tab, CR or LF gave a token with identical claims and a
/// new single-use key: each variant logged in again. Format-only variants must now share one
/// key, and so must value flips that keep the account (the expiry, the display name, an `id`).
#[test]
fn legacy_variants_of_one_account_share_the_single_use_key() {
    let ring: KeyRing = RING.parse().unwrap();
    let token = own_legacy_token(&ring);
    let xml = own_claims().to_xml();
    assert!(xml.starts_with("<root "));
    let legacy = Verifier::new(&ring).allow_legacy(true).at(NOW);
    let original = legacy.verify(&token).unwrap();

    // Format only: whitespace after `<root` and between attributes, and the quote characters.
    let mut variants = Vec::new();
    for ws in [b"\t", b"\n", b"\r"] {
        variants.push(flip(&token, 5, b" ", ws));
        let gap = xml.find(" password=").unwrap();
        variants.push(flip(&token, gap, b" ", ws));
    }
    let value = xml.find("login=\"").unwrap() + "login=".len();
    let end = value + 1 + own_claims().login().len();
    variants.push(flip(&flip(&token, value, b"\"", b"'"), end, b"\"", b"'"));
    for variant in &variants {
        assert_ne!(variant, &token);
        let v = legacy
            .verify(variant)
            .expect("a format-only variant verifies");
        assert_eq!(v.claims(), original.claims(), "the same claims");
        assert_eq!(
            v.replay_key(),
            original.replay_key(),
            "a format-only variant is the same token for single use"
        );
    }

    // Values flipped, account kept: an earlier expiry, another display name, the domain's case.
    let at = xml.find("expires=\"").unwrap() + "expires=\"".len();
    let sooner = flip(
        &token,
        at,
        (NOW + 300).to_string().as_bytes(),
        (NOW + 200).to_string().as_bytes(),
    );
    let at = xml.find("Seven").unwrap();
    let renamed = flip(&token, at, b"Seven", b"Eight");
    let at = xml.find("sip.example.org").unwrap();
    let upper = flip(&token, at, b"sip", b"SIP");
    for variant in [sooner, renamed, upper] {
        let v = legacy.verify(&variant).unwrap();
        assert_ne!(v.claims(), original.claims());
        assert_eq!(v.replay_key(), original.replay_key(), "same account");
    }

    // A legacy `id` is no better than any other value: flipping it does not make a new token.
    let with_id = Claims::builder("operator7", "my-own-sip-pass", "sip.example.org")
        .expires(NOW + 300)
        .id("00112233445566778899aabbccddeeff".parse().unwrap())
        .build()
        .unwrap();
    let token = Issuer::new(&ring).legacy().issue("CRM", &with_id).unwrap();
    let at = with_id.to_xml().find("id=\"").unwrap() + "id=\"".len();
    let other_id = flip(&token, at, b"0011", b"ffee");
    let (a, b) = (
        legacy.verify(&token).unwrap(),
        legacy.verify(&other_id).unwrap(),
    );
    assert_ne!(a.claims().id(), b.claims().id());
    assert_eq!(a.replay_key(), b.replay_key());

    // Another account (what keystream recovery forges) is another key: single use cannot stop
    // a forger, only the replay of one account's token.
    let at = xml.find("operator7").unwrap();
    let other = legacy
        .verify(&flip(
            &own_legacy_token(&ring),
            at,
            b"operator7",
            b"operator8",
        ))
        .unwrap();
    assert_ne!(other.replay_key(), original.replay_key());
}
