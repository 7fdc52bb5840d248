//! Addresses in From, To and Contact (RFC 3261 §20.10, §25.1): `name-addr` (`["Display"]
//! <uri>;params`) or `addr-spec` (`uri;params`, where the parameters belong to the header, not
//! the URI).
//!
//! Read by the grammar, left to right: a quoted display name may hold `<`, `>`, `,` or `;`, a
//! quoted parameter value too (`+sip.instance="<urn:uuid:…>"`), and neither changes where the
//! URI is or which parameters there are.

use std::borrow::Cow;

use super::params::{self, is_token_char, Param, ParamError};

/// One parsed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address<'a> {
    /// The display name, unquoted (`None` when there is none).
    pub display_name: Option<Cow<'a, str>>,
    /// The URI as written (between `<` and `>` in a name-addr).
    pub uri: &'a str,
    /// The header parameters after the address (`tag`, `expires`, …).
    pub params: Vec<Param<'a>>,
}

/// Why a header value is not an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// A quoted display name without its closing quote.
    #[error("unterminated display name")]
    UnterminatedDisplayName,
    /// A display name not followed by `<uri>`.
    #[error("expected '<' after the display name")]
    ExpectedAngle,
    /// `<` without a matching `>`.
    #[error("'<' without '>'")]
    UnclosedAngle,
    /// No URI (`<>`, an empty value), or one holding `<` or `"`.
    #[error("missing or malformed URI")]
    BadUri,
    /// The parameters after the address are not valid.
    #[error("{0}")]
    Params(#[from] ParamError),
}

fn is_lws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl<'a> Address<'a> {
    /// Parses one address (one element of a Contact list: split it with
    /// [`super::message::split_list`] first).
    pub fn parse(value: &'a str) -> Result<Address<'a>, AddressError> {
        let s = value.trim_matches([' ', '\t']);
        let b = s.as_bytes();
        // A display name: a quoted string, or tokens and spaces up to `<`.
        let (display_name, angle) = if b.first() == Some(&b'"') {
            let len = params::quoted_len(s).map_err(|e| match e {
                ParamError::UnterminatedQuote => AddressError::UnterminatedDisplayName,
                _ => AddressError::ExpectedAngle,
            })?;
            let name = Param {
                name: "",
                value: Some(&s[..len]),
            }
            .unquoted();
            let mut i = len;
            while i < b.len() && is_lws(b[i]) {
                i += 1;
            }
            if b.get(i) != Some(&b'<') {
                return Err(AddressError::ExpectedAngle);
            }
            (name, Some(i))
        } else {
            let mut i = 0;
            while i < b.len() && (is_token_char(b[i]) || is_lws(b[i])) {
                i += 1;
            }
            if b.get(i) == Some(&b'<') {
                let name = s[..i].trim_end_matches([' ', '\t']);
                ((!name.is_empty()).then_some(Cow::Borrowed(name)), Some(i))
            } else {
                (None, None)
            }
        };
        let (uri, tail) = match angle {
            Some(i) => {
                let inner = &s[i + 1..];
                let close = inner.find('>').ok_or(AddressError::UnclosedAngle)?;
                (&inner[..close], &inner[close + 1..])
            }
            // addr-spec: the URI ends at the first `;` or space; what follows are header
            // parameters.
            None => {
                let end = s.find([';', ' ', '\t']).unwrap_or(s.len());
                (&s[..end], &s[end..])
            }
        };
        if uri.is_empty() || uri.contains(['<', '"']) {
            return Err(AddressError::BadUri);
        }
        Ok(Address {
            display_name,
            uri,
            params: params::parse(tail)?,
        })
    }

    /// The parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param<'a>> {
        params::find(&self.params, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(a: &Address<'a>) -> Vec<(&'a str, Option<&'a str>)> {
        a.params.iter().map(|p| (p.name, p.value)).collect()
    }

    /// Issue 12: the `>` inside the quoted `+sip.instance` moved the URI's end.
    #[test]
    fn contact_with_a_quoted_angle_bracket_in_a_param() {
        let a = Address::parse(
            r#"<sip:st-ab@10.0.0.1:5060>;expires=600;+sip.instance="<urn:uuid:0001>""#,
        )
        .unwrap();
        assert_eq!(a.uri, "sip:st-ab@10.0.0.1:5060");
        assert_eq!(
            names(&a),
            vec![
                ("expires", Some("600")),
                ("+sip.instance", Some("\"<urn:uuid:0001>\""))
            ]
        );
        assert_eq!(
            a.param("+SIP.INSTANCE").unwrap().unquoted().as_deref(),
            Some("<urn:uuid:0001>")
        );
    }

    /// Issue 12: a quoted value holding `;` was split in two.
    #[test]
    fn quoted_param_value_with_a_semicolon() {
        let a = Address::parse(r#"<sip:a@h>;x="a;b";y=1"#).unwrap();
        assert_eq!(names(&a), vec![("x", Some("\"a;b\"")), ("y", Some("1"))]);
    }

    /// Issue 12: a `<` in the display name was taken for the URI's start.
    #[test]
    fn display_name_with_angle_brackets() {
        let a = Address::parse(r#""a<b>, \"c\"" <sip:x@h>;tag=1"#).unwrap();
        assert_eq!(a.display_name.as_deref(), Some(r#"a<b>, "c""#));
        assert_eq!(a.uri, "sip:x@h");
        assert_eq!(a.param("tag").and_then(|p| p.value), Some("1"));
    }

    #[test]
    fn token_display_names_and_addr_specs() {
        let a = Address::parse("Alice  Smith <sip:alice@h;transport=tcp> ; expires=60").unwrap();
        assert_eq!(a.display_name.as_deref(), Some("Alice  Smith"));
        assert_eq!(a.uri, "sip:alice@h;transport=tcp");
        assert_eq!(names(&a), vec![("expires", Some("60"))]);
        let a = Address::parse("<sip:b@h>").unwrap();
        assert_eq!(
            (a.display_name, a.uri, a.params.len()),
            (None, "sip:b@h", 0)
        );
        // addr-spec: the parameters are the header's.
        let a = Address::parse("sip:c@h;expires=5").unwrap();
        assert_eq!(a.uri, "sip:c@h");
        assert_eq!(names(&a), vec![("expires", Some("5"))]);
        let a = Address::parse("sip:[::1]:5060").unwrap();
        assert_eq!(a.uri, "sip:[::1]:5060");
    }
}
