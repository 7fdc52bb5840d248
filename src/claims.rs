//! The claims a token carries: a SIP account and the token's validity.
//!
//! This module is the one place that knows what each XML attribute means and which values it
//! may take. [`Claims`] is built with [`Claims::builder`], read back from a verified token, and
//! converts to and from XML (through [`crate::xml`]) and to and from serde maps keyed by the XML
//! attribute names.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::xml::{self, XmlWriter};

/// The XML attribute names of the claims this format defines, in canonical (written) order.
pub const KNOWN_ATTRIBUTES: [&str; 12] = [
    "login",
    "authenticationName",
    "password",
    "domain",
    "outboundProxy",
    "port",
    "visibleName",
    "transport",
    "registered",
    "expires",
    "issued",
    "id",
];

/// The largest Unix time accepted (9999-12-31T23:59:59Z).
pub const MAX_UNIX_TIME: i64 = 253_402_300_799;

/// A SIP password: zeroized on drop, never shown by `Debug`.
///
/// ```
/// use siptoken::Password;
/// let p = Password::from("s3cret");
/// assert_eq!(p.expose(), "s3cret");
/// assert_eq!(format!("{p:?}"), "Password(<redacted>)");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

crate::secret::secret_newtype!(Password);

impl Password {
    /// The password itself. Call this only where the password must leave the library (the SIP
    /// digest computation, an explicit `--show-password`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(s: String) -> Password {
        Password(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Password {
        Password(s.to_owned())
    }
}

impl From<Zeroizing<String>> for Password {
    fn from(mut s: Zeroizing<String>) -> Password {
        Password(std::mem::take(&mut *s))
    }
}

/// The SIP transport the gateway should use (`transport` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `udp` (the default when absent).
    Udp,
    /// `tcp`.
    Tcp,
    /// `tls`.
    Tls,
}

impl Transport {
    /// The attribute value: `udp`, `tcp` or `tls`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl FromStr for Transport {
    type Err = Error;

