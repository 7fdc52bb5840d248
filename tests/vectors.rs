//! Runs every test-vector file in `tests/vectors/` through the library: valid tokens verify to
//! exactly the listed claims and re-seal to exactly the listed token; invalid tokens fail with
//! exactly the listed error code.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use siptoken::format::{seal_legacy, seal_v1};
use siptoken::{KeyRing, LegacyKey, V1Key, Verifier, VerifyOptions};

#[derive(Deserialize)]
struct VectorFile {
    now: i64,
    leeway_seconds: u64,
    max_lifetime_seconds: u64,
    keyring: String,
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
}

#[derive(Deserialize)]
struct Valid {
    name: String,
    format: String,
    app: String,
    kid: Option<String>,
    key: String,
    nonce: Option<String>,
    xml: String,
    token: String,
    claims: BTreeMap<String, String>,
    /// The single-use key (`Verified::replay_key`), in siptoken.json only.
    single_use_key: Option<String>,
}

#[derive(Deserialize)]
struct Invalid {
    name: String,
    token: String,
    error: String,
    allow_legacy: bool,
}

fn vector_files() -> Vec<(String, VectorFile)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected the independent and our own vector files"
    );
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let parsed =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), parsed)
        })
        .collect()
}

fn options(file: &VectorFile, allow_legacy: bool) -> VerifyOptions {
    VerifyOptions {
        allow_legacy,
        leeway_seconds: file.leeway_seconds,
        max_lifetime_seconds: file.max_lifetime_seconds,
        now: Some(file.now),
        ..VerifyOptions::default()
    }
}

#[test]
fn valid_vectors_verify_and_reseal() {
    let mut count = 0;
    for (path, file) in vector_files() {
        let ring: KeyRing = file.keyring.parse().unwrap();
        let verifier = Verifier::with_options(&ring, options(&file, true));
        for v in &file.valid {
            let what = format!("{path}: {}", v.name);
            let got = verifier
                .verify(&v.token)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got.format().as_str(), v.format, "{what}");
            assert_eq!(got.app(), v.app, "{what}");
            assert_eq!(got.kid(), v.kid.as_deref(), "{what}");
            let claims: BTreeMap<String, String> =
                serde_json::from_value(serde_json::to_value(got.claims()).unwrap()).unwrap();
            assert_eq!(claims, v.claims, "{what}");
            if let Some(key) = &v.single_use_key {
                assert_eq!(&got.replay_key().to_string(), key, "{what}: single-use key");
            }

            let key = hex::decode(&v.key).unwrap();
            let resealed = match v.format.as_str() {
                "legacy" => seal_legacy(
                    &v.app,
                    &LegacyKey::from_bytes(&key).unwrap(),
                    v.xml.as_bytes(),
                ),
                "v1" => {
                    let nonce: [u8; 16] = hex::decode(v.nonce.as_ref().unwrap())
                        .unwrap()
                        .try_into()
                        .unwrap();
                    let kid = v.kid.as_deref().unwrap();
                    seal_v1(
                        &v.app,
                        kid,
                        &V1Key::from_bytes(&key).unwrap(),
                        &nonce,
                        v.xml.as_bytes(),
                    )
                }
                other => panic!("{what}: unknown format {other}"),
            };
            // Legacy input hex may be upper case; what we write is always lower case.
            let (app, body) = v.token.split_once(':').unwrap();
            assert_eq!(
                resealed,
                format!("{app}:{}", body.to_ascii_lowercase()),
                "{what}"
            );
            count += 1;
        }
    }
    assert!(count >= 10, "only {count} valid vectors");
}

#[test]
fn invalid_vectors_fail_with_their_code() {
    let mut codes = std::collections::BTreeSet::new();
    for (path, file) in vector_files() {
        let ring: KeyRing = file.keyring.parse().unwrap();
        for v in &file.invalid {
            let verifier = Verifier::with_options(&ring, options(&file, v.allow_legacy));
            match verifier.verify(&v.token) {
                Ok(_) => panic!("{path}: {}: accepted", v.name),
                Err(e) => assert_eq!(e.code().as_str(), v.error, "{path}: {}: {e}", v.name),
            }
            codes.insert(v.error.clone());
        }
    }
    for code in siptoken::ErrorCode::ALL.iter().filter(|c| c.is_rejection()) {
        assert!(
            codes.contains(code.as_str()),
            "no invalid vector for {code}"
        );
    }
}
