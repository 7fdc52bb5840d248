//! Key ring text: parse errors, never panics; errors never quote the key material.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = text.parse::<siptoken::KeyRing>() {
        let message = e.to_string();
        // No key (the hex after '=' on a line) may be echoed. Names may be.
        for line in text.lines() {
            if let Some((name, value)) = line.split_once('=') {
                let value = value.trim();
                if value.len() >= 8 && value.bytes().all(|b| b.is_ascii_hexdigit()) && !name.contains(value) {
                    assert!(!message.contains(value), "{message}");
                }
            }
        }
    }
});
