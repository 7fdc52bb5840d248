//! Issue and verify, legacy and v1, with a realistic token (~300 bytes of XML).
//!
//! Run: `cargo bench --bench tokens` (targets on one core: ≥ 1 M legacy verifications/s,
//! ≥ 500 k v1 issues and verifications/s). Also measures the parts (hex, AES-CTR, HMAC, XML) so
//! the report can say where the time goes.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
mod common;

use common::{Fixture, RING};
use siptoken::KeyRing;

fn bench(c: &mut Criterion) {
    let ring: KeyRing = RING.parse().unwrap();
    let f = Fixture::new(&ring);
    eprintln!("{}", f.sizes());

    let mut g = c.benchmark_group("tokens");
    g.throughput(Throughput::Elements(1));
    g.bench_function("issue_v1", |b| {
        b.iter(|| {
            f.v1_issuer
                .issue(black_box("CRM"), black_box(&f.claims))
                .unwrap()
        })
    });
    g.bench_function("issue_legacy", |b| {
        b.iter(|| {
            f.legacy_issuer
                .issue(black_box("CRM"), black_box(&f.claims))
                .unwrap()
        })
    });
    g.bench_function("verify_v1", |b| {
        b.iter(|| f.verifier.verify(black_box(&f.v1)).unwrap())
    });
    g.bench_function("verify_legacy", |b| {
        b.iter(|| f.verifier.verify(black_box(&f.legacy)).unwrap())
    });
    g.finish();

    // The parts, to see what share of a verification each one is.
    let xml = f.claims.to_xml();
    let body = hex::decode(&f.legacy[4..]).unwrap();
    let mut p = c.benchmark_group("parts");
    p.bench_function("hex_decode_body", |b| {
        let mut out = vec![0u8; body.len()];
        b.iter(|| hex::decode_to_slice(black_box(&f.legacy[4..]), &mut out).unwrap())
    });
    p.bench_function("hex_encode_body", |b| {
        let mut out = vec![0u8; body.len() * 2];
        b.iter(|| hex::encode_to_slice(black_box(&body), &mut out).unwrap())
    });
    p.bench_function("aes_ctr_xml", |b| {
        use aes::cipher::{KeyIvInit, StreamCipher};
        let mut buf = xml.as_bytes().to_vec();
        b.iter(|| {
            ctr::Ctr128BE::<aes::Aes128>::new(&[7u8; 16].into(), &[0u8; 16].into())
                .apply_keystream(black_box(&mut buf))
        })
    });
    p.bench_function("hmac_sha256_body", |b| {
        use hmac::{KeyInit, Mac};
        b.iter(|| {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[7u8; 16]).unwrap();
            mac.update(black_box(&body));
            mac.finalize()
        })
    });
    p.bench_function("claims_to_xml", |b| {
        b.iter(|| black_box(&f.claims).to_xml())
    });
    p.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
