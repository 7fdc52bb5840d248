//! The WebAssembly binding of siptoken (wasm-bindgen), built into the npm package `siptoken`.
//!
//! This crate is only the glue: parsing, issuing, verifying and every JSON shape are the core
//! library's ([`siptoken::json`]), so that the package accepts and returns exactly what the CLI
//! does. The public JavaScript API (`KeyRing.parse`, `issue`, `verify`, `version`,
//! `SipTokenError`) is in `npm/index.js`, which checks argument types and calls the raw exports
//! below.
//!
//! Two things differ from native builds and are handled here:
//! - the clock: `std::time::SystemTime::now()` panics on `wasm32-unknown-unknown`, so the issuer
//!   and verifier always get a clock that reads JavaScript's `Date.now()` (unless `now` is
//!   pinned by the options);
//! - errors: a Rust panic in WebAssembly aborts the instance, so every failure is returned as a
//!   JavaScript exception (`SipTokenError` with the core's `.code`, or `TypeError` for misuse).

use std::cell::RefCell;
use std::sync::Arc;

use serde::Deserialize;
use siptoken::json::{options_from_json, ClaimsRequest, VerifyReport};
use siptoken::{Clock, Issuer, Verifier, DEFAULT_TTL};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

thread_local! {
    /// The JavaScript `SipTokenError` class, registered once by `index.js` at load time.
    static ERROR_CLASS: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

/// Registers the `SipTokenError` class (`new SipTokenError(message, code)`) that errors are
/// thrown as. Called by `index.js` when the package loads; not part of the public API.
#[wasm_bindgen(js_name = "__setErrorClass")]
pub fn set_error_class(class: js_sys::Function) {
    ERROR_CLASS.with(|c| {
        if let Ok(mut slot) = c.try_borrow_mut() {
            *slot = Some(class);
        }
    });
}

/// A JavaScript `SipTokenError` carrying the core error's stable code and message (messages
/// never contain keys, passwords or whole tokens).
fn sip_error(e: &siptoken::Error) -> JsValue {
    let code = JsValue::from_str(e.code().as_str());
    let message = JsValue::from_str(&e.to_string());
    let class = ERROR_CLASS.with(|c| c.try_borrow().ok().and_then(|c| c.clone()));
    if let Some(class) = class {
        if let Ok(err) = js_sys::Reflect::construct(&class, &js_sys::Array::of2(&message, &code)) {
            return err;
        }
    }
    // Not registered (the raw module used directly): a plain Error with the same fields.
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("SipTokenError");
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("code"), &code);
    err.into()
}

fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}

/// The clock of every issuer and verifier here: JavaScript's `Date.now()`, in whole seconds.
/// (`SystemTime::now()`, the core's default, panics on wasm32-unknown-unknown.)
fn js_clock() -> Clock {
    Arc::new(|| {
        let ms = js_sys::Date::now();
        if ms.is_finite() {
            // `as` saturates; no panic is possible.
            (ms / 1000.0).floor() as i64
        } else {
            0
        }
    })
}

/// A key ring: the per-application legacy and v1 keys, in the Web Call Server syntax
/// (`APP=HEX`, `APP.KID=HEX`, `#` comments). The key material stays inside WebAssembly memory
/// and is zeroized when the ring is freed (explicitly with `free()`, or by the garbage collector).
#[wasm_bindgen]
pub struct KeyRing {
    inner: siptoken::KeyRing,
}

#[wasm_bindgen]
impl KeyRing {
    /// `new KeyRing()` is a mistake: key rings come from `KeyRing.parse(text)`.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<KeyRing, JsValue> {
        Err(type_error("use KeyRing.parse(text) to make a KeyRing"))
    }

    /// Parses key ring text. Throws `SipTokenError` with code `invalid_keyring` (naming the line,
    /// never the key) on bad text, `TypeError` when `text` is not a string.
    pub fn parse(text: JsValue) -> Result<KeyRing, JsValue> {
        let text = Zeroizing::new(
            text.as_string()
                .ok_or_else(|| type_error("KeyRing.parse: the key ring text must be a string"))?,
        );
        text.parse()
            .map(|inner| KeyRing { inner })
            .map_err(|e| sip_error(&e))
    }

    /// The application names that have at least one key, sorted.
    pub fn apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = self.inner.apps().into_iter().map(str::to_owned).collect();
        apps.sort();
        apps
    }
}

