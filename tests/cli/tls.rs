//! `vigil serve` terminating TLS itself (`server.tls`): `vigil check` accepts the files, the
//! startup line says https, a client with a certificate from the configured client CA and a
//! client without one are both served, and one with a certificate from another CA fails.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::serve::Served;
use crate::support::{TempDir, repo_root, vigil};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key")).expect("a CA")
}

/// A certificate for `name` issued by `ca`: (DER, PEM, key).
fn issue(
    ca: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (CertificateDer<'static>, String, KeyPair) {
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("a key");
    let cert = params.signed_by(&key, ca).expect("a certificate");
    (cert.der().clone(), cert.pem(), key)
}

/// `GET /healthz` over TLS; the status line, or the error that stopped it.
async fn healthz(
    address: SocketAddr,
    ca: &CertifiedIssuer<'static, KeyPair>,
    client: Option<&(CertificateDer<'static>, String, KeyPair)>,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.der().clone())
        .map_err(|error| error.to_string())?;
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match client {
        Some((cert, _, key)) => builder
            .with_client_auth_cert(
                vec![cert.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(|error| error.to_string())?,
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address).await?;
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        let mut stream = connector.connect(name, stream).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n")
            .await?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&bytes).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(30), exchange).await {
        Ok(Ok(text)) => Ok(text.lines().next().unwrap_or_default().to_owned()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 30 s".to_owned()),
    }
}

#[test]
fn serve_terminates_tls_and_verifies_optional_client_certificates() {
    vigil_connectors::install_crypto_provider();
    let dir = TempDir::new("serve-tls");
    let clients_ca = ca("vigil clients");
    let server = issue(
        &clients_ca,
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let alice = issue(&clients_ca, "alice", ExtendedKeyUsagePurpose::ClientAuth);
    let stranger = issue(
        &ca("someone else"),
        "mallory",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    std::fs::write(dir.join("server.crt"), &server.1).expect("writing");
    crate::support::write_secret(&dir.join("server.key"), &server.2.serialize_pem());
    std::fs::write(dir.join("clients-ca.crt"), clients_ca.pem()).expect("writing");
    std::fs::create_dir_all(dir.join("runbooks")).expect("creating runbooks/");
    let config = format!(
        r#"mode: autonomous
ledger:
  sqlite_path: ledger.db
policies_dir: "{policies}"
runbooks_dir: runbooks
server:
  tls:
    cert_file: server.crt
    key_file: server.key
    client_ca_file: clients-ca.crt
sources:
  - name: gateway
    kind: litellm
    url: http://127.0.0.1:9/metrics/
    scrape_interval_secs: 3600
detectors:
  - name: token-spike
    kind: spike
    source: gateway
pager:
  kind: log
"#,
        policies = repo_root().join("policies").display(),
    );
    let config_path = dir.join("vigil.yaml");
    std::fs::write(&config_path, config).expect("writing the config");
    let shown = config_path.to_str().expect("a UTF-8 path");
    vigil(["check", "--config", shown], dir.path()).assert_success("vigil check with TLS");

    let served = Served::start(&config_path, dir.path());
    assert_eq!(
        served.startup_line,
        format!(
            "vigil serving GET /healthz, GET /readyz, GET /metrics, GET /v1/openapi.json on https://{}",
            served.address
        )
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let address = served.address;
    let with_cert = runtime.block_on(healthz(address, &clients_ca, Some(&alice)));
    assert_eq!(with_cert.as_deref(), Ok("HTTP/1.1 200 OK"));
    let without = runtime.block_on(healthz(address, &clients_ca, None));
    assert_eq!(without.as_deref(), Ok("HTTP/1.1 200 OK"));
    // TLS 1.3: the refusal may arrive as an alert after the client's side of the handshake.
    let refused = runtime.block_on(healthz(address, &clients_ca, Some(&stranger)));
    assert!(
        refused.as_ref().map_or(true, String::is_empty),
        "a certificate from another CA was served: {refused:?}"
    );
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("connection tls_handshake_failed x1"),
        "the refusal is summed up: {stderr}"
    );
}
