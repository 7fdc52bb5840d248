//! The SIP account a verified token describes, with its claims checked against SIP's grammar
//! before any of them reaches a message: hosts must be hosts ([`Host`]: a bare IPv6 address is
//! accepted and written bracketed), the digest user name must hold no control character. The
//! login is escaped and the display name quoted where they are written.

use zeroize::Zeroizing;

use super::host::{Host, HostError};
use super::transport::Kind;
use super::uri::{Scheme, SipUri};

/// The SIP account a token describes.
pub struct Account {
    /// SIP user (`login`).
    pub login: String,
    /// SIP domain (Request-URI and AOR host).
    pub domain: Host,
    /// Digest username (`authenticationName`, default the login).
    pub auth_name: String,
    /// The SIP password.
    pub password: Zeroizing<String>,
    /// Display name for From/To.
    pub display_name: Option<String>,
    /// Transport: the token's, else UDP until server location picks one (NAPTR, SRV).
    pub transport: Kind,
    /// Whether the token names the transport; if not, DNS NAPTR records may choose it
    /// (RFC 3263 §4.1).
    pub transport_given: bool,
    /// Where to send: the outbound proxy or the domain.
    pub host: Host,
    /// Port at `host`; `None`: located with DNS NAPTR/SRV for a host name (RFC 3263).
    pub port: Option<u16>,
}

/// Which claim cannot go into a SIP message, and why. The text names the claim as the token
/// format does (it is sent to the client with `invalid_field`), never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// `domain` is not a host.
    #[error("field \"domain\" is not a host name or IP address ({0})")]
    Domain(HostError),
    /// `outboundProxy` is not a host.
    #[error("field \"outboundProxy\" is not a host name or IP address ({0})")]
    OutboundProxy(HostError),
    /// `authenticationName` holds a control character (it is written quoted, where a line
    /// break would end the header).
    #[error("field \"authenticationName\" contains a control character")]
    AuthName,
}

/// The claims an [`Account`] is made of, as the token carries them.
pub struct AccountClaims<'a> {
    /// `login`.
    pub login: &'a str,
    /// `domain`.
    pub domain: &'a str,
    /// `authenticationName` (the login when the token has none).
    pub auth_name: &'a str,
    /// `password`.
    pub password: &'a str,
    /// `visibleName`.
    pub display_name: Option<&'a str>,
    /// `outboundProxy`.
    pub outbound_proxy: Option<&'a str>,
    /// `port`.
    pub port: Option<u16>,
    /// The transport, when the token names one.
    pub transport: Option<Kind>,
}

impl Account {
    /// Checks the claims and builds the account. The target is `outboundProxy`, else `domain`.
    pub fn new(c: AccountClaims<'_>) -> Result<Account, AccountError> {
        let domain = Host::parse_claim(c.domain).map_err(AccountError::Domain)?;
        let host = match c.outbound_proxy {
            Some(p) => Host::parse_claim(p).map_err(AccountError::OutboundProxy)?,
            None => domain.clone(),
        };
        if c.auth_name.chars().any(char::is_control) {
            return Err(AccountError::AuthName);
        }
        Ok(Account {
            login: c.login.to_owned(),
            domain,
            auth_name: c.auth_name.to_owned(),
            password: Zeroizing::new(c.password.to_owned()),
            display_name: c.display_name.map(str::to_owned),
            transport: c.transport.unwrap_or(Kind::Udp),
            transport_given: c.transport.is_some(),
            host,
            port: c.port,
        })
    }

    /// The address of record, `sip:login@domain` (the login escaped, IPv6 bracketed).
    pub fn aor(&self) -> SipUri {
        SipUri::new(Scheme::Sip, Some(&self.login), self.domain.clone(), None)
    }

    /// The REGISTER Request-URI, `sip:domain`.
    pub fn registrar_uri(&self) -> SipUri {
        SipUri::new(Scheme::Sip, None, self.domain.clone(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims<'a>() -> AccountClaims<'a> {
        AccountClaims {
            login: "crm1",
            domain: "sip.example.org",
            auth_name: "crm1",
            password: "pw",
            display_name: None,
            outbound_proxy: None,
            port: None,
            transport: Some(Kind::Udp),
        }
    }

    /// Issue 12 / issue 14 item 7: a bare IPv6 domain made `sip:crm1@::1` and `REGISTER
    /// sip:::1`.
    /// The account of [`claims`] changed by `change`.
    fn account(change: impl FnOnce(&mut AccountClaims<'static>)) -> Result<Account, AccountError> {
        let mut c = claims();
        change(&mut c);
        Account::new(c)
    }

    #[test]
    fn a_bare_ipv6_domain_is_bracketed() {
        let a = account(|c| c.domain = "::1").unwrap();
        assert_eq!(a.aor().to_string(), "sip:crm1@[::1]");
        assert_eq!(a.registrar_uri().to_string(), "sip:[::1]");
        assert_eq!(a.host.bare(), "::1");
    }

    /// Issue 14 item 7: the old character check accepted `a]b[:c`.
    #[test]
    fn hosts_must_be_hosts() {
        for (domain, proxy, want) in [
            ("a]b[:c", None, AccountError::Domain(HostError::BadIpv6)),
            (
                "sip.test\r\nVia: x",
                None,
                AccountError::Domain(HostError::BadName),
            ),
            ("", None, AccountError::Domain(HostError::Empty)),
            (
                "sip.test",
                Some("127.0.0.1>;x\r\nRoute: <sip:evil"),
                AccountError::OutboundProxy(HostError::BadName),
            ),
            (
                "sip.test",
                Some("[::1"),
                AccountError::OutboundProxy(HostError::BadIpv6),
            ),
        ] {
            let e = account(|c| {
                c.domain = domain;
                c.outbound_proxy = proxy;
            })
            .err();
            assert_eq!(e, Some(want), "{domain:?} {proxy:?}");
        }
        let a = account(|c| {
            c.outbound_proxy = Some("[2001:db8::5]");
            c.port = Some(5070);
        })
        .unwrap();
        assert_eq!(a.host.to_string(), "[2001:db8::5]");
        assert_eq!(a.aor().to_string(), "sip:crm1@sip.example.org");
    }

    #[test]
    fn logins_are_escaped_and_auth_names_checked() {
        let a = account(|c| c.login = "a b@c").unwrap();
        assert_eq!(a.aor().to_string(), "sip:a%20b%40c@sip.example.org");
        let e = account(|c| c.auth_name = "crm1\r\nX: y").err();
        assert_eq!(e, Some(AccountError::AuthName));
        assert_eq!(
            AccountError::AuthName.to_string(),
            "field \"authenticationName\" contains a control character"
        );
    }
}
