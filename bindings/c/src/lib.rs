//! # libsiptoken: the C ABI of siptoken
//!
//! A thin layer over the `siptoken` crate that PHP (FFI), Python (ctypes) and C programs load as
//! `libsiptoken.so` or link as `libsiptoken.a`. The contract (names, codes, ownership, threads)
//! is written down in `docs/c-abi.md`; the header `include/siptoken.h` is generated from this file
//! by cbindgen, and a unit test fails when the committed header is stale
//! (`SIPTOKEN_BLESS=1 cargo test -p siptoken-ffi header` rewrites it).
//!
//! Rules every function follows:
//! - it returns [`SIPTOKEN_OK`] (0) or a positive error code; core codes are the numbers of
//!   `siptoken::ErrorCode`, the ABI adds [`SIPTOKEN_ERR_NULL_ARGUMENT`],
//!   [`SIPTOKEN_ERR_INVALID_UTF8`] and [`SIPTOKEN_ERR_INTERNAL`] after them;
//! - outputs are set to NULL first and stay NULL on failure; on failure `*err` (when `err` is not
//!   NULL) receives a message, which the caller frees with [`siptoken_free`];
//! - NULL and invalid UTF-8 arguments are errors, never crashes, and no panic crosses the
//!   boundary: it is caught and reported as [`SIPTOKEN_ERR_INTERNAL`], without its payload;
//! - every returned string has exactly one owner, the caller, who frees it with
//!   [`siptoken_free`], which zeroizes it first (a verification result holds the SIP password).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use siptoken_core::json::{report_options_from_json, ClaimsRequest, ReportOptions, VerifyReport};
use siptoken_core::{ErrorCode, Issuer, KeyRing, Verifier, DEFAULT_TTL};
use zeroize::Zeroize;

#[cfg(test)]
mod tests;

/// Success.
pub const SIPTOKEN_OK: c_int = 0;
/// The token is not `APP:HEX` or `APP:v1.KID.HEX` (core code `malformed`).
pub const SIPTOKEN_ERR_MALFORMED: c_int = 1;
/// No key at all for the token's application (core code `unknown_app`).
pub const SIPTOKEN_ERR_UNKNOWN_APP: c_int = 2;
/// The application has no key of the kind or key id asked for (core code `unknown_key`).
pub const SIPTOKEN_ERR_UNKNOWN_KEY: c_int = 3;
/// The v1 HMAC tag does not match (core code `bad_signature`).
pub const SIPTOKEN_ERR_BAD_SIGNATURE: c_int = 4;
/// A legacy token while legacy acceptance is off (core code `legacy_disabled`).
pub const SIPTOKEN_ERR_LEGACY_DISABLED: c_int = 5;
/// The decrypted claims are not the allowed XML (core code `invalid_xml`).
pub const SIPTOKEN_ERR_INVALID_XML: c_int = 6;
/// A required claim is absent (core code `missing_field`).
pub const SIPTOKEN_ERR_MISSING_FIELD: c_int = 7;
/// A claim has a value outside its domain (core code `invalid_field`).
pub const SIPTOKEN_ERR_INVALID_FIELD: c_int = 8;
/// The token has expired (core code `expired`).
pub const SIPTOKEN_ERR_EXPIRED: c_int = 9;
/// The token was issued in the future (core code `not_yet_valid`).
pub const SIPTOKEN_ERR_NOT_YET_VALID: c_int = 10;
/// `expires - issued` exceeds the maximum lifetime (core code `lifetime_too_long`).
pub const SIPTOKEN_ERR_LIFETIME_TOO_LONG: c_int = 11;
/// The token (or an issued one) exceeds 8 KiB (core code `too_large`).
pub const SIPTOKEN_ERR_TOO_LARGE: c_int = 12;
/// The key ring text or file could not be parsed (core code `invalid_keyring`).
pub const SIPTOKEN_ERR_INVALID_KEYRING: c_int = 13;
/// `claims_json` or `options_json` could not be parsed (core code `invalid_json`).
pub const SIPTOKEN_ERR_INVALID_JSON: c_int = 14;
/// The key ring file could not be read (core code `io`).
pub const SIPTOKEN_ERR_IO: c_int = 15;
/// A required pointer argument is NULL (ABI code `null_argument`).
pub const SIPTOKEN_ERR_NULL_ARGUMENT: c_int = 16;
/// A string argument is not valid UTF-8 (ABI code `invalid_utf8`).
pub const SIPTOKEN_ERR_INVALID_UTF8: c_int = 17;
/// A bug: a panic was caught at the boundary (ABI code `internal`).
pub const SIPTOKEN_ERR_INTERNAL: c_int = 18;