/// Options of `issue` (all optional, unknown ones refused like the verifier's).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct IssueOptions {
    /// Issue a legacy (Web Call Server) token instead of v1.
    legacy: bool,
    /// Sign a v1 token with this key id instead of the application's newest key.
    kid: Option<String>,
    /// Pin the clock to these Unix seconds (tests, reproducible legacy tokens).
    now: Option<i64>,
}

/// Issues one token. `claims_json` is the claims object as JSON (the core's
/// `ClaimsRequest` rules: XML attribute names, string/number/boolean values, optional
/// `ttl_seconds`); `options_json` is `{legacy, kid, now}`.
#[wasm_bindgen(js_name = "issueToken")]
pub fn issue_token(
    ring: &KeyRing,
    app: &str,
    claims_json: String,
    options_json: &str,
) -> Result<String, JsValue> {
    // The claims hold the SIP password: wipe this copy when done.
    let claims_json = Zeroizing::new(claims_json);
    let options: IssueOptions = serde_json::from_str(options_json)
        .map_err(|e| sip_error(&siptoken::Error::InvalidJson(format!("issue options: {e}"))))?;
    if options.legacy && options.kid.is_some() {
        // As the CLI's --kid/--legacy conflict: a legacy token has no key id to choose.
        return Err(sip_error(&siptoken::Error::InvalidJson(
            "issue options: kid applies to v1 tokens only, not with legacy".to_owned(),
        )));
    }
    let request = ClaimsRequest::from_json(&claims_json).map_err(|e| sip_error(&e))?;
    let mut issuer = Issuer::new(&ring.inner)
        .ttl(request.ttl.unwrap_or(DEFAULT_TTL))
        .clock(js_clock());
    if options.legacy {
        issuer = issuer.legacy();
    }
    if let Some(kid) = options.kid {
        issuer = issuer.kid(kid);
    }
    if let Some(now) = options.now {
        issuer = issuer.at(now);
    }
    issuer
        .issue(app, &request.claims)
        .map_err(|e| sip_error(&e))
}

/// Verifies one token and returns the JSON object `siptoken verify --json --show-password`
/// prints. A rejected token is a result (`valid: false`), not an exception; only bad options
/// throw (`SipTokenError` with code `invalid_json`).
#[wasm_bindgen(js_name = "verifyToken")]
pub fn verify_token(ring: &KeyRing, token: &str, options_json: &str) -> Result<String, JsValue> {
    let options = options_from_json(options_json).map_err(|e| sip_error(&e))?;
    // A clock pinned by `now` in the options takes precedence over this one.
    let verifier = Verifier::with_options(&ring.inner, options).clock(js_clock());
    Ok(VerifyReport::new(verifier.verify(token), true).to_json())
}

/// The report for a token longer than [`siptoken::MAX_TOKEN_LEN`] bytes (`len` of them), without
/// copying it into WebAssembly memory: `index.js` answers over-long tokens with this, so that a
/// huge token from a request cannot grow the instance's memory (which never shrinks). The
/// options are checked as [`verify_token`] checks them.
#[wasm_bindgen(js_name = "oversizeReport")]
pub fn oversize_report(options_json: &str, len: f64) -> Result<String, JsValue> {
    options_from_json(options_json).map_err(|e| sip_error(&e))?;
    // `as` saturates; `len` is a byte count from JavaScript, above the limit.
    let len = (len as usize).max(siptoken::MAX_TOKEN_LEN + 1);
    Ok(VerifyReport::new(Err(siptoken::Error::TooLarge { len }), true).to_json())
}

/// The size of the instance's linear memory in bytes (for tests; not part of the public API).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen(js_name = "__memoryBytes")]
pub fn memory_bytes() -> f64 {
    (core::arch::wasm32::memory_size::<0>() as f64) * 65536.0
}

/// The largest token accepted, in bytes.
#[wasm_bindgen(js_name = "maxTokenLen")]
pub fn max_token_len() -> usize {
    siptoken::MAX_TOKEN_LEN
}

/// The version of the siptoken core library compiled into this package.
#[wasm_bindgen(js_name = "coreVersion")]
pub fn core_version() -> String {
    siptoken::VERSION.to_owned()
}
