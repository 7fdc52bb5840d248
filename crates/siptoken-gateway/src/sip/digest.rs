//! HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760): parsing `WWW-Authenticate`
//! / `Proxy-Authenticate` challenges and computing the `Authorization` /
//! `Proxy-Authorization` answer.
//!
//! Algorithms: MD5, SHA-256 and SHA-512-256, each also in its `-sess` variant. qop `auth`,
//! `auth-int` (over the empty REGISTER body) and no qop (RFC 2069 compatibility).

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// `MD5` (the default when a challenge names none).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Parses an `algorithm` parameter (case-insensitive); `None` when unsupported.
    pub fn parse(s: &str) -> Option<Algorithm> {
        Some(match s.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            "SHA-512-256" => Algorithm::Sha512_256,
            "SHA-512-256-SESS" => Algorithm::Sha512_256Sess,
            _ => return None,
        })
    }

    /// The name as written in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Lower-case hex of the hash of the concatenation of `parts`, fed to the hasher one by
    /// one: secret inputs (the password, HA1) are never copied into a joined buffer, and the
    /// result lives on the stack and is wiped when dropped.
    fn hash_parts(self, parts: &[&[u8]]) -> HexDigest {
        fn run<D: Digest + ZeroizeOnDrop>(parts: &[&[u8]]) -> HexDigest {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part);
            }
            let mut raw = hasher.finalize();
            let hex = HexDigest::of(&raw);
            raw.as_mut_slice().zeroize();
            hex
        }
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => run::<Sha512_256>(parts),
        }
    }
}

/// A digest in lower-case hex (at most 32 bytes, 64 digits), on the stack and zeroized on drop:
/// HA1 is as good as the password for its realm.
struct HexDigest {
    buf: [u8; 64],
    len: usize,
}

impl HexDigest {
    fn of(raw: &[u8]) -> HexDigest {
        let mut hex = HexDigest {
            buf: [0; 64],
            len: raw.len() * 2,
        };
        hex::encode_to_slice(raw, &mut hex.buf[..hex.len]).expect("digests are at most 32 bytes");
        hex
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("hex is ASCII")
    }
}

impl Drop for HexDigest {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// The hash families of [`Algorithm`], weakest first: the unit of `min_digest_algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Deserialize)]
pub enum HashStrength {
    /// MD5 and MD5-sess (the default minimum: every registrar speaks it).
    #[default]
    #[serde(rename = "MD5")]
    Md5,
    /// SHA-256 and SHA-256-sess (RFC 8760).
    #[serde(rename = "SHA-256")]
    Sha256,
    /// SHA-512-256 and SHA-512-256-sess (RFC 8760).
    #[serde(rename = "SHA-512-256")]
    Sha512_256,
}

impl HashStrength {
    /// The name as written in the configuration (`MD5`, `SHA-256`, `SHA-512-256`).
    pub fn as_str(self) -> &'static str {
        match self {
            HashStrength::Md5 => "MD5",
            HashStrength::Sha256 => "SHA-256",
            HashStrength::Sha512_256 => "SHA-512-256",
        }
    }
}

impl Algorithm {
    /// The hash family: the policy's minimum, and the preference when a response carries
    /// several challenges (stronger first, RFC 8760 §2.4).
    pub fn strength(self) -> HashStrength {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => HashStrength::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashStrength::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => HashStrength::Sha512_256,
        }
    }
}

/// Which challenges the gateway answers (config keys `min_digest_algorithm`,
/// `allow_rfc2069_digest`). The registrar chooses the challenge, and a hostile registrar (or
/// anyone who can rewrite its responses) chooses the weakest: the policy sets the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DigestPolicy {
    /// Challenges with a weaker algorithm are not answered. Default MD5 (all are answered).
    pub min_algorithm: HashStrength,
    /// Answer challenges without `qop` (RFC 2069). Such an answer depends on the nonce alone —
    /// no client nonce, no nonce count — so whoever sees it can replay it for as long as the
    /// registrar accepts that nonce. Default `false`.
    pub allow_rfc2069: bool,
}

