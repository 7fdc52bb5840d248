//! The fixture both token benchmarks measure: one key ring and a realistic account.

use siptoken::{Claims, Issuer, KeyRing, Transport, Verifier};

/// A legacy and a v1 key for the application `CRM`.
pub const RING: &str = "CRM=8263D535FFFFFFFF7B0F60\nCRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n";
/// The pinned clock of the benchmarks.
pub const NOW: i64 = 1_764_120_000;

/// A realistic account: every common attribute, a 16-character password with escapes
/// (332 bytes of XML with v1's issued and id).
pub fn claims() -> Claims {
    Claims::builder(
        "operator0042",
        "Xk8#p<q&Lz2!9wRt",
        "sip.example-telecom.org",
    )
    .auth_name("operator0042")
    .outbound_proxy("proxy1.example-telecom.org")
    .port(5060)
    .visible_name("Operator 42 (Sales)")
    .transport(Transport::Udp)
    .registered(true)
    .build()
    .unwrap()
}

/// What both benchmarks issue and verify with, pinned at [`NOW`]: [`claims`], a v1 and a legacy
/// issuer over `ring`, a token of each, and a verifier accepting both.
pub struct Fixture<'k> {
    pub claims: Claims,
    pub v1_issuer: Issuer<'k>,
    pub legacy_issuer: Issuer<'k>,
    pub v1: String,
    pub legacy: String,
    pub verifier: Verifier<'k>,
}

impl<'k> Fixture<'k> {
    /// The fixture over `ring` (parsed from [`RING`]).
    pub fn new(ring: &'k KeyRing) -> Fixture<'k> {
        let claims = claims();
        let v1_issuer = Issuer::new(ring).at(NOW);
        let legacy_issuer = Issuer::new(ring).legacy().at(NOW);
        let v1 = v1_issuer.issue("CRM", &claims).unwrap();
        let legacy = legacy_issuer.issue("CRM", &claims).unwrap();
        Fixture {
            claims,
            v1_issuer,
            legacy_issuer,
            v1,
            legacy,
            verifier: Verifier::new(ring).allow_legacy(true).at(NOW),
        }
    }

    /// The sizes of the claims' XML and of both tokens, for the report.
    pub fn sizes(&self) -> String {
        format!(
            "claims XML {} bytes, v1 token {} bytes, legacy token {} bytes",
            siptoken::inspect(&self.v1).unwrap().claims_len,
            self.v1.len(),
            self.legacy.len()
        )
    }
}