/// The codes the ABI adds after the core's, with their stable names. Together with
/// `siptoken::ErrorCode` (codes 1 to 15) this is the one table of error codes.
const ABI_CODES: [(c_int, &str); 3] = [
    (SIPTOKEN_ERR_NULL_ARGUMENT, "null_argument"),
    (SIPTOKEN_ERR_INVALID_UTF8, "invalid_utf8"),
    (SIPTOKEN_ERR_INTERNAL, "internal"),
];

/// An opaque, immutable key ring. Made by [`siptoken_keyring_open`] or
/// [`siptoken_keyring_from_str`], released by [`siptoken_keyring_free`], which zeroizes the
/// keys. Safe to share between threads: every function takes it by `const` pointer and never
/// changes it.
#[allow(non_camel_case_types)]
pub struct siptoken_keyring {
    ring: KeyRing,
}

/// An error on its way to the caller: a code and a message (never holding secrets).
#[derive(Debug)]
struct AbiError {
    code: c_int,
    message: String,
}

impl From<siptoken_core::Error> for AbiError {
    fn from(e: siptoken_core::Error) -> AbiError {
        AbiError {
            code: e.code().number(),
            message: e.to_string(),
        }
    }
}

fn null_argument(name: &str) -> AbiError {
    AbiError {
        code: SIPTOKEN_ERR_NULL_ARGUMENT,
        message: format!("argument `{name}` is NULL"),
    }
}

/// Copies `s` into a NUL-terminated string owned by the caller, and zeroizes `s`. The buffer is
/// sized exactly, so no unzeroized copy is left behind by a reallocation.
fn into_c_string(mut s: String) -> *mut c_char {
    let mut bytes = Vec::with_capacity(s.len() + 1);
    bytes.extend(s.bytes().map(|b| if b == 0 { b'?' } else { b }));
    s.zeroize();
    // No interior NUL: replaced above (tokens and JSON never hold one; messages should not).
    CString::new(bytes)
        .map(CString::into_raw)
        .unwrap_or(std::ptr::null_mut())
}

/// Reads a required string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn str_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str, AbiError> {
    if p.is_null() {
        return Err(null_argument(name));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(p) };
    bytes.to_str().map_err(|e| AbiError {
        code: SIPTOKEN_ERR_INVALID_UTF8,
        message: format!(
            "argument `{name}` is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ),
    })
}

/// Clears an output pointer (when not NULL) so that it is NULL unless the call succeeds.
///
/// # Safety
/// `out` is NULL or valid for writing one pointer.
unsafe fn clear<T>(out: *mut *mut T) {
    if !out.is_null() {
        // SAFETY: valid for writes by the caller's contract.
        unsafe { out.write(std::ptr::null_mut()) };
    }
}

/// Runs the body of an ABI function: catches panics, turns errors into a code and a message in
/// `*err`.
///
/// # Safety
/// `err` is NULL or valid for writing one pointer.
unsafe fn guard(err: *mut *mut c_char, body: impl FnOnce() -> Result<(), AbiError>) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { clear(err) };
    let e = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return SIPTOKEN_OK,
        Ok(Err(e)) => e,
        // The payload is not shown: it could, in principle, quote data.
        Err(_) => AbiError {
            code: SIPTOKEN_ERR_INTERNAL,
            message: "internal error: a panic was caught at the siptoken C ABI boundary \
                      (this is a bug in siptoken)"
                .to_owned(),
        },
    };
    if !err.is_null() {
        // SAFETY: valid for writes by the caller's contract.
        unsafe { err.write(into_c_string(e.message)) };
    }
    e.code
}

