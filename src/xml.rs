//! The XML of the claims: one empty `<root …/>` element whose attributes are the claims.
//!
//! Reading uses quick-xml and then enforces the narrow profile of `docs/token-format.md`: exactly
//! one element named `root`, no children, no text, no DOCTYPE, only the five predefined entities
//! and character references, no duplicate attributes, only XML 1.0 characters. Writing is done
//! here by hand, because the escaping must be exact (tab, CR and LF as character references) and
//! the output canonical so that legacy tokens are reproducible byte for byte.

use std::borrow::Cow;

use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::error::{Error, Result};

/// The name of the one element a claims document has.
pub(crate) const ROOT: &str = "root";

/// Whether `c` may appear in an XML 1.0 document (the `Char` production), given that Rust
/// strings cannot hold surrogates.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Whether every character of `s` may appear in an XML 1.0 document.
///
/// Works on bytes: in valid UTF-8 the only forbidden characters are the C0 controls other than
/// tab, LF and CR (single bytes below 0x20) and U+FFFE / U+FFFF (EF BF BE / EF BF BF), so the
/// common case is one pass that the compiler vectorises.
pub(crate) fn is_xml_text(s: &str) -> bool {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b < 0x20 || b == 0xEF) {
        return true;
    }
    s.chars().all(is_xml_char)
}

/// Whether `name` is an attribute name this format writes: an ASCII letter or `_`, then ASCII
/// letters, digits, `_`, `-` and `.` (no colon: namespaces are not part of the format).
pub(crate) fn is_attribute_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name.len() <= 64
}

/// Appends `value` escaped for a double-quoted attribute value.
fn escape_into(out: &mut String, value: &str) {
    let mut rest = value;
    while let Some(pos) = rest.find(['&', '<', '>', '"', '\'', '\t', '\n', '\r']) {
        out.push_str(&rest[..pos]);
        out.push_str(match rest.as_bytes()[pos] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            b'\t' => "&#9;",
            b'\n' => "&#10;",
            _ => "&#13;",
        });
        rest = &rest[pos + 1..];
    }
    out.push_str(rest);
}

/// Writes claims XML: `<root name="value" …/>`, attributes in the order given.
///
/// Callers have already checked names with [`is_attribute_name`] and values with
/// [`is_xml_char`].
pub(crate) struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub(crate) fn with_capacity(capacity: usize) -> XmlWriter {
        let mut out = String::with_capacity(capacity);
        out.push('<');
        out.push_str(ROOT);
        XmlWriter { out }
    }

    pub(crate) fn attribute(&mut self, name: &str, value: &str) {
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        escape_into(&mut self.out, value);
        self.out.push('"');
    }

    pub(crate) fn finish(mut self) -> String {
        self.out.push_str("/>");
        self.out
    }
}

