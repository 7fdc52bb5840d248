//! The accounts of a load run: gateway account `i` (`gw000042`), sipp account `i` (`sp000042`),
//! their shared password, the v1 token that logs gateway account `i` in, and sipp's injection
//! file. Shared by the load tools (`#[path]` module).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use siptoken::{Claims, Issuer, Transport};

use super::kamailio::DOMAIN;

pub fn gw_user(i: usize) -> String {
    format!("gw{i:06}")
}

pub fn sipp_user(i: usize) -> String {
    format!("sp{i:06}")
}

pub fn password(i: usize) -> String {
    format!("pw{:016x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// (user, password) of the `n` gateway and `n` sipp accounts, for Kamailio.
pub fn users(n: usize) -> Vec<(String, String)> {
    (0..n)
        .flat_map(|i| [(gw_user(i), password(i)), (sipp_user(i), password(i))])
        .collect()
}

/// A v1 token for gateway account `i` at Kamailio's port.
pub fn token(issuer: &Issuer<'_>, i: usize, port: u16) -> String {
    let claims = Claims::builder(gw_user(i), password(i), DOMAIN)
        .outbound_proxy("127.0.0.1")
        .port(port)
        .transport(Transport::Udp)
        .build()
        .unwrap();
    issuer.issue("CRM", &claims).unwrap()
}

/// Writes sipp's injection file (`-inf`) with the `n` sipp accounts, `user;password` in order;
/// returns its path.
pub fn write_sipp_users(dir: &Path, n: usize) -> PathBuf {
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 0..n {
        csv.push_str(&format!("{};{}\n", sipp_user(i), password(i)));
    }
    let path = dir.join("users.csv");
    std::fs::write(&path, csv).unwrap();
    path
}