/// Reads a key ring file (`NAME=HEX` lines, see docs/token-format.md) into `*out`.
///
/// Returns 0, or `null_argument`, `invalid_utf8`, `io` (the file could not be read; the message
/// names the path) or `invalid_keyring` (the message names the line, never key material).
/// Unlike the CLI, the library prints no warning about the file's permissions.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` and `err` are NULL or valid for writing one
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn siptoken_keyring_open(
    path: *const c_char,
    out: *mut *mut siptoken_keyring,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract, forwarded.
    unsafe { new_keyring(path, "path", out, err, |path| KeyRing::open(path)) }
}

/// Parses key ring text (the content of a key ring file) into `*out`.
///
/// Returns 0, or `null_argument`, `invalid_utf8` or `invalid_keyring`.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string; `out` and `err` are NULL or valid for writing one
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn siptoken_keyring_from_str(
    text: *const c_char,
    out: *mut *mut siptoken_keyring,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract, forwarded.
    unsafe { new_keyring(text, "text", out, err, str::parse) }
}

/// The body of both key ring constructors: checks `arg` (named `name` in errors) and `out`,
/// makes the ring from the string with `make`, and hands it to the caller through `out`.
///
/// # Safety
/// As for [`siptoken_keyring_open`], with `arg` in place of `path`.
unsafe fn new_keyring(
    arg: *const c_char,
    name: &str,
    out: *mut *mut siptoken_keyring,
    err: *mut *mut c_char,
    make: impl FnOnce(&str) -> Result<KeyRing, siptoken_core::Error>,
) -> c_int {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        clear(out);
        guard(err, || {
            let arg = str_arg(arg, name)?;
            if out.is_null() {
                return Err(null_argument("out"));
            }
            let ring = make(arg)?;
            out.write(Box::into_raw(Box::new(siptoken_keyring { ring })));
            Ok(())
        })
    }
}

/// Releases a key ring and zeroizes its keys. NULL is allowed and does nothing. The ring must
/// not be in use by another thread, nor used afterwards.
///
/// # Safety
/// `ring` is NULL or a pointer returned by `siptoken_keyring_open` or
/// `siptoken_keyring_from_str` that has not been freed yet.
#[no_mangle]
pub unsafe extern "C" fn siptoken_keyring_free(ring: *mut siptoken_keyring) {
    if ring.is_null() {
        return;
    }
    // Dropping the key ring zeroizes every key (the core's key types zeroize on drop). A panic
    // in a destructor must not unwind into C: it is swallowed (nothing to report it to).
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: made by Box::into_raw in this library, not freed yet (caller's contract).
        drop(unsafe { Box::from_raw(ring) });
    }));
}

/// Issues a token for `app` into `*token`.
///
/// `claims_json` is a JSON object keyed by the XML attribute names (`login`, `password`,
/// `domain`, `authenticationName`, `outboundProxy`, `port`, `visibleName`, `transport`,
/// `registered`, `expires`, `issued`, `id`, or any other name), with string or number values.
/// Without `expires`, `ttl_seconds` (default 300) sets it. For v1, `issued` and `id` are filled
/// in. `legacy` non-zero issues a legacy (Web Call Server) token instead of v1.
///
/// Returns 0, or `null_argument`, `invalid_utf8`, `invalid_json`, `missing_field`,
/// `invalid_field`, `unknown_app`, `unknown_key` or `too_large`.
///
/// # Safety
/// `ring` is NULL or a live key ring; `app` and `claims_json` are NULL or NUL-terminated
/// strings; `token` and `err` are NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn siptoken_issue(
    ring: *const siptoken_keyring,
    app: *const c_char,
    claims_json: *const c_char,
    legacy: c_int,
    token: *mut *mut c_char,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        clear(token);
        guard(err, || {
            let ring = ring.as_ref().ok_or_else(|| null_argument("ring"))?;
            let app = str_arg(app, "app")?;
            let claims_json = str_arg(claims_json, "claims_json")?;
            if token.is_null() {
                return Err(null_argument("token"));
            }
            let request = ClaimsRequest::from_json(claims_json)?;
            let mut issuer = Issuer::new(&ring.ring).ttl(request.ttl.unwrap_or(DEFAULT_TTL));
            if legacy != 0 {
                issuer = issuer.legacy();
            }
            let issued = issuer.issue(app, &request.claims)?;
            token.write(into_c_string(issued));
            Ok(())
        })
    }
}