impl DigestPolicy {
    /// Answers everything this module implements (what [`Challenge::choose`] applies).
    pub const PERMISSIVE: DigestPolicy = DigestPolicy {
        min_algorithm: HashStrength::Md5,
        allow_rfc2069: true,
    };

    /// Whether `ch` may be answered under this policy.
    pub fn check(&self, ch: &Challenge) -> Result<(), PolicyRefusal> {
        if ch.algorithm.strength() < self.min_algorithm {
            return Err(PolicyRefusal::AlgorithmTooWeak {
                offered: ch.algorithm,
                min: self.min_algorithm,
            });
        }
        if ch.qop.is_none() && !self.allow_rfc2069 {
            return Err(PolicyRefusal::NoQop);
        }
        Ok(())
    }
}

/// Why the policy refuses a challenge (the gateway reports `sip_auth_failed` with this text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyRefusal {
    /// The algorithm is below `min_digest_algorithm`.
    AlgorithmTooWeak {
        /// What the registrar offered (its strongest usable challenge).
        offered: Algorithm,
        /// The configured minimum.
        min: HashStrength,
    },
    /// No `qop`, and `allow_rfc2069_digest` is off.
    NoQop,
}

impl fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyRefusal::AlgorithmTooWeak { offered, min } => write!(
                f,
                "the registrar offers digest {}, weaker than min_digest_algorithm = \"{}\"",
                offered.as_str(),
                min.as_str()
            ),
            PolicyRefusal::NoQop => f.write_str(
                "the registrar's challenge has no qop (RFC 2069: the answer could be replayed), \
                 refused unless allow_rfc2069_digest = true",
            ),
        }
    }
}

/// Quality of protection chosen for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// `auth`.
    Auth,
    /// `auth-int` (integrity over the body, which is empty for REGISTER).
    AuthInt,
}

/// One parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back when present.
    pub opaque: Option<String>,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Algorithm,
    /// The qop to answer with: `auth` preferred, `auth-int` if it is the only one offered,
    /// `None` when the challenge has no qop.
    pub qop: Option<Qop>,
    /// `stale=true`: the credentials were right but the nonce was old.
    pub stale: bool,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeError {
    /// Not the `Digest` scheme.
    NotDigest,
    /// The parameter list is not valid syntax.
    Syntax(&'static str),
    /// A required parameter (`realm`, `nonce`) is missing.
    Missing(&'static str),
    /// The algorithm is not one we implement.
    UnsupportedAlgorithm(String),
    /// The challenge offers only qop values we do not implement.
    UnsupportedQop(String),
    /// Every usable challenge is refused by the [`DigestPolicy`].
    Policy(PolicyRefusal),
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengeError::NotDigest => f.write_str("not a Digest challenge"),
            ChallengeError::Syntax(why) => write!(f, "bad challenge syntax: {why}"),
            ChallengeError::Missing(p) => write!(f, "challenge without {p}"),
            ChallengeError::UnsupportedAlgorithm(a) => write!(f, "unsupported algorithm {a}"),
            ChallengeError::UnsupportedQop(q) => write!(f, "unsupported qop {q}"),
            ChallengeError::Policy(why) => why.fmt(f),
        }
    }
}

impl std::error::Error for ChallengeError {}

/// Whether `c` is a control character (RFC 5234 CTL), tab included.
fn is_ctl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

