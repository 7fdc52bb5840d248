//! Header parameters (RFC 3261 §25.1): the `*( SEMI generic-param )` after a Contact, To, From
//! or Via value, where `generic-param = token [ EQUAL gen-value ]` and `gen-value = token / host
//! / quoted-string`. A quoted value may hold `;`, `,`, `<` or `>` (`+sip.instance="<urn:…>"`),
//! so parameters are read by this grammar, never split at a character.

use std::borrow::Cow;

/// One parameter: its name and its value as written (a quoted value keeps its quotes; see
/// [`Param::unquoted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The name (case-insensitive in comparisons; see [`find`]).
    pub name: &'a str,
    /// The value as written, `None` for a bare `;name`.
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The value without quotes and with `\` escapes resolved.
    pub fn unquoted(&self) -> Option<Cow<'a, str>> {
        let v = self.value?;
        let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            return Some(Cow::Borrowed(v));
        };
        if !inner.contains('\\') {
            return Some(Cow::Borrowed(inner));
        }
        let mut out = String::with_capacity(inner.len());
        let mut escaped = false;
        for c in inner.chars() {
            if escaped || c != '\\' {
                out.push(c);
                escaped = false;
            } else {
                escaped = true;
            }
        }
        Some(Cow::Owned(out))
    }
}

/// Why a parameter list is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// Something other than `;` where the next parameter should start.
    #[error("expected ';' before a parameter")]
    ExpectedSemicolon,
    /// A parameter name that is empty or not a token.
    #[error("bad parameter name")]
    BadName,
    /// `name=` with nothing, or with characters no value may have.
    #[error("bad parameter value")]
    BadValue,
    /// A quoted value without its closing quote.
    #[error("unterminated quoted parameter value")]
    UnterminatedQuote,
}

/// RFC 3261 `token` characters.
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_lws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A `gen-value` that is a token or a host (IPv6 references bring `[`, `]` and `:`).
fn is_value_char(b: u8) -> bool {
    is_token_char(b) || b == b'[' || b == b']' || b == b':'
}

/// The length of the quoted string at the start of `s` (which starts with `"`), quotes
/// included. Control characters other than tab are refused (they would end a header line).
pub fn quoted_len(s: &str) -> Result<usize, ParamError> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok(i + 1),
            b'\\' if i + 1 < b.len() && b[i + 1] != b'\r' && b[i + 1] != b'\n' => i += 2,
            c if (c < 0x20 && c != b'\t') || c == 0x7f => return Err(ParamError::BadValue),
            _ => i += 1,
        }
    }
    Err(ParamError::UnterminatedQuote)
}

/// Parses `*( LWS ";" LWS name [ LWS "=" LWS value ] ) LWS`: everything after a header value's
/// main part. Empty input is an empty list.
pub fn parse(s: &str) -> Result<Vec<Param<'_>>, ParamError> {
    let b = s.as_bytes();
    let skip = |mut i: usize| {
        while i < b.len() && is_lws(b[i]) {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = skip(0);
    while i < b.len() {
        if b[i] != b';' {
            return Err(ParamError::ExpectedSemicolon);
        }
        i = skip(i + 1);
        let start = i;
        while i < b.len() && is_token_char(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(ParamError::BadName);
        }
        let name = &s[start..i];
        i = skip(i);
        let mut value = None;
        if i < b.len() && b[i] == b'=' {
            i = skip(i + 1);
            let vstart = i;
            if i < b.len() && b[i] == b'"' {
                i += quoted_len(&s[i..])?;
            } else {
                while i < b.len() && is_value_char(b[i]) {
                    i += 1;
                }
            }
            if i == vstart {
                return Err(ParamError::BadValue);
            }
            value = Some(&s[vstart..i]);
            i = skip(i);
        }
        out.push(Param { name, value });
    }
    Ok(out)
}

/// The first parameter called `name` (case-insensitive).
pub fn find<'p, 'a>(params: &'p [Param<'a>], name: &str) -> Option<&'p Param<'a>> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(name: &'a str, value: Option<&'a str>) -> Param<'a> {
        Param { name, value }
    }

    #[test]
    fn names_values_and_quoted_strings() {
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(parse("  "), Ok(vec![]));
        assert_eq!(
            parse(r#";expires=600;+sip.instance="<urn:uuid:0001>";lr"#),
            Ok(vec![
                p("expires", Some("600")),
                p("+sip.instance", Some("\"<urn:uuid:0001>\"")),
                p("lr", None),
            ])
        );
        assert_eq!(
            parse(r#" ; x = "a;b,c" ; y=1 "#),
            Ok(vec![p("x", Some("\"a;b,c\"")), p("y", Some("1"))])
        );
        assert_eq!(
            parse(";received=[2001:db8::1];rport=5060"),
            Ok(vec![
                p("received", Some("[2001:db8::1]")),
                p("rport", Some("5060"))
            ])
        );
    }

    #[test]
    fn unquoting_resolves_escapes() {
        let v = parse(r#";a="x\"y\\z";b=tok"#).unwrap();
        assert_eq!(v[0].unquoted().as_deref(), Some(r#"x"y\z"#));
        assert_eq!(v[1].unquoted().as_deref(), Some("tok"));
        assert_eq!(find(&v, "B").map(|p| p.name), Some("b"));
        assert_eq!(find(&v, "c"), None);
    }
}
