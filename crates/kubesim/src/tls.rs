//! Optional TLS: a throwaway certificate authority generated at start and a
//! server certificate for `localhost` and `127.0.0.1` signed by it, so the
//! TLS path of kube-rs and kubectl (CA verification included) is tested.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// Why the TLS material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Generating the CA key or certificate failed.
    #[error("failed to generate the kubesim CA")]
    GenerateCa(#[source] rcgen::Error),
    /// Generating or signing the server certificate failed.
    #[error("failed to generate the kubesim server certificate")]
    GenerateServerCert(#[source] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("failed to build the TLS server configuration")]
    BuildServerConfig(#[source] rustls::Error),
}

/// A generated CA and the server side of TLS.
#[derive(Clone)]
pub struct Authority {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    pub(crate) acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// Generates a CA and a server certificate for `localhost`/`127.0.0.1`.
    pub fn generate() -> Result<Self, Error> {
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kubesim-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_key = KeyPair::generate().map_err(Error::GenerateCa)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(Error::GenerateCa)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "kubesim");
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().map_err(Error::GenerateServerCert)?),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(Error::GenerateServerCert)?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(Error::GenerateServerCert)?;

        let chain = vec![cert.der().clone(), ca_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(Error::BuildServerConfig)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(Error::BuildServerConfig)?;
        // HTTP/1.1 only: watches are chunked responses, as kubesim serves them.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem: ca_cert.pem(),
            ca_der: CertificateDer::as_ref(ca_cert.der()).to_vec(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}