/// Parses `auth-param` pairs: `name=token` or `name="quoted \" string"`, separated by commas
/// with optional whitespace. Names are returned lower-case, quoted values unescaped.
pub fn parse_params(s: &str) -> Result<Vec<(String, String)>, ChallengeError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        while i < b.len() && b[i] == b',' {
            i += 1;
            skip_ws(&mut i);
        }
        if i >= b.len() {
            return Ok(out);
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b"-_.".contains(&b[i])) {
            i += 1;
        }
        if i == start {
            return Err(ChallengeError::Syntax("expected a parameter name"));
        }
        let name = s[start..i].to_ascii_lowercase();
        skip_ws(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err(ChallengeError::Syntax(
                "expected '=' after a parameter name",
            ));
        }
        i += 1;
        skip_ws(&mut i);
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            loop {
                match b.get(i) {
                    None => return Err(ChallengeError::Syntax("unterminated quoted string")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let Some(&c) = b.get(i + 1) else {
                            return Err(ChallengeError::Syntax("unterminated quoted string"));
                        };
                        v.push(c);
                        i += 2;
                    }
                    Some(&c) => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            // Values are echoed into the Authorization header: a control character (CR and LF
            // above all) would let the registrar inject header lines (RFC 3261 qdtext has none).
            if v.iter().any(|&c| is_ctl(c)) {
                return Err(ChallengeError::Syntax(
                    "control character in a quoted string",
                ));
            }
            String::from_utf8(v).map_err(|_| ChallengeError::Syntax("quoted string not UTF-8"))?
        } else {
            let vs = i;
            while i < b.len() && !matches!(b[i], b',' | b' ' | b'\t' | b'"') {
                i += 1;
            }
            if vs == i {
                return Err(ChallengeError::Syntax("empty parameter value"));
            }
            if b[vs..i].iter().any(|&c| is_ctl(c)) {
                return Err(ChallengeError::Syntax(
                    "control character in a parameter value",
                ));
            }
            s[vs..i].to_owned()
        };
        out.push((name, value));
        skip_ws(&mut i);
        if i < b.len() && b[i] != b',' {
            return Err(ChallengeError::Syntax("expected ',' between parameters"));
        }
    }
}

impl Challenge {
    /// Parses one `WWW-Authenticate` / `Proxy-Authenticate` header value.
    pub fn parse(value: &str) -> Result<Challenge, ChallengeError> {
        let value = value.trim();
        let (scheme, rest) = value
            .split_once([' ', '\t'])
            .ok_or(ChallengeError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(ChallengeError::NotDigest);
        }
        let params = parse_params(rest)?;
        let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let realm = get("realm").ok_or(ChallengeError::Missing("realm"))?;
        let nonce = get("nonce").ok_or(ChallengeError::Missing("nonce"))?;
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a)
                .ok_or_else(|| ChallengeError::UnsupportedAlgorithm(a.to_owned()))?,
        };
        let qop = match get("qop") {
            None => None,
            Some(q) => {
                let offered: Vec<String> = q
                    .split(',')
                    .map(|x| x.trim().to_ascii_lowercase())
                    .collect();
                if offered.iter().any(|x| x == "auth") {
                    Some(Qop::Auth)
                } else if offered.iter().any(|x| x == "auth-int") {
                    Some(Qop::AuthInt)
                } else {
                    return Err(ChallengeError::UnsupportedQop(q.to_owned()));
                }
            }
        };
        Ok(Challenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: get("opaque").map(str::to_owned),
            algorithm,
            qop,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Picks the challenge to answer from several header values: the strongest supported
    /// algorithm; the error of the first one when none is usable. No policy: every challenge
    /// this module implements is answered (see [`Challenge::choose_with`]).
    pub fn choose<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Challenge, ChallengeError> {
        Challenge::choose_with(values, &DigestPolicy::PERMISSIVE)
    }

    /// Picks the challenge to answer from several header values: among those `policy` allows,
    /// the strongest algorithm (preferring one with qop among equals). When none is allowed,
    /// the policy's refusal of the strongest usable one (`ChallengeError::Policy`); when none
    /// parses, the error of the first.
    pub fn choose_with<'a>(
        values: impl IntoIterator<Item = &'a str>,
        policy: &DigestPolicy,
    ) -> Result<Challenge, ChallengeError> {
        let rank = |c: &Challenge| (c.algorithm.strength(), c.qop.is_some());
        let mut best: Option<Challenge> = None;
        let mut refused: Option<(Challenge, PolicyRefusal)> = None;
        let mut first_err = None;
        for v in values {
            match Challenge::parse(v) {
                Ok(c) => match policy.check(&c) {
                    Ok(()) => {
                        if best.as_ref().is_none_or(|b| rank(&c) > rank(b)) {
                            best = Some(c);
                        }
                    }
                    Err(why) => {
                        if refused.as_ref().is_none_or(|(b, _)| rank(&c) > rank(b)) {
                            refused = Some((c, why));
                        }
                    }
                },
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match (best, refused) {
            (Some(c), _) => Ok(c),
            (None, Some((_, why))) => Err(ChallengeError::Policy(why)),
            (None, None) => Err(first_err.unwrap_or(ChallengeError::Missing("challenge"))),
        }
    }
}

/// Quotes a value for a header parameter (`"` and `\` escaped).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A challenge being answered, by REGISTER and by the requests of a call alike: the challenge,
/// the header its answers go in, our cnonce and the last nonce count used.
#[derive(Debug)]
pub struct Answered {
    /// The challenge.
    pub challenge: Challenge,
    /// From a 407 (`Proxy-Authorization`), not a 401 (`Authorization`).
    proxy: bool,
    cnonce: String,
    nc: u32,
}

impl Answered {
    /// Starts answering `challenge` (of a 407 when `proxy`) with the client nonce `cnonce`.
    pub fn new(challenge: Challenge, proxy: bool, cnonce: String) -> Answered {
        Answered {
            challenge,
            proxy,
            cnonce,
            nc: 0,
        }
    }

    /// The credentials header (name and value) of the next request, the nonce count advanced.
    pub fn next_header(
        &mut self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
    ) -> (&'static str, String) {
        self.nc += 1;
        let value = authorization(
            &self.challenge,
            &Answer {
                username,
                password,
                method,
                uri,
                cnonce: &self.cnonce,
                nc: self.nc,
            },
        );
        let name = if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        (name, value)
    }
}

/// The inputs of one answer besides the challenge.
pub struct Answer<'a> {
    /// Digest username (the token's `authenticationName`).
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
    /// Request method (`REGISTER`).
    pub method: &'a str,
    /// The digest-uri (the Request-URI).
    pub uri: &'a str,
    /// Client nonce (used with qop and `-sess`).
    pub cnonce: &'a str,
    /// Nonce count for this nonce, starting at 1.
    pub nc: u32,
}

