//! The digest answer leaves no copy of the SIP password, nor of HA1 (which is as good as the
//! password for its realm), in freed heap memory (issue 14, item 9).
//!
//! A global allocator watches every block freed while a digest is computed: a block that
//! still holds the password or HA1 when it is freed is a copy that nobody wiped. The digest
//! module is compiled into this test binary (it is private to the gateway), so the allocator
//! sees exactly its allocations.

#[allow(dead_code)]
#[path = "../src/sip/digest.rs"]
mod digest;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use digest::{Algorithm, Answer, Challenge};

/// A password no other test allocates.
const PASSWORD: &str = "canary-pw-7Qx2mZ9rTb4L";

/// Whether frees are being watched.
static WATCHING: AtomicBool = AtomicBool::new(false);
/// Freed blocks that still held the password or HA1.
static UNWIPED: AtomicUsize = AtomicUsize::new(0);
/// HA1 of the current case, lower-case hex (set before watching starts).
static HA1: OnceLock<Mutex<[u8; 64]>> = OnceLock::new();
static HA1_LEN: AtomicUsize = AtomicUsize::new(0);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

struct Watcher;

// SAFETY: every call is forwarded to the system allocator unchanged; `dealloc` only reads the
// block (valid for `layout.size()` bytes until it is passed on) before freeing it.
unsafe impl GlobalAlloc for Watcher {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WATCHING.load(Ordering::SeqCst) {
            // SAFETY: `ptr` is a live block of `layout.size()` bytes (the caller's contract).
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            let ha1_len = HA1_LEN.load(Ordering::SeqCst);
            // try_lock: never block inside the allocator; the lock is only held to set HA1.
            let ha1_seen = HA1
                .get()
                .and_then(|m| m.try_lock().ok())
                .is_some_and(|h| contains(block, &h[..ha1_len]));
            if contains(block, PASSWORD.as_bytes()) || ha1_seen {
                UNWIPED.fetch_add(1, Ordering::SeqCst);
            }
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watcher = Watcher;

#[test]
fn no_unwiped_copy_of_the_password_or_ha1() {
    let lock = HA1.get_or_init(|| Mutex::new([0; 64]));
    let cases = [
        "MD5",
        "MD5-sess",
        "SHA-256",
        "SHA-256-sess",
        "SHA-512-256",
        "SHA-512-256-sess",
    ];
    for algorithm in cases {
        for qop in ["", ", qop=\"auth\"", ", qop=\"auth-int\""] {
            let header =
                format!("Digest realm=\"sip.test\", nonce=\"n0nce\", algorithm={algorithm}{qop}");
            let challenge = Challenge::parse(&header).unwrap();
            let answer = Answer {
                username: "crm1",
                password: PASSWORD,
                method: "REGISTER",
                uri: "sip:sip.test",
                cnonce: "c0ffee",
                nc: 1,
            };
            // HA1 = H(user:realm:password), computed independently (RFC 7616 §3.4.2).
            let ha1 = independent_ha1(Algorithm::parse(algorithm).unwrap(), "crm1:sip.test:");
            {
                let mut h = lock.lock().unwrap();
                h[..ha1.len()].copy_from_slice(ha1.as_bytes());
            }
            HA1_LEN.store(ha1.len(), Ordering::SeqCst);

            WATCHING.store(true, Ordering::SeqCst);
            let header = digest::authorization(&challenge, &answer);
            let response = digest::response(&challenge, &answer);
            WATCHING.store(false, Ordering::SeqCst);

            assert!(header.contains(&response));
            assert!(!header.contains(PASSWORD) && !header.contains(ha1.as_str()));
            assert_eq!(
                UNWIPED.load(Ordering::SeqCst),
                0,
                "{algorithm}{qop}: a freed block still held the password or HA1"
            );
        }
    }
}

/// HA1 in hex, hashed with the RustCrypto crates directly (its hex is on the stack, so the
/// watcher never sees it freed).
fn independent_ha1(algorithm: Algorithm, user_realm: &str) -> HexBuf {
    use sha2::Digest as _;
    fn hex_of(bytes: &[u8]) -> HexBuf {
        let mut out = HexBuf([0; 128], bytes.len() * 2);
        hex::encode_to_slice(bytes, &mut out.0[..bytes.len() * 2]).unwrap();
        out
    }
    let input = [user_realm.as_bytes(), PASSWORD.as_bytes()];
    match algorithm {
        Algorithm::Md5 | Algorithm::Md5Sess => hex_of(
            &md5::Md5::new()
                .chain_update(input[0])
                .chain_update(input[1])
                .finalize(),
        ),
        Algorithm::Sha256 | Algorithm::Sha256Sess => hex_of(
            &sha2::Sha256::new()
                .chain_update(input[0])
                .chain_update(input[1])
                .finalize(),
        ),
        Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex_of(
            &sha2::Sha512_256::new()
                .chain_update(input[0])
                .chain_update(input[1])
                .finalize(),
        ),
    }
}

/// Hex digits on the stack.
struct HexBuf([u8; 128], usize);

impl HexBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.0[..self.1]
    }
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap()
    }
    fn len(&self) -> usize {
        self.1
    }
}