/// Parses claims XML and hands each attribute, decoded, to `visit` in document order.
///
/// `visit` must refuse a name it has seen before (with `InvalidXml`). Errors never quote
/// attribute values.
pub(crate) fn parse_attributes(
    xml: &[u8],
    mut visit: impl FnMut(&str, Cow<'_, str>) -> Result<()>,
) -> Result<()> {
    let text = std::str::from_utf8(xml).map_err(|e| {
        Error::InvalidXml(format!(
            "not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let mut reader = Reader::from_str(text);
    let mut seen_root = false;
    let mut inside_root = false;
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event().map_err(|e| ill_formed(&e, at))?;
        match event {
            Event::Eof => break,
            Event::Decl(_) if !seen_root => {}
            Event::Comment(_) => {}
            Event::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()) => {}
            Event::Start(e) if !seen_root => {
                read_root(&e, &mut visit)?;
                seen_root = true;
                inside_root = true;
            }
            Event::Empty(e) if !seen_root => {
                read_root(&e, &mut visit)?;
                seen_root = true;
            }
            Event::End(_) if inside_root => inside_root = false,
            Event::DocType(_) => {
                return Err(Error::InvalidXml("a DOCTYPE is not allowed".into()));
            }
            Event::Start(_) | Event::Empty(_) if inside_root => {
                return Err(Error::InvalidXml("child elements are not allowed".into()));
            }
            Event::Start(_) | Event::Empty(_) => {
                return Err(Error::InvalidXml("more than one root element".into()));
            }
            _ if inside_root => {
                return Err(Error::InvalidXml("the element must have no content".into()));
            }
            _ => {
                return Err(Error::InvalidXml(format!(
                    "unexpected content near byte {at} (only one <{ROOT}/> element is allowed)"
                )));
            }
        }
    }
    if !seen_root {
        return Err(Error::InvalidXml(format!("no <{ROOT}> element")));
    }
    if inside_root {
        return Err(Error::InvalidXml(format!("<{ROOT}> is not closed")));
    }
    Ok(())
}

/// Checks the root element's name and hands its attributes to `visit`.
fn read_root(
    element: &BytesStart<'_>,
    visit: &mut impl FnMut(&str, Cow<'_, str>) -> Result<()>,
) -> Result<()> {
    if element.name().as_ref() != ROOT {
        return Err(Error::InvalidXml(format!(
            "the element must be <{ROOT}>, found another element"
        )));
    }
    // Duplicate names are refused by the caller's `visit` (every claim slot takes one value),
    // which is cheaper than quick-xml's pairwise check; syntax is still checked here.
    let mut attributes = element.attributes();
    attributes.with_checks(false);
    for attribute in attributes {
        let attribute = attribute.map_err(|e| match e {
            AttrError::Duplicated(_, _) => Error::InvalidXml("duplicate attribute".into()),
            _ => Error::InvalidXml("ill-formed attribute".into()),
        })?;
        let name: &str = attribute.key.as_ref();
        if !is_attribute_name(name) {
            return Err(Error::InvalidXml(
                "attribute name outside the allowed characters".into(),
            ));
        }
        if attribute.value.contains('<') {
            return Err(Error::InvalidXml(format!(
                "attribute \"{name}\" contains a raw '<'"
            )));
        }
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|_| {
                Error::InvalidXml(format!(
                    "attribute \"{name}\" has an unknown entity or a bad character reference"
                ))
            })?;
        if !is_xml_text(&value) {
            return Err(Error::InvalidXml(format!(
                "attribute \"{name}\" contains a character that XML 1.0 forbids"
            )));
        }
        visit(name, value)?;
    }
    Ok(())
}

fn ill_formed(e: &quick_xml::Error, at: u64) -> Error {
    use quick_xml::errors::{Error as X, IllFormedError as I, SyntaxError as S};
    let what = match e {
        X::Syntax(S::UnclosedTag) => "an unclosed tag",
        X::Syntax(S::UnclosedDoctype) => "an unclosed DOCTYPE",
        X::Syntax(S::UnclosedComment) => "an unclosed comment",
        X::Syntax(_) => "a syntax error",
        X::IllFormed(I::UnmatchedEndTag(_)) | X::IllFormed(I::MismatchedEndTag { .. }) => {
            "an end tag that matches no start tag"
        }
        X::IllFormed(I::UnclosedReference) => "a '&' that starts no reference",
        X::IllFormed(_) => "ill-formed markup",
        X::Encoding(_) => "bad encoding",
        X::Escape(_) => "a bad reference",
        _ => "unreadable markup",
    };
    Error::InvalidXml(format!("{what} near byte {at}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        parse_attributes(xml.as_bytes(), |n, v| {
            if out.iter().any(|(seen, _)| seen == n) {
                return Err(Error::InvalidXml("duplicate attribute".into()));
            }
            out.push((n.to_owned(), v.into_owned()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn escapes_round_trip() {
        let value = "a&b<c>d\"e'f\tg\nh\ri ü€ 𝄞";
        let mut w = XmlWriter::with_capacity(64);
        w.attribute("password", value);
        let xml = w.finish();
        assert_eq!(
            xml,
            "<root password=\"a&amp;b&lt;c&gt;d&quot;e&apos;f&#9;g&#10;h&#13;i ü€ 𝄞\"/>"
        );
        assert_eq!(
            parse(&xml).unwrap(),
            vec![("password".into(), value.into())]
        );
    }

    #[test]
    fn literal_whitespace_is_normalised_like_any_xml_parser() {
        let got = parse("<root a=\"x\ty\nz\"/>").unwrap();
        assert_eq!(got[0].1, "x y z");
    }

    #[test]
    fn accepts_declaration_comments_and_explicit_end_tag() {
        let got = parse("<?xml version=\"1.0\"?>\n<!-- c --><root a=\"1\">\n</root>\n").unwrap();
        assert_eq!(got, vec![("a".into(), "1".into())]);
    }

    #[test]
    fn rejects_what_the_profile_forbids() {
        for bad in [
            "",
            "   ",
            "<root a=\"1\" a=\"2\"/>",
            "<!DOCTYPE root [<!ENTITY x \"y\">]><root a=\"&x;\"/>",
            "<root a=\"&x;\"/>",
            "<root><child/></root>",
            "<root/><root/>",
            "<root/>garbage",
            "<other a=\"1\"/>",
            "<root a=\"1\">text</root>",
            "<root a=\"1\"",
            "<root a=\"&#1;\"/>",
            "<root a=\"<\"/>",
            "<root>",
            "<root a=\"1\"/></root>",
            "&amp;<root/>",
            "<root a='1' b=\"&#xFFFE;\"/>",
            "<root 1a=\"x\"/>",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::InvalidXml(_))),
                "accepted {bad:?}: {:?}",
                parse(bad)
            );
        }
        assert!(matches!(
            parse_attributes(b"<root a=\"\xff\"/>", |_, _| Ok(())),
            Err(Error::InvalidXml(_))
        ));
    }
}