    /// Parses exactly `udp`, `tcp` or `tls` (lower case, as written in tokens).
    fn from_str(s: &str) -> Result<Transport> {
        match s {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            _ => Err(Error::invalid_field(
                "transport",
                "must be \"udp\", \"tcp\" or \"tls\"",
            )),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token id: 16 random bytes, written as 32 lowercase hex digits (`id` attribute).
///
/// ```
/// use siptoken::TokenId;
/// let id: TokenId = "edb29b6da3737c9d8fb841552f1e65ff".parse().unwrap();
/// assert_eq!(id.to_string(), "edb29b6da3737c9d8fb841552f1e65ff");
/// assert!("EDB29B6DA3737C9D8FB841552F1E65FF".parse::<TokenId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub [u8; 16]);

impl TokenId {
    /// A fresh id from the thread-local CSPRNG (seeded by the operating system).
    pub fn random() -> TokenId {
        TokenId(crate::random::bytes())
    }
}

impl FromStr for TokenId {
    type Err = Error;

    fn from_str(s: &str) -> Result<TokenId> {
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if s.len() != 32 || !s.bytes().all(lower_hex) {
            return Err(Error::invalid_field(
                "id",
                "must be exactly 32 lowercase hex digits",
            ));
        }
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id).expect("checked to be hex");
        Ok(TokenId(id))
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        hex::encode_to_slice(self.0, &mut buf).expect("32 bytes of room");
        f.write_str(std::str::from_utf8(&buf).expect("hex is ASCII"))
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

/// The claims of one token: a SIP account, how to register it, and the token's validity.
///
/// Build one with [`Claims::builder`]; read one from [`Verified::claims`](crate::Verified::claims).
/// Serde (de)serializes claims as a map keyed by the XML attribute names with string values
/// (numbers and booleans are accepted when deserializing), unknown attributes included.
///
/// ```
/// use siptoken::{Claims, Transport};
/// let claims = Claims::builder("crm1", "s3cr<t", "sip.example.org")
///     .visible_name("Operator 1")
///     .transport(Transport::Tcp)
///     .expires(1764120300)
///     .build()
///     .unwrap();
/// assert_eq!(claims.auth_name(), "crm1"); // defaults to the login
/// assert_eq!(
///     claims.to_xml().as_str(),
///     r#"<root login="crm1" password="s3cr&lt;t" domain="sip.example.org" visibleName="Operator 1" transport="tcp" expires="1764120300"/>"#
/// );
/// let json = serde_json::to_string(&claims).unwrap();
/// let back: Claims = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, claims);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    login: String,
    password: Password,
    domain: String,
    optional: OptionalClaims,
}

/// The claims a token may leave out: what [`Claims`] holds besides the account, and what
/// [`ClaimFields`] collects besides the required attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OptionalClaims {
    authentication_name: Option<String>,
    outbound_proxy: Option<String>,
    port: Option<u16>,
    visible_name: Option<String>,
    transport: Option<Transport>,
    registered: Option<bool>,
    expires: Option<i64>,
    issued: Option<i64>,
    id: Option<TokenId>,
    extra: Vec<(String, String)>,
}

impl Claims {
    /// Starts claims for the SIP account `login` / `password` at `domain`.
    pub fn builder(
        login: impl Into<String>,
        password: impl Into<Password>,
        domain: impl Into<String>,
    ) -> ClaimsBuilder {
        ClaimsBuilder {
            claims: Claims {
                login: login.into(),
                password: password.into(),
                domain: domain.into(),
                optional: OptionalClaims::default(),
            },
        }
    }

    /// The SIP user (`login`).
    pub fn login(&self) -> &str {
        &self.login
    }
    /// The SIP password (`password`).
    pub fn password(&self) -> &Password {
        &self.password
    }
    /// The SIP domain (`domain`), also the registrar when no outbound proxy is given.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// The digest user name: `authenticationName`, or the login when absent.
    pub fn auth_name(&self) -> &str {
        self.optional
            .authentication_name
            .as_deref()
            .unwrap_or(&self.login)
    }
    /// `authenticationName` exactly as given, if given.
    pub fn authentication_name(&self) -> Option<&str> {
        self.optional.authentication_name.as_deref()
    }
    /// `outboundProxy`: the host to send SIP requests to instead of the domain.
    pub fn outbound_proxy(&self) -> Option<&str> {
        self.optional.outbound_proxy.as_deref()
    }
    /// `port`, 1–65535.
    pub fn port(&self) -> Option<u16> {
        self.optional.port
    }
    /// `visibleName`: the display name.
    pub fn visible_name(&self) -> Option<&str> {
        self.optional.visible_name.as_deref()
    }
    /// `transport` as given, if given.
    pub fn transport(&self) -> Option<Transport> {
        self.optional.transport
    }
    /// `registered` as given, if given.
    pub fn registered(&self) -> Option<bool> {
        self.optional.registered
    }
    /// Whether the gateway should REGISTER the account (`registered`, default `true`).
    pub fn should_register(&self) -> bool {
        self.optional.registered.unwrap_or(true)
    }
    /// `expires`: Unix seconds after which the token is no longer accepted.
    pub fn expires(&self) -> Option<i64> {
        self.optional.expires
    }
    /// `issued`: Unix seconds at which the token was made.
    pub fn issued(&self) -> Option<i64> {
        self.optional.issued
    }
    /// `id`: the token's single-use identifier.
    pub fn id(&self) -> Option<TokenId> {
        self.optional.id
    }
    /// Attributes this format does not define, in document order. They are carried, never
    /// rejected, so that newer issuers can add claims that older verifiers pass through.
    pub fn extra(&self) -> &[(String, String)] {
        &self.optional.extra
    }
    /// The value of any attribute by its XML name, known or not.
    ///
    /// ```
    /// # use siptoken::Claims;
    /// let c = Claims::builder("u", "p", "d").port(5080).extra("x-crm-user", "42").build().unwrap();
    /// assert_eq!(c.get("port").as_deref(), Some("5080"));
    /// assert_eq!(c.get("x-crm-user").as_deref(), Some("42"));
    /// assert_eq!(c.get("visibleName"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut found = None;
        self.for_each_attribute(
            self.optional.expires,
            self.optional.issued,
            self.optional.id,
            |n, v| {
                if found.is_none() && n == name {
                    found = Some(v.into_owned());
                }
            },
        );
        found.map(Cow::Owned)
    }

    /// Calls `f` with every attribute, password included, in canonical order (the order of
    /// [`KNOWN_ATTRIBUTES`], then unknown attributes in the order they were added).
    ///
    /// ```
    /// # use siptoken::Claims;
    /// let c = Claims::builder("u", "p", "d").port(5080).build().unwrap();
    /// let mut names = Vec::new();
    /// c.for_each(|name, _value| names.push(name.to_owned()));
    /// assert_eq!(names, ["login", "password", "domain", "port"]);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&str, &str)) {
        self.for_each_attribute(
            self.optional.expires,
            self.optional.issued,
            self.optional.id,
            |name, value| f(name, &value),
        );
    }

