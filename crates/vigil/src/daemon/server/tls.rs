//! TLS termination on the daemon's listener, and [`PeerInfo`], what every request learns
//! about its connection.
//!
//! [`load`] reads and checks the files of `server.tls` (for `vigil check` and `vigil serve`
//! alike) and builds the rustls server config: TLS 1.2 and 1.3 with the ring provider,
//! ALPN `http/1.1`. With `client_ca_file`, client certificates are asked for and verified
//! against those CAs, but are optional: a client without one (a health check, a bearer-token
//! client) is served, while a client presenting one that does not verify fails the handshake.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use vigil_core::problem::{Problem, Problems};

use crate::config::ServerTlsConfig;

/// Who is on the other end of a request. The listener inserts one into every request's
/// extensions (`request.extensions().get::<PeerInfo>()`), over HTTP and HTTPS alike.
///
/// This is the contract the admin API's client-certificate authentication reads:
/// `client_certs` is `Some` only when the listener terminates TLS with `client_ca_file` set
/// and the client presented a certificate chain that verified against those CAs (at the
/// time of the handshake: validity period, signature chain, client-auth key usage). It holds
/// the chain as presented, end-entity certificate first, in DER. It is `None` over plain HTTP,
/// without `client_ca_file`, and for a client that presented no certificate. A chain that
/// does not verify never reaches a handler: its handshake fails.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The client's address (the TCP peer; a proxy in front shows as itself).
    pub addr: SocketAddr,
    /// The verified client certificate chain, end-entity first, when there is one.
    pub client_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}

/// Reads the certificate chain, the key and the client CAs, and builds the server config;
/// every problem is reported with its key path (`server.tls.cert_file`, ...).
pub(crate) fn load(config: &ServerTlsConfig) -> Result<Arc<rustls::ServerConfig>, Vec<Problem>> {
    let mut problems = Problems::default();
    let chain = certificates(&mut problems, "server.tls.cert_file", &config.cert_file);
    let key = private_key(&mut problems, &config.key_file);
    let client_roots = config
        .client_ca_file
        .as_ref()
        .and_then(|path| client_roots(&mut problems, path));
    let (Some(chain), Some(key)) = (chain, key) else {
        return failed(problems);
    };
    if config.client_ca_file.is_some() && client_roots.is_none() {
        return failed(problems);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder,
        Err(error) => {
            problems.push("server.tls", format!("cannot set up TLS: {error}"));
            return failed(problems);
        }
    };
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build();
            match verifier {
                Ok(verifier) => builder.with_client_cert_verifier(verifier),
                Err(error) => {
                    problems.push(
                        "server.tls.client_ca_file",
                        format!("cannot verify client certificates with these CAs: {error}"),
                    );
                    return failed(problems);
                }
            }
        }
        None => builder.with_no_client_auth(),
    };
    match builder.with_single_cert(chain, key) {
        Ok(mut server_config) => {
            server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
            problems.finish(Arc::new(server_config))
        }
        Err(error) => {
            problems.push(
                "server.tls.key_file",
                format!("the key does not go with the certificate, or is not supported: {error}"),
            );
            failed(problems)
        }
    }
}

/// Every certificate in a PEM file; `None` (with a problem) when there is none or the file
/// cannot be read or parsed.
fn certificates(
    problems: &mut Problems,
    key: &str,
    path: &Path,
) -> Option<Vec<CertificateDer<'static>>> {
    let bytes = read(problems, key, path)?;
    let mut certificates = Vec::new();
    for parsed in CertificateDer::pem_slice_iter(&bytes) {
        match parsed {
            Ok(certificate) => certificates.push(certificate),
            Err(error) => {
                problems.push(
                    key,
                    format!("`{}` is not valid PEM: {error}", path.display()),
                );
                return None;
            }
        }
    }
    if certificates.is_empty() {
        problems.push(
            key,
            format!(
                "`{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                path.display()
            ),
        );
        return None;
    }
    Some(certificates)
}

fn private_key(problems: &mut Problems, path: &Path) -> Option<PrivateKeyDer<'static>> {
    let key = "server.tls.key_file";
    // The private key is a secret like any other: refused when every user can read it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(metadata) = std::fs::metadata(path) {
            let mode = metadata.permissions().mode() & 0o7777;
            if mode & 0o006 != 0 {
                problems.push(
                    key,
                    format!(
                        "`{}` is readable by every user (mode {mode:o}); make it private: chmod 600 (or 640 for a service group)",
                        path.display()
                    ),
                );
                return None;
            }
        }
    }
    let bytes = read(problems, key, path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(private_key) => Some(private_key),
        Err(error) => {
            problems.push(
                key,
                format!(
                    "`{}` holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {error}",
                    path.display()
                ),
            );
            None
        }
    }
}

fn client_roots(problems: &mut Problems, path: &Path) -> Option<RootCertStore> {
    let key = "server.tls.client_ca_file";
    let certificates = certificates(problems, key, path)?;
    let mut roots = RootCertStore::empty();
    for (idx, certificate) in certificates.into_iter().enumerate() {
        if let Err(error) = roots.add(certificate) {
            problems.push(
                key,
                format!(
                    "certificate {} in `{}` is not a usable CA certificate: {error}",
                    idx + 1,
                    path.display()
                ),
            );
            return None;
        }
    }
    Some(roots)
}

/// Every problem recorded, as the error of a load that could not finish.
fn failed<T>(problems: Problems) -> Result<T, Vec<Problem>> {
    match problems.finish(()) {
        Err(found) => Err(found),
        // Only reached if a failing step forgot to say why; say something rather than nothing.
        Ok(()) => Err(vec![Problem::new("server.tls", "cannot set up TLS")]),
    }
}

fn read(problems: &mut Problems, key: &str, path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            problems.push(key, format!("cannot read `{}`: {error}", path.display()));
            None
        }
    }
}
