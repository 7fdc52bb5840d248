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
    match parse_canonical(text) {
        Some(attributes) => {
            for (name, value) in attributes {
                visit(name, value)?;
            }
            Ok(())
        }
        None => parse_general(text, visit),
    }
}

/// The most attributes the fast path takes; more go through the general parser.
const FAST_PATH_MAX_ATTRIBUTES: usize = 24;

/// Fast path for the shape issuers write: `<root` then ` name="value"` pairs, then `/>`, with
/// nothing but whitespace around. Returns the decoded attributes only when the text has exactly
/// that shape and every value is acceptable; for anything else (comments, a declaration, an end
/// tag, single quotes, literal tab/CR/LF in a value, bad references, forbidden characters) it
/// returns `None` and [`parse_general`] decides — so the result is always the one the general
/// parser would give (a property test checks this on generated documents).
fn parse_canonical(text: &str) -> Option<Vec<(&str, Cow<'_, str>)>> {
    // One pass over the bytes. Every position cut at is an ASCII delimiter, so the slices of
    // `text` fall on character boundaries.
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let bytes = text.as_bytes();
    let (mut i, mut end) = (0, bytes.len());
    while i < end && is_space(bytes[i]) {
        i += 1;
    }
    while end > i && is_space(bytes[end - 1]) {
        end -= 1;
    }
    let element = &bytes[i..end];
    if element.len() < 7 || !element.starts_with(b"<root") || !element.ends_with(b"/>") {
        return None;
    }
    i += 5;
    end -= 2;
    let mut out = Vec::with_capacity(14);
    loop {
        let space_start = i;
        while i < end && is_space(bytes[i]) {
            i += 1;
        }
        if i == end {
            return Some(out);
        }
        if i == space_start || out.len() == FAST_PATH_MAX_ATTRIBUTES {
            return None; // no whitespace before the attribute, or very many attributes
        }
        let name_len = memchr::memchr(b'=', &bytes[i..end])?;
        let name = &text[i..i + name_len];
        i += name_len;
        if i + 1 >= end || bytes[i + 1] != b'"' || !is_attribute_name(name) {
            return None;
        }
        i += 2;
        let value_len = memchr::memchr2(b'"', b'<', &bytes[i..end])?;
        let raw = &text[i..i + value_len];
        i += value_len;
        if bytes[i] != b'"' {
            return None; // a raw '<': the general parser reports it
        }
        i += 1;
        // Control characters (tab, CR, LF need normalising; the rest are forbidden) go to the
        // general parser; a possible U+FFFE/U+FFFF (lead byte EF) gets the exact check below.
        let (control, maybe_nonchar) = raw.bytes().fold((false, false), |(c, n), b| {
            (c | (b < 0x20), n | (b == 0xEF))
        });
        if control {
            return None;
        }
        let has_reference = memchr::memchr(b'&', raw.as_bytes()).is_some();
        let value = if has_reference {
            quick_xml::escape::unescape(raw).ok()?
        } else {
            Cow::Borrowed(raw)
        };
        if (has_reference || maybe_nonchar) && !is_xml_text(&value) {
            return None;
        }
        out.push((name, value));
    }
}

/// The general parser: quick-xml, held to the profile described at the top of this module.
fn parse_general(
    text: &str,
    mut visit: impl FnMut(&str, Cow<'_, str>) -> Result<()>,
) -> Result<()> {
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

    fn parse_slow(xml: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        parse_general(xml, |n, v| {
            out.push((n.to_owned(), v.into_owned()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn fast_path_takes_the_canonical_shape_and_agrees_with_the_general_parser() {
        for xml in [
            r#"<root login="u" password="a&amp;b&#9;c&#x1D11E;" domain="d"/>"#,
            r#"  <root a="1"   b=""	/>
"#,
            r#"<root/>"#,
        ] {
            let fast: Vec<(String, String)> = parse_canonical(xml)
                .unwrap_or_else(|| panic!("fast path refused {xml:?}"))
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.into_owned()))
                .collect();
            assert_eq!(fast, parse_slow(xml).unwrap(), "{xml}");
        }
        for xml in [
            r#"<root a="1"b="2"/>"#,
            r#"<root a='1'/>"#,
            r#"<root a="&nbsp;"/>"#,
            r#"<root a="x	y"/>"#,
            r#"<root a="&#1;"/>"#,
            r#"<root a="1"></root>"#,
            r#"<!-- c --><root a="1"/>"#,
            r#"<root a = "1"/>"#,
        ] {
            assert!(parse_canonical(xml).is_none(), "fast path took {xml:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 4096, ..Default::default() })]

        /// Whenever the fast path answers, the general parser gives the same attributes.
        #[test]
        fn fast_path_agrees_with_the_general_parser(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                " ", "\t", "\n", "a", "b", "login", "x-1", "1a", "a:b", "=", "\"", "'", "&amp;",
                "&lt;", "&quot;", "&#9;", "&#10;", "&#x41;", "&#1;", "&#xFFFE;", "&nbsp;", "&",
                "<", ">", "/", "ü", "𝄞", "\u{1}", "</root>", "<!--c-->", "<root", "/>",
            ]), 0..14),
            wrap in proptest::bool::ANY,
        ) {
            let body: String = pieces.concat();
            let xml = if wrap { format!("<root {body}/>") } else { body };
            if let Some(fast) = parse_canonical(&xml) {
                let fast: Vec<(String, String)> =
                    fast.into_iter().map(|(n, v)| (n.to_owned(), v.into_owned())).collect();
                proptest::prop_assert_eq!(Ok(fast), parse_slow(&xml), "{:?}", xml);
            }
        }

        /// The same on documents of the canonical shape with awkward values, where the fast
        /// path answers most of the time.
        #[test]
        fn fast_path_agrees_on_attribute_lists(
            attrs in proptest::collection::vec((
                proptest::sample::select(vec!["login", "password", "x-1", "a.b", "1a", "a:b"]),
                proptest::collection::vec(proptest::sample::select(vec![
                    "v", " ", "\t", "&amp;", "&lt;", "&gt;", "&apos;", "&quot;", "&#9;", "&#13;",
                    "&#x1D11E;", "&#1;", "&#0;", "&#xD800;", "&#xFFFF;", "&bogus;", "&", "&#;",
                    "'", ">", "ü", "\u{7f}", "\u{1}",
                ]), 0..6),
                proptest::sample::select(vec![" ", "  ", "\n", "\t", ""]),
            ), 0..6),
        ) {
            let mut xml = String::from("<root");
            for (name, value, sep) in &attrs {
                xml.push_str(&format!("{sep} {name}=\"{}\"", value.concat()));
            }
            xml.push_str("/>");
            if let Some(fast) = parse_canonical(&xml) {
                let fast: Vec<(String, String)> =
                    fast.into_iter().map(|(n, v)| (n.to_owned(), v.into_owned())).collect();
                proptest::prop_assert_eq!(Ok(fast), parse_slow(&xml), "{:?}", xml);
            }
        }
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