    /// The claims as XML, attributes in canonical order (the order of [`KNOWN_ATTRIBUTES`],
    /// then unknown attributes in the order they were added).
    pub fn to_xml(&self) -> Zeroizing<String> {
        self.to_xml_stamped(
            self.optional.expires,
            self.optional.issued,
            self.optional.id,
        )
    }

    /// The XML with `expires`, `issued` and `id` replaced by the given values.
    pub(crate) fn to_xml_stamped(
        &self,
        expires: Option<i64>,
        issued: Option<i64>,
        id: Option<TokenId>,
    ) -> Zeroizing<String> {
        let mut writer = XmlWriter::with_capacity(self.xml_capacity());
        self.for_each_attribute(expires, issued, id, |name, value| {
            writer.attribute(name, &value)
        });
        Zeroizing::new(writer.finish())
    }

    fn xml_capacity(&self) -> usize {
        let extra: usize = self
            .optional
            .extra
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        200 + self.login.len()
            + self.password.0.len() * 2
            + self.domain.len()
            + self.optional.visible_name.as_ref().map_or(0, String::len)
            + extra
    }

    /// Calls `f` with every attribute in canonical order, numbers formatted.
    fn for_each_attribute(
        &self,
        expires: Option<i64>,
        issued: Option<i64>,
        id: Option<TokenId>,
        mut f: impl FnMut(&str, Cow<'_, str>),
    ) {
        let mut num = itoa::Buffer::new();
        f("login", Cow::Borrowed(&self.login));
        if let Some(v) = &self.optional.authentication_name {
            f("authenticationName", Cow::Borrowed(v));
        }
        f("password", Cow::Borrowed(self.password.expose()));
        f("domain", Cow::Borrowed(&self.domain));
        if let Some(v) = &self.optional.outbound_proxy {
            f("outboundProxy", Cow::Borrowed(v));
        }
        if let Some(v) = self.optional.port {
            f("port", Cow::Borrowed(num.format(v)));
        }
        if let Some(v) = &self.optional.visible_name {
            f("visibleName", Cow::Borrowed(v));
        }
        if let Some(v) = self.optional.transport {
            f("transport", Cow::Borrowed(v.as_str()));
        }
        if let Some(v) = self.optional.registered {
            f(
                "registered",
                Cow::Borrowed(if v { "true" } else { "false" }),
            );
        }
        if let Some(v) = expires {
            f("expires", Cow::Borrowed(num.format(v)));
        }
        if let Some(v) = issued {
            f("issued", Cow::Borrowed(num.format(v)));
        }
        if let Some(v) = id {
            f("id", Cow::Owned(v.to_string()));
        }
        for (name, value) in &self.optional.extra {
            f(name, Cow::Borrowed(value));
        }
    }

    /// Reads claims from the decrypted XML of a token. Checks every value it finds; does not
    /// check which fields are present beyond `login`, `password` and `domain` (that depends on
    /// the format, see [`crate::Verifier`]).
    pub(crate) fn from_xml(xml: &[u8]) -> Result<Claims> {
        let mut fields = ClaimFields::default();
        xml::parse_attributes(xml, |name, value| fields.set(name, value))?;
        fields.finish()
    }

    /// Builds claims from attribute name/value pairs, as a JSON request or a serde map gives
    /// them. Names must be unique; values are checked as when reading a token.
    pub(crate) fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    ) -> Result<Claims> {
        let mut fields = ClaimFields::default();
        for (name, value) in pairs {
            if !xml::is_attribute_name(&name) {
                return Err(Error::invalid_field(
                    &truncate(&name, 64),
                    "is not a valid attribute name (letters, digits, '_', '-', '.'; starting with a letter or '_')",
                ));
            }
            if !xml::is_xml_text(&value) {
                return Err(Error::invalid_field(
                    &name,
                    "contains a control character that XML 1.0 cannot carry",
                ));
            }
            fields.set(&name, value).map_err(|e| match e {
                Error::InvalidXml(_) => Error::invalid_field(&name, "is given more than once"),
                other => other,
            })?;
        }
        fields.finish()
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Claims being collected attribute by attribute.
#[derive(Default)]
struct ClaimFields {
    login: Option<String>,
    password: Option<Password>,
    domain: Option<String>,
    optional: OptionalClaims,
}

/// Stores `value` in `slot`, refusing a second value for the same attribute.
fn put<T>(slot: &mut Option<T>, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(Error::InvalidXml("duplicate attribute".into()));
    }
    *slot = Some(value);
    Ok(())
}

impl ClaimFields {
    fn set(&mut self, name: &str, value: Cow<'_, str>) -> Result<()> {
        match name {
            "login" => put(&mut self.login, non_empty("login", value)?),
            "password" => put(&mut self.password, Password(value.into_owned())),
            "domain" => put(&mut self.domain, non_empty("domain", value)?),
            "authenticationName" => put(
                &mut self.optional.authentication_name,
                non_empty("authenticationName", value)?,
            ),
            "outboundProxy" => put(
                &mut self.optional.outbound_proxy,
                non_empty("outboundProxy", value)?,
            ),
            "port" => put(&mut self.optional.port, parse_port(&value)?),
            "visibleName" => put(&mut self.optional.visible_name, value.into_owned()),
            "transport" => put(&mut self.optional.transport, value.parse()?),
            "registered" => put(
                &mut self.optional.registered,
                parse_bool("registered", &value)?,
            ),
            "expires" => put(
                &mut self.optional.expires,
                parse_unix_time("expires", &value)?,
            ),
            "issued" => put(
                &mut self.optional.issued,
                parse_unix_time("issued", &value)?,
            ),
            "id" => put(&mut self.optional.id, value.parse()?),
            _ => {
                if self.optional.extra.iter().any(|(n, _)| n == name) {
                    return Err(Error::InvalidXml("duplicate attribute".into()));
                }
                self.optional
                    .extra
                    .push((name.to_owned(), value.into_owned()));
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<Claims> {
        let claims = Claims {
            login: self.login.ok_or(Error::MissingField("login"))?,
            password: self.password.ok_or(Error::MissingField("password"))?,
            domain: self.domain.ok_or(Error::MissingField("domain"))?,
            optional: self.optional,
        };
        check_times(claims.optional.expires, claims.optional.issued)?;
        Ok(claims)
    }
}

fn non_empty(field: &str, value: Cow<'_, str>) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid_field(field, "must not be empty"));
    }
    Ok(value.into_owned())
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_port(s: &str) -> Result<u16> {
    match s.parse::<u16>() {
        Ok(port) if port > 0 && is_decimal(s) => Ok(port),
        _ => Err(Error::invalid_field(
            "port",
            "must be a whole number from 1 to 65535",
        )),
    }
}

fn parse_bool(field: &str, s: &str) -> Result<bool> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::invalid_field(field, "must be \"true\" or \"false\"")),
    }
}

fn parse_unix_time(field: &str, s: &str) -> Result<i64> {
    match s.parse::<i64>() {
        Ok(t) if is_decimal(s) && t <= MAX_UNIX_TIME => Ok(t),
        _ => Err(Error::invalid_field(
            field,
            format!("must be Unix seconds: a whole number from 0 to {MAX_UNIX_TIME}"),
        )),
    }
}

fn check_unix_time(field: &str, t: Option<i64>) -> Result<()> {
    match t {
        Some(t) if !(0..=MAX_UNIX_TIME).contains(&t) => Err(Error::invalid_field(
            field,
            format!("must be Unix seconds: a whole number from 0 to {MAX_UNIX_TIME}"),
        )),
        _ => Ok(()),
    }
}

fn check_times(expires: Option<i64>, issued: Option<i64>) -> Result<()> {
    check_unix_time("expires", expires)?;
    check_unix_time("issued", issued)?;
    match (expires, issued) {
        (Some(e), Some(i)) if e < i => Err(Error::invalid_field(
            "expires",
            "is earlier than \"issued\"",
        )),
        _ => Ok(()),
    }
}

/// Builds [`Claims`]; see [`Claims::builder`]. [`build`](ClaimsBuilder::build) checks every
/// value, so a `Claims` always holds something a token can carry.
#[derive(Debug, Clone)]
#[must_use]
pub struct ClaimsBuilder {
    claims: Claims,
}

/// Builder methods that set one optional claim: `name(arg: Type) => field = value;` makes
/// `pub fn name(self, arg: Type) -> Self` storing `Some(value)` in `field`.
macro_rules! optional_claims {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $ty:ty) => $field:ident = $value:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $arg: $ty) -> Self {
                self.claims.optional.$field = Some($value);
                self
            }
        )*
    };
}

