//! The JSON shapes shared by the CLI (`issue --batch`, `verify --json`), the C ABI and the WASM
//! package, so that every front end accepts and prints exactly the same objects.

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::claims::{Claims, ScalarPairs};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::verify::{Verified, VerifyOptions};

/// The JSON key that sets a token's time-to-live instead of `expires`.
pub const TTL_KEY: &str = "ttl_seconds";

/// A request to issue one token: claims keyed by their XML attribute names (string, whole number
/// or boolean values), plus an optional `ttl_seconds`.
///
/// ```
/// use siptoken::json::ClaimsRequest;
/// let r = ClaimsRequest::from_json(
///     r#"{"login":"crm1","password":"p<&\"'","domain":"sip.example.org","port":5060,"ttl_seconds":60}"#,
/// ).unwrap();
/// assert_eq!(r.claims.port(), Some(5060));
/// assert_eq!(r.ttl, Some(std::time::Duration::from_secs(60)));
///
/// let err = ClaimsRequest::from_json(r#"{"login":"crm1"}"#).unwrap_err();
/// assert_eq!(err.code().as_str(), "missing_field");
/// let err = ClaimsRequest::from_json("[1]").unwrap_err();
/// assert_eq!(err.code().as_str(), "invalid_json");
/// ```
#[derive(Debug, Clone)]
pub struct ClaimsRequest {
    /// The claims.
    pub claims: Claims,
    /// `ttl_seconds`, when given.
    pub ttl: Option<Duration>,
}

impl ClaimsRequest {
    /// Parses and checks a request. Fails with `invalid_json` when the text is not a JSON object
    /// of scalar values, and with the claim error codes (`missing_field`, `invalid_field`)
    /// otherwise.
    pub fn from_json(text: &str) -> Result<ClaimsRequest> {
        let mut de = serde_json::Deserializer::from_str(text);
        let ScalarPairs(pairs) =
            ScalarPairs::deserialize(&mut de, "an object of claim names to strings or numbers")
                .and_then(|pairs| de.end().map(|()| pairs))
                .map_err(|e| Error::InvalidJson(json_message(&e)))?;
        let mut ttl = None;
        let mut claims = Vec::with_capacity(pairs.len());
        for (name, mut value) in pairs {
            if name == TTL_KEY {
                let secs = value.0.parse::<u64>().map_err(|_| {
                    Error::invalid_field(TTL_KEY, "must be a whole number of seconds")
                })?;
                if ttl.replace(Duration::from_secs(secs)).is_some() {
                    return Err(Error::invalid_field(TTL_KEY, "is given more than once"));
                }
            } else {
                claims.push((Cow::Owned(name), Cow::Owned(std::mem::take(&mut *value.0))));
            }
        }
        Ok(ClaimsRequest {
            claims: Claims::from_pairs(claims)?,
            ttl,
        })
    }
}

/// A serde_json error without quoting input: its category and position.
fn json_message(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax => "syntax error",
        Category::Eof => "unexpected end of input",
        Category::Data => "expected an object of claim names to strings or numbers",
        Category::Io => "read error",
    };
    if e.line() > 0 {
        format!("{what} at line {} column {}", e.line(), e.column())
    } else {
        what.to_owned()
    }
}

/// Parses verifier options from JSON (see [`VerifyOptions`]); `invalid_json` on failure.
///
/// ```
/// let o = siptoken::json::options_from_json(r#"{"leeway_seconds": 5}"#).unwrap();
/// assert_eq!(o.leeway_seconds, 5);
/// ```
pub fn options_from_json(text: &str) -> Result<VerifyOptions> {
    serde_json::from_str(text).map_err(|e| {
        let detail = e.to_string();
        // Unknown-field and type errors name the option, which is worth showing; values in
        // options are never secret.
        Error::InvalidJson(detail)
    })
}

/// The options of a JSON verification request (the C ABI's `options_json`): every
/// [`VerifyOptions`] field, and `show_password`, whether the report should carry the SIP
/// password. Each front end picks the default when `show_password` is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportOptions {
    /// The verifier options.
    pub verify: VerifyOptions,
    /// `show_password`, when given.
    pub show_password: Option<bool>,
}

/// Parses [`ReportOptions`] from a JSON object; `invalid_json` on failure, naming the option
/// at fault (unknown names included, as [`options_from_json`] does).
///
/// ```
/// use siptoken::json::report_options_from_json;
/// let o = report_options_from_json(r#"{"allow_legacy": true, "show_password": false}"#).unwrap();
/// assert!(o.verify.allow_legacy);
/// assert_eq!(o.show_password, Some(false));
/// assert_eq!(report_options_from_json("{}").unwrap().show_password, None);
/// assert!(report_options_from_json(r#"{"show_password": "no"}"#).is_err());
/// assert!(report_options_from_json(r#"{"show_pasword": false}"#).is_err());
/// ```
pub fn report_options_from_json(text: &str) -> Result<ReportOptions> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::InvalidJson(e.to_string()))?;
    let show_password = match value
        .as_object_mut()
        .and_then(|o| o.remove("show_password"))
    {
        None => None,
        Some(serde_json::Value::Bool(show)) => Some(show),
        Some(_) => {
            return Err(Error::InvalidJson(
                "show_password must be true or false".to_owned(),
            ))
        }
    };
    let verify =
        VerifyOptions::deserialize(value).map_err(|e| Error::InvalidJson(e.to_string()))?;
    Ok(ReportOptions {
        verify,
        show_password,
    })
}

/// The outcome of verifying one token, as `siptoken verify --json` prints it:
/// `{"valid":true,"format":…,"app":…,"kid":…,"claims":{…}}` or
/// `{"valid":false,"error":"<code>","message":…}`.
///
/// ```
/// use siptoken::{json::VerifyReport, KeyRing, Verifier};
/// let ring = KeyRing::new();
/// let report = VerifyReport::new(Verifier::new(&ring).verify("CRM:00"), false);
/// assert_eq!(report.to_json(), r#"{"valid":false,"error":"legacy_disabled","message":"legacy tokens are not accepted here (legacy acceptance is off)"}"#);
/// ```
#[derive(Debug)]
pub struct VerifyReport {
    outcome: Result<Verified>,
    show_password: bool,
}

impl VerifyReport {
    /// Wraps a verification outcome; the password appears only with `show_password`.
    pub fn new(outcome: Result<Verified>, show_password: bool) -> VerifyReport {
        VerifyReport {
            outcome,
            show_password,
        }
    }

    /// The outcome.
    pub fn outcome(&self) -> &Result<Verified> {
        &self.outcome
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }
}

struct ClaimsView<'a> {
    claims: &'a Claims,
    show_password: bool,
}

impl Serialize for ClaimsView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.claims.serialize_map(s, self.show_password)
    }
}

impl Serialize for VerifyReport {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Valid<'a> {
            valid: bool,
            format: Format,
            app: &'a str,
            kid: Option<&'a str>,
            claims: ClaimsView<'a>,
        }
        #[derive(Serialize)]
        struct Invalid<'a> {
            valid: bool,
            error: &'a str,
            message: String,
        }
        match &self.outcome {
            Ok(v) => Valid {
                valid: true,
                format: v.format(),
                app: v.app(),
                kid: v.kid(),
                claims: ClaimsView {
                    claims: v.claims(),
                    show_password: self.show_password,
                },
            }
            .serialize(s),
            Err(e) => Invalid {
                valid: false,
                error: e.code().as_str(),
                message: e.to_string(),
            }
            .serialize(s),
        }
    }
}