/// The `response` value (RFC 7616 §3.4.1).
///
/// The password and HA1 (which is as good as the password for this realm) are fed to the
/// hasher piece by piece, never joined into a buffer of their own: no copy of either is left
/// behind in memory (`tests/digest_secrets.rs` watches every freed heap block for them).
pub fn response(ch: &Challenge, a: &Answer<'_>) -> String {
    let alg = ch.algorithm;
    let (nonce, cnonce) = (ch.nonce.as_bytes(), a.cnonce.as_bytes());
    let mut ha1 = alg.hash_parts(&[
        a.username.as_bytes(),
        b":",
        ch.realm.as_bytes(),
        b":",
        a.password.as_bytes(),
    ]);
    if alg.is_sess() {
        ha1 = alg.hash_parts(&[ha1.as_bytes(), b":", nonce, b":", cnonce]);
    }
    let (method, uri) = (a.method.as_bytes(), a.uri.as_bytes());
    let ha2 = match ch.qop {
        Some(Qop::AuthInt) => {
            let body = alg.hash_parts(&[b""]);
            alg.hash_parts(&[method, b":", uri, b":", body.as_bytes()])
        }
        _ => alg.hash_parts(&[method, b":", uri]),
    };
    let response = match ch.qop {
        Some(q) => {
            let qop: &[u8] = if q == Qop::Auth { b"auth" } else { b"auth-int" };
            let nc = format!("{:08x}", a.nc);
            alg.hash_parts(&[
                ha1.as_bytes(),
                b":",
                nonce,
                b":",
                nc.as_bytes(),
                b":",
                cnonce,
                b":",
                qop,
                b":",
                ha2.as_bytes(),
            ])
        }
        None => alg.hash_parts(&[ha1.as_bytes(), b":", nonce, b":", ha2.as_bytes()]),
    };
    response.as_str().to_owned()
}