impl ClaimsBuilder {
    optional_claims! {
        /// `authenticationName`: the digest user name, when it differs from the login.
        auth_name(name: impl Into<String>) => authentication_name = name.into();
        /// `outboundProxy`: the host to send SIP requests to.
        outbound_proxy(host: impl Into<String>) => outbound_proxy = host.into();
        /// `port`, 1–65535.
        port(port: u16) => port = port;
        /// `visibleName`: the display name.
        visible_name(name: impl Into<String>) => visible_name = name.into();
        /// `transport`.
        transport(transport: Transport) => transport = transport;
        /// `registered`: whether the gateway should REGISTER (default true).
        registered(registered: bool) => registered = registered;
        /// `expires`, Unix seconds. When not set, the issuer sets it from its time-to-live.
        expires(unix_seconds: i64) => expires = unix_seconds;
        /// `issued`, Unix seconds. When not set, a v1 issuer sets it to the current time.
        issued(unix_seconds: i64) => issued = unix_seconds;
        /// `id`. When not set, a v1 issuer draws a random one.
        id(id: TokenId) => id = id;
    }
    /// An attribute this format does not define (carried as is).
    pub fn extra(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.claims.optional.extra.push((name.into(), value.into()));
        self
    }

    /// Checks every value and returns the claims.
    ///
    /// Fails with `invalid_field` on an empty login, domain, authentication name or outbound
    /// proxy, port 0, a character XML 1.0 cannot carry, a time outside 0..=[`MAX_UNIX_TIME`],
    /// `expires` before `issued`, or an unknown attribute whose name is not a valid XML name,
    /// clashes with a known one, or is repeated.
    pub fn build(self) -> Result<Claims> {
        let c = self.claims;
        for (field, value) in [
            ("login", Some(c.login.as_str())),
            ("domain", Some(c.domain.as_str())),
            (
                "authenticationName",
                c.optional.authentication_name.as_deref(),
            ),
            ("outboundProxy", c.optional.outbound_proxy.as_deref()),
        ] {
            if value == Some("") {
                return Err(Error::invalid_field(field, "must not be empty"));
            }
        }
        if c.optional.port == Some(0) {
            return Err(Error::invalid_field(
                "port",
                "must be a whole number from 1 to 65535",
            ));
        }
        check_times(c.optional.expires, c.optional.issued)?;
        let texts = [
            ("login", Some(&c.login)),
            ("password", Some(&c.password.0)),
            ("domain", Some(&c.domain)),
            (
                "authenticationName",
                c.optional.authentication_name.as_ref(),
            ),
            ("outboundProxy", c.optional.outbound_proxy.as_ref()),
            ("visibleName", c.optional.visible_name.as_ref()),
        ];
        for (field, value) in texts {
            if value.is_some_and(|v| !xml::is_xml_text(v)) {
                return Err(Error::invalid_field(
                    field,
                    "contains a control character that XML 1.0 cannot carry",
                ));
            }
        }
        for (i, (name, value)) in c.optional.extra.iter().enumerate() {
            if !xml::is_attribute_name(name) || KNOWN_ATTRIBUTES.contains(&name.as_str()) {
                return Err(Error::invalid_field(
                    &truncate(name, 64),
                    "cannot be used as an extra attribute name",
                ));
            }
            if c.optional.extra[..i].iter().any(|(n, _)| n == name) {
                return Err(Error::invalid_field(name, "is given more than once"));
            }
            if !xml::is_xml_text(value) {
                return Err(Error::invalid_field(
                    name,
                    "contains a control character that XML 1.0 cannot carry",
                ));
            }
        }
        Ok(c)
    }
}

