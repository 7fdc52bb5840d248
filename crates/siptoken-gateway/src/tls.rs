//! TLS with rustls (ring provider): the server side for `wss://` / `https://` (certificate and
//! key files from the configuration) and the client side for SIP over TLS (a CA bundle file,
//! else the platform's trusted CAs through `rustls-native-certs`). Errors name the file and the
//! problem, never a key's bytes.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate in {}", path.display()));
    }
    Ok(certs)
}

/// The server configuration for `tls_cert_file` (PEM chain, leaf first) and `tls_key_file`
/// (PEM private key: PKCS#8, PKCS#1 or SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "cannot read a PEM private key from {}: {}",
            key.display(),
            pem_error(&e)
        )
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} and its key do not make a usable TLS identity: {e}",
                cert.display()
            )
        })?;
    // HTTP/2 first: browsers then carry WebSockets over it (RFC 8441), several per connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client configuration for SIP over TLS: server certificates are verified against the CAs
/// in `ca_file` (PEM), with the host name (or IP address) the token names.
pub fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certificates(ca_file)?);
    if added == 0 {
        return Err(format!("no usable CA certificate in {}", ca_file.display()));
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

fn client_config_with(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A PEM error without the file's contents.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "no private key found".into(),
        Error::Io(io) => io.to_string(),
        _ => "malformed PEM".into(),
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
        assert!(e.contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(server_config(&empty, &empty)
            .unwrap_err()
            .contains("no PEM certificate"));
        assert!(client_config(&empty)
            .unwrap_err()
            .contains("no PEM certificate"));
    }
}