/// The full `Authorization` / `Proxy-Authorization` header value answering `ch`.
pub fn authorization(ch: &Challenge, a: &Answer<'_>) -> String {
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{}\", algorithm={}",
        quote(a.username),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(a.uri),
        response(ch, a),
        ch.algorithm.as_str()
    );
    if let Some(q) = ch.qop {
        let qop = if q == Qop::Auth { "auth" } else { "auth-int" };
        out.push_str(&format!(
            ", qop={qop}, nc={:08x}, cnonce={}",
            a.nc,
            quote(a.cnonce)
        ));
    } else if ch.algorithm.is_sess() {
        out.push_str(&format!(", cnonce={}", quote(a.cnonce)));
    }
    if let Some(o) = &ch.opaque {
        out.push_str(&format!(", opaque={}", quote(o)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1 example (method GET, uri /dir/index.html).
    const RFC7616_MD5: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;

    fn rfc_answer() -> Answer<'static> {
        Answer {
            username: "Mufasa",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            nc: 1,
        }
    }

    #[test]
    fn control_characters_in_challenges_are_refused() {
        // Found by the digest_challenge fuzz target: a realm with CR/LF came back in the
        // Authorization header, letting the registrar inject header lines.
        for bad in [
            "Digest realm=\"a\r\nVia: x\", nonce=\"n\"",
            "Digest realm=\"a\\\nb\", nonce=\"n\"",
            "Digest realm=\"r\", nonce=\"n\u{1}\"",
            "Digest realm=\"r\", nonce=n\u{0}x",
            "Digest realm=\"r\", nonce=\"n\", opaque=\"\u{7f}\"",
        ] {
            assert!(
                matches!(Challenge::parse(bad), Err(ChallengeError::Syntax(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rfc7616_md5_and_sha256_vectors() {
        let md5 = Challenge::parse(RFC7616_MD5).unwrap();
        assert_eq!(md5.qop, Some(Qop::Auth));
        assert_eq!(
            response(&md5, &rfc_answer()),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        let sha =
            Challenge::parse(&RFC7616_MD5.replace("algorithm=MD5", "algorithm=SHA-256")).unwrap();
        assert_eq!(sha.algorithm, Algorithm::Sha256);
        assert_eq!(
            response(&sha, &rfc_answer()),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_example() {
        // RFC 2617 §3.5.
        let ch = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let a = Answer {
            username: "Mufasa",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            cnonce: "0a4f113b",
            nc: 1,
        };
        assert_eq!(response(&ch, &a), "6629fae49393a05397450978507c4ef1");
        let h = authorization(&ch, &a);
        assert!(h.contains("nc=00000001"), "{h}");
        assert!(
            h.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#),
            "{h}"
        );
    }

    #[test]
    fn no_qop_is_rfc2069() {
        let ch = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
        let a = Answer {
            username: "u",
            password: "p",
            method: "REGISTER",
            uri: "sip:d",
            cnonce: "c",
            nc: 1,
        };
        let md5 = |data: &[u8]| Algorithm::Md5.hash_parts(&[data]).as_str().to_owned();
        let ha1 = md5(b"u:r:p");
        let ha2 = md5(b"REGISTER:sip:d");
        assert_eq!(response(&ch, &a), md5(format!("{ha1}:n:{ha2}").as_bytes()));
        assert!(!authorization(&ch, &a).contains("qop"));
    }

    #[test]
    fn params_quoting_stale_and_errors() {
        let ch = Challenge::parse(
            "digest  realm = \"a \\\"quoted\\\", realm\" ,nonce=abc,stale=TRUE,algorithm=md5",
        )
        .unwrap();
        assert_eq!(ch.realm, "a \"quoted\", realm");
        assert_eq!(ch.nonce, "abc");
        assert!(ch.stale);
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(ChallengeError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"x\""),
            Err(ChallengeError::Missing("realm"))
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", algorithm=SHA-1"),
            Err(ChallengeError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y"),
            Err(ChallengeError::Syntax(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", qop=\"foo\""),
            Err(ChallengeError::UnsupportedQop(_))
        ));
    }

    #[test]
    fn chooses_the_strongest_supported_challenge() {
        let ch = Challenge::choose([
            "Digest realm=\"r\", nonce=\"1\", algorithm=MD5",
            "Digest realm=\"r\", nonce=\"2\", algorithm=SHA-256",
            "Digest realm=\"r\", nonce=\"3\", algorithm=SHA-1",
        ])
        .unwrap();
        assert_eq!(ch.nonce, "2");
        assert!(Challenge::choose(["Basic realm=\"x\""]).is_err());
        assert!(Challenge::choose([]).is_err());
    }

    /// Issue 14, item 11: a hostile registrar offers only what the policy refuses.
    #[test]
    fn policy_refuses_qop_less_challenges_by_default() {
        let policy = DigestPolicy::default();
        let rfc2069 = "Digest realm=\"r\", nonce=\"n\", algorithm=MD5";
        assert_eq!(
            Challenge::choose_with([rfc2069], &policy),
            Err(ChallengeError::Policy(PolicyRefusal::NoQop))
        );
        assert!(Challenge::choose_with([rfc2069], &DigestPolicy::PERMISSIVE).is_ok());
        let allowed = DigestPolicy {
            allow_rfc2069: true,
            ..DigestPolicy::default()
        };
        assert_eq!(
            Challenge::choose_with([rfc2069], &allowed).unwrap().qop,
            None
        );
        // Offered beside a qop challenge, the qop one is answered, whatever the order.
        let with_qop = "Digest realm=\"r\", nonce=\"q\", qop=\"auth\", algorithm=MD5";
        for values in [[rfc2069, with_qop], [with_qop, rfc2069]] {
            assert_eq!(Challenge::choose_with(values, &policy).unwrap().nonce, "q");
            assert_eq!(Challenge::choose_with(values, &allowed).unwrap().nonce, "q");
        }
        let message = ChallengeError::Policy(PolicyRefusal::NoQop).to_string();
        assert!(message.contains("allow_rfc2069_digest"), "{message}");
    }

    #[test]
    fn policy_minimum_algorithm() {
        let sha256_min = DigestPolicy {
            min_algorithm: HashStrength::Sha256,
            ..DigestPolicy::default()
        };
        let md5 = "Digest realm=\"r\", nonce=\"1\", qop=\"auth\", algorithm=MD5";
        let md5_sess = "Digest realm=\"r\", nonce=\"2\", qop=\"auth\", algorithm=MD5-sess";
        let sha = "Digest realm=\"r\", nonce=\"3\", qop=\"auth\", algorithm=SHA-256-sess";
        for refused in [md5, md5_sess] {
            assert_eq!(
                Challenge::choose_with([refused], &sha256_min),
                Err(ChallengeError::Policy(PolicyRefusal::AlgorithmTooWeak {
                    offered: Challenge::parse(refused).unwrap().algorithm,
                    min: HashStrength::Sha256,
                }))
            );
        }
        assert_eq!(
            Challenge::choose_with([md5, sha, md5_sess], &sha256_min)
                .unwrap()
                .nonce,
            "3"
        );
        let sha512_min = DigestPolicy {
            min_algorithm: HashStrength::Sha512_256,
            ..DigestPolicy::default()
        };
        let e = Challenge::choose_with([md5, sha], &sha512_min).unwrap_err();
        assert_eq!(
            e,
            ChallengeError::Policy(PolicyRefusal::AlgorithmTooWeak {
                offered: Algorithm::Sha256Sess,
                min: HashStrength::Sha512_256,
            }),
            "the strongest refused challenge is named"
        );
        assert!(
            e.to_string()
                .contains("min_digest_algorithm = \"SHA-512-256\""),
            "{e}"
        );
        // The policy does not hide syntax errors when nothing parses.
        assert!(matches!(
            Challenge::choose_with(["Digest realm=\"x"], &sha256_min),
            Err(ChallengeError::Syntax(_))
        ));
        assert!(HashStrength::Md5 < HashStrength::Sha256);
        assert!(HashStrength::Sha256 < HashStrength::Sha512_256);
    }

    #[test]
    fn username_is_quoted_safely() {
        let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=auth").unwrap();
        let a = Answer {
            username: "we\"ird\\",
            password: "p",
            method: "REGISTER",
            uri: "sip:d",
            cnonce: "c",
            nc: 2,
        };
        let h = authorization(&ch, &a);
        assert!(h.starts_with(r#"Digest username="we\"ird\\", "#), "{h}");
        assert!(h.contains("nc=00000002"));
    }
}