impl Claims {
    /// Serializes as a map of XML attribute names to strings; the password is `null` unless
    /// `show_password`.
    pub(crate) fn serialize_map<S: Serializer>(
        &self,
        serializer: S,
        show_password: bool,
    ) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut result = Ok(());
        self.for_each_attribute(
            self.optional.expires,
            self.optional.issued,
            self.optional.id,
            |name, value| {
                if result.is_ok() {
                    result = if name == "password" && !show_password {
                        map.serialize_entry(name, &None::<&str>)
                    } else {
                        map.serialize_entry(name, &value)
                    };
                }
            },
        );
        result?;
        map.end()
    }
}

impl Serialize for Claims {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.serialize_map(serializer, true)
    }
}

/// One value of a claims map: JSON strings, whole numbers and booleans become attribute text.
pub(crate) struct ScalarText(pub(crate) Zeroizing<String>);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<ScalarText, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a whole number or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<ScalarText, E> {
                Ok(ScalarText(Zeroizing::new(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<ScalarText, E> {
                Ok(ScalarText(Zeroizing::new(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<ScalarText, E> {
                Ok(ScalarText(Zeroizing::new(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<ScalarText, E> {
                Ok(ScalarText(Zeroizing::new(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<ScalarText, E> {
                Ok(ScalarText(Zeroizing::new(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// The name/value pairs of a claims map, in order, before any checking: what both `Claims`'
/// serde form and [`crate::json::ClaimsRequest`] read.
pub(crate) struct ScalarPairs(pub(crate) Vec<(String, ScalarText)>);

impl ScalarPairs {
    /// Reads a map; `expecting` is what serde's error says was expected instead.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
        expecting: &'static str,
    ) -> std::result::Result<ScalarPairs, D::Error> {
        struct V(&'static str);
        impl<'de> Visitor<'de> for V {
            type Value = ScalarPairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<ScalarPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, ScalarText>()? {
                    pairs.push(pair);
                }
                Ok(ScalarPairs(pairs))
            }
        }
        d.deserialize_map(V(expecting))
    }
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Claims, D::Error> {
        let ScalarPairs(pairs) =
            ScalarPairs::deserialize(d, "a map of claim attribute names to values")?;
        let pairs = pairs
            .into_iter()
            .map(|(name, mut value)| (Cow::Owned(name), Cow::Owned(std::mem::take(&mut *value.0))));
        Claims::from_pairs(pairs).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_round_trip_keeps_unknown_attributes_and_unicode() {
        let c = Claims::builder("crm1", "p<a&s\"s'w>rd ü€\t\n\r", "sip.example.org")
            .auth_name("auth")
            .outbound_proxy("proxy.example.org")
            .port(5060)
            .visible_name("Оператор №7")
            .transport(Transport::Tls)
            .registered(false)
            .expires(1764120300)
            .issued(1764120000)
            .id(TokenId([7; 16]))
            .extra("x-crm-user", "42")
            .build()
            .unwrap();
        let xml = c.to_xml();
        let back = Claims::from_xml(xml.as_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.extra(), &[("x-crm-user".to_owned(), "42".to_owned())]);
    }

    #[test]
    fn value_errors_name_the_field_and_not_the_value() {
        let cases = [
            (
                r#"<root login="u" password="p" domain="d" port="0"/>"#,
                "port",
            ),
            (
                r#"<root login="u" password="p" domain="d" port="65536"/>"#,
                "port",
            ),
            (
                r#"<root login="u" password="p" domain="d" port="+5"/>"#,
                "port",
            ),
            (
                r#"<root login="u" password="p" domain="d" transport="UDP"/>"#,
                "transport",
            ),
            (
                r#"<root login="u" password="p" domain="d" registered="yes"/>"#,
                "registered",
            ),
            (
                r#"<root login="u" password="p" domain="d" expires="-1"/>"#,
                "expires",
            ),
            (
                r#"<root login="u" password="p" domain="d" expires="1e9"/>"#,
                "expires",
            ),
            (
                r#"<root login="u" password="p" domain="d" id="abc"/>"#,
                "id",
            ),
            (r#"<root login="" password="p" domain="d"/>"#, "login"),
            (
                r#"<root login="u" password="p" domain="d" expires="5" issued="6"/>"#,
                "expires",
            ),
        ];
        for (xml, field) in cases {
            match Claims::from_xml(xml.as_bytes()) {
                Err(Error::InvalidField { field: f, .. }) => assert_eq!(f, field, "{xml}"),
                other => panic!("{xml}: {other:?}"),
            }
        }
        for (xml, field) in [
            (r#"<root password="p" domain="d"/>"#, "login"),
            (r#"<root login="u" domain="d"/>"#, "password"),
            (r#"<root login="u" password="p"/>"#, "domain"),
        ] {
            assert_eq!(
                Claims::from_xml(xml.as_bytes()),
                Err(Error::MissingField(field))
            );
        }
    }

    #[test]
    fn builder_rejects_what_xml_cannot_carry() {
        let bad = [
            Claims::builder("", "p", "d").build(),
            Claims::builder("u", "p\u{1}", "d").build(),
            Claims::builder("u", "p", "d").port(0).build(),
            Claims::builder("u", "p", "d").extra("login", "x").build(),
            Claims::builder("u", "p", "d")
                .extra("bad name", "x")
                .build(),
            Claims::builder("u", "p", "d")
                .extra("a", "1")
                .extra("a", "2")
                .build(),
            Claims::builder("u", "p", "d")
                .expires(MAX_UNIX_TIME + 1)
                .build(),
        ];
        for result in bad {
            assert_eq!(result.unwrap_err().code(), crate::ErrorCode::InvalidField);
        }
    }

    #[test]
    fn duplicate_attributes_are_invalid_xml() {
        for xml in [
            r#"<root login="u" login="v" password="p" domain="d"/>"#,
            r#"<root login="u" password="p" domain="d" port="1" port="1"/>"#,
            r#"<root login="u" password="p" domain="d" x="1" x="2"/>"#,
        ] {
            assert!(
                matches!(Claims::from_xml(xml.as_bytes()), Err(Error::InvalidXml(_))),
                "{xml}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Claims::builder("u", "hunter2", "d").build().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
