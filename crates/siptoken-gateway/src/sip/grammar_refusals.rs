//! What the header-value grammars refuse, and with which error: one table for the host, URI,
//! parameter, Via and name-addr grammars, each case naming its grammar. A malformed host is a
//! case of the host grammar and, wrapped, of the URI and Via grammars that contain one; the
//! table keeps those side by side.

use super::address::{self, AddressError};
use super::host::{self, HostError};
use super::params::{self, ParamError};
use super::uri::{SipUri, UriError};
use super::via::{self, ViaError};

/// One malformed input and the error its grammar must refuse it with.
enum Refused {
    Host(&'static str, HostError),
    Uri(&'static str, UriError),
    Params(&'static str, ParamError),
    Via(&'static str, ViaError),
    Address(&'static str, AddressError),
}

#[test]
fn malformed_values_are_refused_with_their_reason() {
    use Refused::*;
    for case in [
        Host("", HostError::Empty),
        Host("a]b[:c", HostError::BadIpv6),
        Host("[::1", HostError::BadIpv6),
        Host("::1]", HostError::BadIpv6),
        Host("[sip.example.org]", HostError::BadIpv6),
        Host("[fe80::1%eth0]", HostError::BadIpv6),
        Host("::1", HostError::UnbracketedIpv6),
        Host("a:b", HostError::BadName),
        Host("10.0.0.256", HostError::BadIpv4),
        Host("1.2.3", HostError::BadIpv4),
        Host("-a.example", HostError::BadName),
        Host("a-.example", HostError::BadName),
        Host("a..example", HostError::BadName),
        Host(".example", HostError::BadName),
        Host("a.1example", HostError::BadName),
        Host("under_score.example", HostError::BadName),
        Host("a b", HostError::BadName),
        Host("a.org\r\nVia: x", HostError::BadName),
        Host("a.org>;x", HostError::BadName),
        Host("é.example", HostError::BadName),
        Uri("tel:+123", UriError::NotSip),
        Uri("sip", UriError::NotSip),
        Uri("sip:::1", UriError::Host(HostError::UnbracketedIpv6)),
        Uri("sip:crm1@::1", UriError::Host(HostError::UnbracketedIpv6)),
        Uri("sip:@h", UriError::BadUser),
        Uri("sip:a b@h", UriError::BadUser),
        Uri("sip:a%2@h", UriError::BadUser),
        Uri("sip:a@", UriError::Host(HostError::Empty)),
        Uri("sip:a@h:", UriError::BadPort),
        Uri("sip:a@h:65536", UriError::BadPort),
        Uri("sip:a@h:5x", UriError::BadPort),
        Uri("sip:a@[::1]x", UriError::BadParams),
        Uri("sip:a@h;x=<y>", UriError::BadParams),
        Uri("sip:a@h;x=\r\n", UriError::BadParams),
        Params("x=1", ParamError::ExpectedSemicolon),
        Params(";", ParamError::BadName),
        Params(";=1", ParamError::BadName),
        Params(";a=", ParamError::BadValue),
        Params(";a=\"open", ParamError::UnterminatedQuote),
        Params(";a=\"x\r\ny\"", ParamError::BadValue),
        Params(";a=1 b", ParamError::ExpectedSemicolon),
        Params(";a=<x>", ParamError::BadValue),
        Via("", ViaError::Protocol),
        Via("SIP/2.0 127.0.0.1", ViaError::Protocol),
        Via("SIP/3.0/UDP 127.0.0.1", ViaError::Protocol),
        Via("HTTP/2.0/UDP 127.0.0.1", ViaError::Protocol),
        Via("SIP/2.0/UDP", ViaError::Protocol),
        Via("SIP/2.0/UDP ::1", ViaError::Host(HostError::Empty)),
        Via("SIP/2.0/UDP a]b[:c", ViaError::Host(HostError::BadIpv6)),
        Via("SIP/2.0/UDP h:99999", ViaError::Port),
        Via("SIP/2.0/UDP h:;branch=x", ViaError::Port),
        Via(
            "SIP/2.0/UDP h junk",
            ViaError::Params(ParamError::ExpectedSemicolon),
        ),
        Address("", AddressError::BadUri),
        Address("<>", AddressError::BadUri),
        Address("\"open <sip:x@h>", AddressError::UnterminatedDisplayName),
        Address("\"name\" sip:x@h", AddressError::ExpectedAngle),
        Address("<sip:x@h", AddressError::UnclosedAngle),
        Address(
            "<sip:x@h> junk",
            AddressError::Params(ParamError::ExpectedSemicolon),
        ),
        Address(
            "<sip:x@h>;a=\"x",
            AddressError::Params(ParamError::UnterminatedQuote),
        ),
        Address("na\"me <sip:x@h>", AddressError::BadUri),
    ] {
        match case {
            Host(text, why) => assert_eq!(host::Host::parse(text), Err(why), "{text:?}"),
            Uri(text, why) => assert_eq!(SipUri::parse(text), Err(why), "{text:?}"),
            Params(text, why) => assert_eq!(params::parse(text), Err(why), "{text:?}"),
            Via(text, why) => assert_eq!(via::Via::parse(text), Err(why), "{text:?}"),
            Address(text, why) => assert_eq!(address::Address::parse(text), Err(why), "{text:?}"),
        }
    }
}
