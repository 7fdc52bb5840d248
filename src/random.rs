//! Random bytes for nonces, token ids and keys.

/// `N` bytes from the operating system's CSPRNG (on wasm32, `crypto.getRandomValues`).
///
/// # Panics
/// When the operating system has no randomness to give (no `getrandom(2)` and no
/// `/dev/urandom`): a token must never be sealed with a predictable nonce or id.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the operating system's random number generator failed");
    out
}