/// Verifies `token` and writes the outcome to `*result_json`: exactly the object that
/// `siptoken verify --json --show-password` prints, `{"valid":true,"format":…,"app":…,
/// "kid":…,"claims":{…}}` or `{"valid":false,"error":"<code>","message":…}`; with
/// `"show_password": false` in the options, what `siptoken verify --json` prints (the
/// password `null`).
///
/// Returns 0 whenever the token could be judged, valid or not; a non-zero code only for
/// `null_argument`, `invalid_utf8` or `invalid_json` (bad `options_json`). `options_json` may be
/// NULL (the defaults) or an object with `allow_legacy` (false), `leeway_seconds` (30),
/// `max_lifetime_seconds` (86400), `require_legacy_expiry` (true), `now` (Unix seconds; the
/// system clock when absent) and `show_password` (true).
///
/// # Safety
/// `ring` is NULL or a live key ring; `token` and `options_json` are NULL or NUL-terminated
/// strings; `result_json` and `err` are NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn siptoken_verify(
    ring: *const siptoken_keyring,
    token: *const c_char,
    options_json: *const c_char,
    result_json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        clear(result_json);
        guard(err, || {
            let ring = ring.as_ref().ok_or_else(|| null_argument("ring"))?;
            let token = str_arg(token, "token")?;
            let options = if options_json.is_null() {
                ReportOptions::default()
            } else {
                report_options_from_json(str_arg(options_json, "options_json")?)?
            };
            if result_json.is_null() {
                return Err(null_argument("result_json"));
            }
            let outcome = Verifier::with_options(&ring.ring, options.verify).verify(token);
            // The report (and the claims in it) zeroizes the password on drop; into_c_string
            // zeroizes the intermediate JSON text.
            let report = VerifyReport::new(outcome, options.show_password.unwrap_or(true));
            result_json.write(into_c_string(report.to_json()));
            Ok(())
        })
    }
}

/// Releases a string returned by this library (a token, a result, an error message) after
/// zeroizing it. NULL is allowed and does nothing. Do not free these strings with `free()`, and
/// do not modify them.
///
/// # Safety
/// `s` is NULL or a string returned by this library that has not been freed yet.
#[no_mangle]
pub unsafe extern "C" fn siptoken_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    // SAFETY: made by CString::into_raw in this library, unmodified, not freed yet.
    let mut bytes = unsafe { CString::from_raw(s) }.into_bytes_with_nul();
    bytes.zeroize();
}

/// The library's version, e.g. `"0.1.0"`: a static string, never to be freed.
#[no_mangle]
pub extern "C" fn siptoken_version() -> *const c_char {
    static VERSION: OnceLock<CString> = OnceLock::new();
    VERSION
        .get_or_init(|| CString::new(siptoken_core::VERSION).unwrap_or_default())
        .as_ptr()
}

/// The stable name of a return code: `"ok"` for 0, `"bad_signature"` for 4, …, `"internal"` for
/// 18, and `"unknown"` for a number that is no code. A static string, never to be freed.
#[no_mangle]
pub extern "C" fn siptoken_error_code(code: c_int) -> *const c_char {
    static NAMES: OnceLock<Vec<(c_int, CString)>> = OnceLock::new();
    static UNKNOWN: &CStr = c"unknown";
    let names = NAMES.get_or_init(code_table);
    names
        .iter()
        .find(|(n, _)| *n == code)
        .map_or(UNKNOWN.as_ptr(), |(_, name)| name.as_ptr())
}

/// Every return code and its name: 0 `ok`, the core's codes, then the ABI's.
fn code_table() -> Vec<(c_int, CString)> {
    let core = ErrorCode::ALL
        .iter()
        .map(|c| (c.number(), c.as_str()))
        .chain(ABI_CODES);
    std::iter::once((SIPTOKEN_OK, "ok"))
        .chain(core)
        .map(|(n, name)| (n, CString::new(name).unwrap_or_default()))
        .collect()
}

// The key ring is shared between threads by the ABI's contract.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<siptoken_keyring>();
};
