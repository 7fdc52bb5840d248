//! Why a SIP transport failed: the error the transports ([`super::transport`], the shared UDP
//! socket of [`super::udp`]) report and the REGISTER client acts on. A leaf module, so the
//! transports depend on it and not on each other.
//!
//! The texts name what happened, never an address: they reach the browser inside
//! `sip_unreachable` messages, and the registrar's resolved IP address and port are internal
//! (issue 14 item 12). Whoever holds the address logs it beside the error.

use std::io;

/// A transport failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The registrar's port refused: ICMP port unreachable on UDP, a TCP reset to the connect.
    #[error("connection refused")]
    Refused,
    /// An established connection was reset.
    #[error("connection reset by the registrar")]
    Reset,
    /// ICMP host or network unreachable, or no route.
    #[error("no route to the registrar")]
    NoRoute,
    /// The registrar closed the connection.
    #[error("connection closed by the registrar")]
    Closed,
    /// The registrar sent bytes on a stream that are not SIP (a stream cannot resynchronise).
    #[error("the registrar sent something that is not SIP")]
    Garbage,
    /// The TCP connect did not complete in time.
    #[error("connecting to the registrar timed out")]
    ConnectTimeout,
    /// Server location gave no address to try (the location errors themselves are
    /// [`super::dns::LocateError`]).
    #[error("the registrar has no address to try")]
    NoAddress,
    /// `transport="tls"` without a usable CA bundle.
    #[error("SIP over TLS is not configured (no CA bundle)")]
    TlsNotConfigured,
    /// The host cannot be checked against a certificate.
    #[error("the registrar's host is not a name a certificate can carry")]
    TlsName,
    /// The TLS handshake did not complete in time.
    #[error("TLS handshake with the registrar timed out")]
    TlsTimeout,
    /// The TLS handshake failed.
    #[error("TLS handshake with the registrar failed: {0}")]
    Tls(TlsFailure),
    /// Any other I/O error, by kind.
    #[error("I/O error: {0}")]
    Io(io::ErrorKind),
}

/// Why a TLS handshake failed, as far as the client may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsFailure {
    /// The certificate chain does not end at a CA in `sip_tls_ca_file`.
    #[error("the registrar's certificate is not signed by a trusted CA")]
    UnknownIssuer,
    /// The certificate does not carry the host name or IP address the token names.
    #[error("the registrar's certificate does not carry the host the token names")]
    NameMismatch,
    /// Expired or not yet valid.
    #[error("the registrar's certificate is expired or not yet valid")]
    Validity,
    /// Any other certificate problem (revoked, bad signature, wrong usage, unparsable).
    #[error("the registrar's certificate is not acceptable")]
    Certificate,
    /// Not a certificate problem: an alert, no common protocol version or cipher, a closed
    /// connection.
    #[error("no TLS session could be agreed")]
    Protocol,
}

impl TlsFailure {
    /// Classifies the I/O error a rustls handshake returned.
    pub fn of(e: &io::Error) -> TlsFailure {
        use rustls::CertificateError as C;
        let Some(rustls::Error::InvalidCertificate(c)) =
            e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
        else {
            return TlsFailure::Protocol;
        };
        match c {
            C::UnknownIssuer => TlsFailure::UnknownIssuer,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsFailure::NameMismatch,
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => TlsFailure::Validity,
            _ => TlsFailure::Certificate,
        }
    }
}

impl TransportError {
    /// Classifies an I/O error of a socket.
    pub fn of(e: &io::Error) -> TransportError {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => TransportError::Refused,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => TransportError::Reset,
            io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable => TransportError::NoRoute,
            io::ErrorKind::UnexpectedEof => TransportError::Closed,
            kind => TransportError::Io(kind),
        }
    }
}

impl From<io::Error> for TransportError {
    fn from(e: io::Error) -> TransportError {
        TransportError::of(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_by_kind() {
        let e = |k| io::Error::new(k, "10.0.0.1:5060 said no");
        for (kind, want) in [
            (io::ErrorKind::ConnectionRefused, TransportError::Refused),
            (io::ErrorKind::HostUnreachable, TransportError::NoRoute),
        ] {
            assert_eq!(TransportError::of(&e(kind)), want, "{kind:?}");
        }
        let other = TransportError::of(&e(io::ErrorKind::PermissionDenied));
        assert_eq!(other, TransportError::Io(io::ErrorKind::PermissionDenied));
        // The OS text (which may name an address) is not carried.
        assert!(!other.to_string().contains("10.0.0.1"), "{other}");
    }

    #[test]
    fn tls_failures_by_rustls_error() {
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let cert = |c| wrap(rustls::Error::InvalidCertificate(c));
        for (error, want) in [
            (
                cert(rustls::CertificateError::UnknownIssuer),
                TlsFailure::UnknownIssuer,
            ),
            (
                cert(rustls::CertificateError::NotValidForName),
                TlsFailure::NameMismatch,
            ),
            (
                cert(rustls::CertificateError::Expired),
                TlsFailure::Validity,
            ),
            (
                cert(rustls::CertificateError::BadSignature),
                TlsFailure::Certificate,
            ),
            (
                io::Error::from(io::ErrorKind::UnexpectedEof),
                TlsFailure::Protocol,
            ),
        ] {
            assert_eq!(TlsFailure::of(&error), want, "{error}");
        }
        for f in [
            TlsFailure::UnknownIssuer,
            TlsFailure::NameMismatch,
            TlsFailure::Validity,
            TlsFailure::Certificate,
        ] {
            assert!(f.to_string().contains("certificate"), "{f}");
        }
    }
}
