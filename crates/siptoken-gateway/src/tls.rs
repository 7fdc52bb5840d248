//! TLS with rustls (ring provider): the server side for `wss://` / `https://` (certificate and
//! key files from the configuration) and the client side for SIP over TLS (a CA bundle file,
//! else the platform's trusted CAs through `rustls-native-certs`). Errors name the file and the
//! problem, never a key's bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a TLS configuration could not be built. The texts name the file and the problem,
/// never a key's bytes.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate file could not be read.
    #[error("cannot read certificates from {}: {why}", path.display())]
    ReadCertificates {
        /// The file.
        path: PathBuf,
        /// What went wrong (I/O).
        why: String,
    },
    /// A certificate file holds a malformed PEM block.
    #[error("bad PEM certificate in {}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate file holds no certificate.
    #[error("no PEM certificate in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A CA file holds no certificate rustls can use as a trust anchor.
    #[error("no usable CA certificate in {}", path.display())]
    NoUsableCa {
        /// The file.
        path: PathBuf,
    },
    /// The private key file could not be read or holds no key.
    #[error("cannot read a PEM private key from {}: {why}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong, without the file's contents.
        why: &'static str,
    },
    /// The certificate and the key do not go together (or the key type is unsupported).
    #[error("{} and its key do not make a usable TLS identity: {why}", path.display())]
    Identity {
        /// The certificate file.
        path: PathBuf,
        /// rustls' reason.
        why: rustls::Error,
    },
    /// The crypto provider offers no protocol version rustls accepts.
    #[error("TLS: {0}")]
    Provider(rustls::Error),
    /// `sip_tls_ca_file` is unusable.
    #[error("sip_tls_ca_file: {0}")]
    SipCaFile(Box<TlsError>),
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::ReadCertificates {
            path: path.to_owned(),
            why: e.to_string(),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::BadCertificate {
            path: path.to_owned(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The server configuration for `tls_cert_file` (PEM chain, leaf first) and `tls_key_file`
/// (PEM private key: PKCS#8, PKCS#1 or SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        why: pem_error(&e),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Provider)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|why| TlsError::Identity {
            path: cert.to_owned(),
            why,
        })?;
    // HTTP/2 first: browsers then carry WebSockets over it (RFC 8441), several per connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client configuration for SIP over TLS: server certificates are verified against the CAs
/// in `ca_file` (PEM), with the host name (or IP address) the token names.
pub fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certificates(ca_file)?);
    if added == 0 {
        return Err(TlsError::NoUsableCa {
            path: ca_file.to_owned(),
        });
    }
    client_config_with(roots)
}

/// The client configuration for SIP over TLS without `sip_tls_ca_file`: the CAs the platform
/// trusts, as `rustls-native-certs` finds them — the files `SSL_CERT_FILE` and `SSL_CERT_DIR`
/// name when either is set, else the system store (on Debian, /etc/ssl/certs). `None`, with a
/// warning, when that yields no usable CA (SIP over TLS is then off); unreadable or malformed
/// entries are skipped with a warning.
pub fn native_client_config() -> Option<Arc<rustls::ClientConfig>> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("trusted CAs for SIP over TLS: {e}");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::warn!(
            ignored,
            "trusted CAs for SIP over TLS: unusable certificates skipped"
        );
    }
    if added == 0 {
        tracing::warn!("SIP over TLS disabled: the platform trusts no CA (set sip_tls_ca_file or SSL_CERT_FILE)");
        return None;
    }
    tracing::debug!(cas = added, "SIP over TLS trusts the platform's CAs");
    client_config_with(roots)
        .inspect_err(|e| tracing::warn!("SIP over TLS disabled: {e}"))
        .ok()
}

fn client_config_with(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Provider)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A PEM error without the file's contents.
fn pem_error(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "no private key found",
        Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => "no such file",
        Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => "permission denied",
        Error::Io(_) => "the file cannot be read",
        _ => "malformed PEM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = server_config(&missing, &missing).unwrap_err();
        assert!(matches!(e, TlsError::ReadCertificates { .. }), "{e:?}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        for e in [
            server_config(&empty, &empty).unwrap_err(),
            client_config(&empty).unwrap_err(),
        ] {
            assert!(matches!(e, TlsError::NoCertificate { .. }), "{e:?}");
            assert!(e.to_string().contains("no PEM certificate"), "{e}");
        }
    }
}
