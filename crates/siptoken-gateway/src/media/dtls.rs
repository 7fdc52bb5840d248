//! The DTLS factory of the browser legs: str0m's aws-lc-rs backend (dimpl), with one DTLS
//! configuration built once per process instead of once per call.
//!
//! Why this is written here: str0m's `aws-lc-rs` provider builds a fresh `dimpl::Config` for
//! every DTLS instance, and `dimpl::ConfigBuilder::build` validates the crypto provider each
//! time — known-answer tests that verify an ECDSA P-256 and a P-384 signature and run the key
//! exchanges. A profile of the gateway setting up 300 calls showed that validation as the
//! largest single cost of a call's setup (the P-384 verification alone about a fifth of the
//! gateway's CPU in the ramp). The configuration holds no per-connection state (dimpl takes it
//! as an `Arc` for that reason), so this provider validates and builds it once per MTU and hands
//! the same `Arc` to every instance. Everything else — certificate generation, the handshake,
//! SRTP keying — is dimpl's and str0m's, unchanged; [`DtlsInstance`] is a plain delegation.
//!
//! ```
//! let provider = siptoken_gateway::media::dtls::crypto_provider();
//! assert!(provider.dtls_provider.generate_certificate().is_some());
//! ```

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
};
use str0m::crypto::{CryptoError, CryptoProvider};

/// str0m's DTLS provider for certificates, and the configurations built so far, by MTU (str0m
/// passes the same MTU for every call of an `RtcConfig`, so this holds one or two entries).
#[derive(Debug)]
pub struct SharedConfigDtls {
    certificates: &'static dyn DtlsProvider,
    configs: Mutex<Vec<(Option<usize>, Arc<dimpl::Config>)>>,
}

impl SharedConfigDtls {
    /// Shares configurations; certificates come from `certificates` (str0m's provider).
    pub fn new(certificates: &'static dyn DtlsProvider) -> SharedConfigDtls {
        SharedConfigDtls {
            certificates,
            configs: Mutex::default(),
        }
    }

    fn config(&self, mtu: Option<usize>) -> Result<Arc<dimpl::Config>, CryptoError> {
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = configs.iter().find(|(m, _)| *m == mtu) {
            return Ok(c.clone());
        }
        // ICE has checked return routability before DTLS starts, so server cookies (a DoS
        // defence for DTLS on its own) only cost a round trip; str0m's backend turns them off
        // for the same reason.
        let mut builder = dimpl::Config::builder().use_server_cookie(false);
        if let Some(mtu) = mtu {
            builder = builder.mtu(mtu);
        }
        let config = Arc::new(
            builder
                .build()
                .map_err(|e| CryptoError::Other(format!("DTLS configuration: {e}")))?,
        );
        configs.push((mtu, config.clone()));
        Ok(config)
    }
}

impl DtlsProvider for SharedConfigDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        self.certificates.generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let config = self.config(mtu)?;
        let cert = dimpl::DtlsCertificate {
            certificate: cert.certificate.clone(),
            private_key: cert.private_key.clone(),
        };
        let dtls = match dtls_version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, cert, now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, cert, now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, cert, now),
            other => {
                return Err(CryptoError::Other(format!(
                    "unsupported DTLS version: {other}"
                )))
            }
        };
        Ok(Box::new(Instance(dtls)))
    }
}

/// One DTLS association: dimpl's, unchanged.
struct Instance(dimpl::Dtls);

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DtlsInstance(..)")
    }
}

impl DtlsInstance for Instance {
    fn set_active(&mut self, active: bool) {
        self.0.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.0.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        self.0.poll_output(buf)
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.0.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.0.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.0.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.0.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.0.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.0.close()
    }
}

/// str0m's aws-lc-rs crypto (SRTP, HMAC, hashes) with [`SharedConfigDtls`] for DTLS.
pub fn crypto_provider() -> CryptoProvider {
    static DTLS: OnceLock<SharedConfigDtls> = OnceLock::new();
    let mut provider = str0m::crypto::from_feature_flags();
    let certificates = provider.dtls_provider;
    provider.dtls_provider = DTLS.get_or_init(|| SharedConfigDtls::new(certificates));
    provider
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_configuration_per_mtu_is_built_and_shared() {
        let dtls = SharedConfigDtls::new(str0m::crypto::from_feature_flags().dtls_provider);
        let a = dtls.config(None).unwrap();
        let b = dtls.config(None).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = dtls.config(Some(1150)).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.mtu(), 1150);
        assert_eq!(dtls.configs.lock().unwrap().len(), 2);
    }

    #[test]
    fn an_mtu_dimpl_refuses_is_an_error_not_a_panic() {
        let dtls = SharedConfigDtls::new(str0m::crypto::from_feature_flags().dtls_provider);
        let cert = dtls.generate_certificate().unwrap();
        let e = dtls
            .new_dtls(&cert, Instant::now(), DtlsVersion::Auto, Some(10))
            .unwrap_err();
        assert!(e.to_string().contains("DTLS configuration"), "{e}");
        assert!(dtls.configs.lock().unwrap().is_empty());
    }
}
