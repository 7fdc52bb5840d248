//! Property tests: any claims round-trip; no input makes the verifier panic.

use proptest::prelude::*;
use siptoken::{Claims, Issuer, KeyRing, LegacyKey, Transport, Verifier};

const RING: &str = "CRM=8263D535FFFFFFFF7B0F60\nCRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n";
const NOW: i64 = 1_764_120_000;

/// Text XML can carry: any Unicode scalar except the control characters XML 1.0 forbids.
fn xml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..40).prop_map(|chars| {
        chars
            .into_iter()
            .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..))
            .collect()
    })
}

fn non_empty_text() -> impl Strategy<Value = String> {
    xml_text().prop_map(|s| if s.is_empty() { "x".to_owned() } else { s })
}

prop_compose! {
    fn arb_claims()(
        login in non_empty_text(),
        password in xml_text(),
        domain in non_empty_text(),
        auth in prop::option::of(non_empty_text()),
        proxy in prop::option::of(non_empty_text()),
        port in prop::option::of(1u16..),
        visible in prop::option::of(xml_text()),
        transport in prop::option::of(prop_oneof![Just(Transport::Udp), Just(Transport::Tcp), Just(Transport::Tls)]),
        registered in prop::option::of(any::<bool>()),
        ttl in 1i64..86_400,
        extra in prop::collection::btree_map("x-[a-z0-9._-]{0,10}", xml_text(), 0..3),
    ) -> Claims {
        let mut b = Claims::builder(login, password, domain).expires(NOW + ttl);
        if let Some(v) = auth { b = b.auth_name(v); }
        if let Some(v) = proxy { b = b.outbound_proxy(v); }
        if let Some(v) = port { b = b.port(v); }
        if let Some(v) = visible { b = b.visible_name(v); }
        if let Some(v) = transport { b = b.transport(v); }
        if let Some(v) = registered { b = b.registered(v); }
        for (k, v) in extra { b = b.extra(k, v); }
        b.build().unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn claims_round_trip_through_both_formats(claims in arb_claims(), legacy in any::<bool>()) {
        let ring: KeyRing = RING.parse().unwrap();
        let mut issuer = Issuer::new(&ring).at(NOW);
        if legacy { issuer = issuer.legacy(); }
        let token = issuer.issue("CRM", &claims).unwrap();
        let got = Verifier::new(&ring).allow_legacy(true).at(NOW).verify(&token).unwrap();
        let back = got.into_claims();
        // v1 adds issued and id; everything else must be identical.
        prop_assert_eq!(back.login(), claims.login());
        prop_assert_eq!(back.password(), claims.password());
        prop_assert_eq!(back.domain(), claims.domain());
        prop_assert_eq!(back.authentication_name(), claims.authentication_name());
        prop_assert_eq!(back.outbound_proxy(), claims.outbound_proxy());
        prop_assert_eq!(back.port(), claims.port());
        prop_assert_eq!(back.visible_name(), claims.visible_name());
        prop_assert_eq!(back.transport(), claims.transport());
        prop_assert_eq!(back.registered(), claims.registered());
        prop_assert_eq!(back.expires(), claims.expires());
        prop_assert_eq!(back.extra(), claims.extra());
        // And the serde form round-trips too.
        let json = serde_json::to_string(&back).unwrap();
        let again: Claims = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(again, back);
    }

    #[test]
    fn arbitrary_strings_never_panic_the_verifier(s in ".{0,300}") {
        let ring: KeyRing = RING.parse().unwrap();
        let _ = Verifier::new(&ring).allow_legacy(true).at(NOW).verify(&s);
        let _ = siptoken::inspect(&s);
    }

    #[test]
    fn arbitrary_bodies_never_panic_the_verifier(body in prop::collection::vec(any::<u8>(), 0..300), v1 in any::<bool>()) {
        let ring: KeyRing = RING.parse().unwrap();
        let token = if v1 { format!("CRM:v1.k1.{}", hex::encode(&body)) } else { format!("CRM:{}", hex::encode(&body)) };
        let _ = Verifier::new(&ring).allow_legacy(true).at(NOW).verify(&token);
    }

    /// The legacy format lets a test choose the plaintext exactly, so arbitrary bytes reach the
    /// XML parser and the claims checks.
    #[test]
    fn arbitrary_plaintexts_never_panic_the_claims_parser(xml in prop::collection::vec(any::<u8>(), 0..400)) {
        let ring: KeyRing = RING.parse().unwrap();
        let key = LegacyKey::from_bytes(&hex::decode("8263D535FFFFFFFF7B0F60").unwrap()).unwrap();
        let token = siptoken::format::seal_legacy("CRM", &key, &xml);
        let _ = Verifier::new(&ring).allow_legacy(true).at(NOW).verify(&token);
    }

    #[test]
    fn xml_shaped_plaintexts_never_panic(attrs in prop::collection::vec(("[a-zA-Z_:][a-zA-Z0-9:._-]{0,8}", "[^\"]{0,12}"), 0..6), tail in "[<>/&;#a-z!? \"'-]{0,12}") {
        let ring: KeyRing = RING.parse().unwrap();
        let key = LegacyKey::from_bytes(&hex::decode("8263D535FFFFFFFF7B0F60").unwrap()).unwrap();
        let mut xml = String::from("<root");
        for (k, v) in attrs { xml.push_str(&format!(" {k}=\"{v}\"")); }
        xml.push_str(&tail);
        let token = siptoken::format::seal_legacy("CRM", &key, xml.as_bytes());
        let _ = Verifier::new(&ring).allow_legacy(true).at(NOW).verify(&token);
    }

    #[test]
    fn arbitrary_key_rings_never_panic(text in "[A-Za-z0-9_.=# \t\n-]{0,200}") {
        let _ = text.parse::<KeyRing>();
    }
}
