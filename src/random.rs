//! Random bytes for nonces, token ids and keys.

use rand::Rng;

/// `N` bytes from the thread-local CSPRNG, which the operating system seeds (and on wasm32,
/// `crypto.getRandomValues`).
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rng().fill_bytes(&mut out);
    out
}
