//! The listener on loopback with real sockets and real TLS: client certificates reach
//! handlers as [`PeerInfo`], slow heads, slow bodies and idle connections are closed, the
//! connection limit closes and counts, and shutdown ends every connection.
//!
//! Timeouts are short and every wait has a generous upper bound: the bounds only guard
//! against hangs, nothing asserts how fast the machine is.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::middleware;
use axum::routing::{get, post};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::refusals::account;
use super::*;
use crate::config::ServerTlsConfig;

/// Far above anything these tests wait for.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// A running listener and what the tests look at.
struct Running {
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
    stopped: tokio::task::JoinHandle<()>,
}

fn limits() -> Limits {
    Limits {
        max_connections: 64,
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        tls_handshake_timeout: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(2),
    }
}

/// `GET /peer` says what [`PeerInfo`] the handler saw; `POST /echo` reads its body; `GET /big`
/// answers 16 MiB.
fn router(telemetry: &Arc<Telemetry>) -> Router {
    Router::new()
        .route(
            "/peer",
            get(|request: Request| async move {
                let peer = request.extensions().get::<PeerInfo>().cloned();
                match peer {
                    None => "no peer info".to_owned(),
                    Some(PeerInfo {
                        client_certs: None, ..
                    }) => "no client certificate".to_owned(),
                    Some(PeerInfo {
                        client_certs: Some(chain),
                        ..
                    }) => format!("client certificate {}", hex::encode(&chain[0])),
                }
            }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
        .route("/big", get(|| async { vec![b'x'; 16 << 20] }))
        .layer(middleware::from_fn_with_state(
            Arc::clone(telemetry),
            account,
        ))
}

async fn start(limits: Limits, tls: Option<Arc<rustls::ServerConfig>>) -> Running {
    vigil_connectors::install_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let telemetry = Arc::new(Telemetry::default());
    let server = Server {
        listener,
        router: router(&telemetry),
        tls: tls.map(TlsAcceptor::from),
        limits,
        telemetry: Arc::clone(&telemetry),
    };
    let cancel = CancellationToken::new();
    let stopped = tokio::spawn(server.run(cancel.clone()));
    Running {
        addr,
        telemetry,
        cancel,
        stopped,
    }
}

fn refused(running: &Running, route: &str, reason: &str) -> f64 {
    let text = running.telemetry.render();
    let exposition = vigil_core::exposition::parse_text(&text);
    exposition
        .samples
        .iter()
        .find(|sample| {
            sample.name == "vigil_http_refused_total"
                && sample
                    .labels
                    .iter()
                    .any(|(k, v)| k == "route" && v == route)
                && sample
                    .labels
                    .iter()
                    .any(|(k, v)| k == "reason" && v == reason)
        })
        .map_or(0.0, |sample| sample.value)
}

fn metric(running: &Running, name: &str) -> f64 {
    let text = running.telemetry.render();
    let exposition = vigil_core::exposition::parse_text(&text);
    exposition
        .samples
        .iter()
        .find(|sample| sample.name == name)
        .map_or(f64::NAN, |sample| sample.value)
}

/// Reads until the peer closes; `Ok` with what arrived, or the error that ended it.
async fn read_until_closed(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<String> {
    let mut bytes = Vec::new();
    tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut bytes))
        .await
        .map_err(|_| io::Error::other("the server did not close the connection"))??;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn request(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), path: &str) -> String {
    let head = format!("GET {path} HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    read_until_closed(stream).await.unwrap()
}

#[tokio::test]
async fn a_slow_head_is_closed_and_counted() {
    let running = start(limits(), None).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: vi")
        .await
        .unwrap();
    let said = read_until_closed(&mut stream).await.unwrap();
    assert_eq!(said, "", "closed without an answer");
    assert_eq!(refused(&running, "connection", "header_timeout"), 1.0);
    // A whole request on a new connection is still served.
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let answer = request(&mut stream, "/peer").await;
    assert!(answer.ends_with("no client certificate"), "{answer}");
}

#[tokio::test]
async fn idle_connections_are_closed_before_and_between_requests() {
    let running = start(limits(), None).await;
    // Connected, nothing sent.
    let mut silent = TcpStream::connect(running.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await.unwrap(), "");
    // One request on a keep-alive connection, then nothing.
    let mut kept = TcpStream::connect(running.addr).await.unwrap();
    kept.write_all(b"GET /peer HTTP/1.1\r\nHost: vigil\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut kept).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        metric(&running, "vigil_http_idle_connections_closed_total"),
        2.0
    );
    assert_eq!(refused(&running, "connection", "header_timeout"), 0.0);
}

#[tokio::test]
async fn a_slow_body_gets_408() {
    let running = start(limits(), None).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: vigil\r\nContent-Length: 100\r\n\r\nonly ten b")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    assert_eq!(refused(&running, "/echo", "body_timeout"), 1.0);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answer_is_cut_off() {
    let running = start(limits(), None).await;
    // A small receive buffer, so that the answer cannot all sit in the kernel's buffers.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: vigil\r\n\r\n")
        .await
        .unwrap();
    // Nothing is read until the server has given up on this client: hyper takes the whole
    // body at once, so the stall is in flushing it, after the request is done with.
    wait_for(|| {
        metric(&running, "vigil_http_idle_connections_closed_total")
            + refused(&running, "connection", "slow_reader")
            == 1.0
    })
    .await;
    let said = read_until_closed(&mut stream).await;
    let n_bytes = said.as_ref().map_or(0, String::len);
    assert!(
        n_bytes < 16 << 20,
        "the whole answer arrived: {n_bytes} bytes"
    );
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_and_counted() {
    let running = start(
        Limits {
            max_connections: 2,
            idle_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            ..limits()
        },
        None,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(running.addr).await.unwrap();
        // Half a head, so each is surely accepted and open.
        stream.write_all(b"GET /peer HTTP/1.1\r\n").await.unwrap();
        held.push(stream);
    }
    wait_for(|| metric(&running, "vigil_http_connections") == 2.0).await;
    let mut third = TcpStream::connect(running.addr).await.unwrap();
    let said = read_until_closed(&mut third).await;
    assert!(said.as_ref().map_or(true, String::is_empty), "{said:?}");
    assert_eq!(refused(&running, "connection", "connection_limit"), 1.0);
    // One closes: there is room again.
    held.pop();
    wait_for(|| metric(&running, "vigil_http_connections") == 1.0).await;
    let mut fourth = TcpStream::connect(running.addr).await.unwrap();
    let answer = request(&mut fourth, "/peer").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_stops() {
    let running = start(
        Limits {
            idle_timeout: Duration::from_secs(60),
            ..limits()
        },
        None,
    )
    .await;
    let mut idle = TcpStream::connect(running.addr).await.unwrap();
    wait_for(|| metric(&running, "vigil_http_connections") == 1.0).await;
    running.cancel.cancel();
    assert_eq!(read_until_closed(&mut idle).await.unwrap(), "");
    tokio::time::timeout(HANG_GUARD, running.stopped)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(running.addr).await.is_err(),
        "the port is closed"
    );
}

async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting");
}

/// A CA, and certificates it issued.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { ca }
    }

    /// A certificate (DER and PEM) and its key for `name`, for servers or clients.
    fn issue(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Issued {
            der: cert.der().clone(),
            pem: cert.pem(),
            key,
        }
    }
}

struct Issued {
    der: CertificateDer<'static>,
    pem: String,
    key: KeyPair,
}

/// Writes a file readable by its owner only (a key must be; certificates may be).
fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

async fn tls_client(
    addr: SocketAddr,
    roots: &Pki,
    client: Option<&Issued>,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut trusted = rustls::RootCertStore::empty();
    trusted.add(roots.ca.der().clone()).unwrap();
    let builder = rustls::ClientConfig::builder().with_root_certificates(trusted);
    let config = match client {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![issued.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key.serialize_der())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
}

#[tokio::test]
async fn handlers_see_the_verified_client_certificate_and_strangers_fail_the_handshake() {
    vigil_connectors::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("vigil-server-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new("vigil test CA");
    let server = pki.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let alice = pki.issue("alice", ExtendedKeyUsagePurpose::ClientAuth);
    let stranger_ca = Pki::new("another CA");
    let mallory = stranger_ca.issue("mallory", ExtendedKeyUsagePurpose::ClientAuth);
    let config = ServerTlsConfig {
        cert_file: write(&dir, "server.crt", &server.pem),
        key_file: write(&dir, "server.key", &server.key.serialize_pem()),
        client_ca_file: Some(write(&dir, "clients-ca.crt", &pki.ca.pem())),
    };
    let server_config = tls::load(&config).unwrap();
    let running = start(limits(), Some(server_config)).await;

    let mut with_cert = tls_client(running.addr, &pki, Some(&alice)).await.unwrap();
    let answer = request(&mut with_cert, "/peer").await;
    assert!(
        answer.ends_with(&format!("client certificate {}", hex::encode(&alice.der))),
        "{answer}"
    );

    let mut without = tls_client(running.addr, &pki, None).await.unwrap();
    let answer = request(&mut without, "/peer").await;
    assert!(answer.ends_with("no client certificate"), "{answer}");

    // With TLS 1.3 the client's side of the handshake may finish before the server has
    // judged its certificate; the refusal then arrives as an alert instead of an answer.
    let refused_answer = match tls_client(running.addr, &pki, Some(&mallory)).await {
        Err(error) => Err(error),
        Ok(mut stream) => {
            let head = "GET /peer HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            read_until_closed(&mut stream).await
        }
    };
    assert!(
        refused_answer.as_ref().map_or(true, String::is_empty),
        "{refused_answer:?}"
    );
    wait_for(|| refused(&running, "connection", "tls_handshake_failed") == 1.0).await;

    // Plain HTTP to the TLS port is no TLS handshake either.
    let mut plain = TcpStream::connect(running.addr).await.unwrap();
    let said = request_plain_or_error(&mut plain).await;
    assert!(!said.starts_with("HTTP/1.1 200"), "{said}");
    wait_for(|| refused(&running, "connection", "tls_handshake_failed") == 2.0).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_tls_handshake_that_never_comes_is_closed_and_counted() {
    let dir = std::env::temp_dir().join(format!("vigil-server-tls-slow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new("vigil test CA");
    let server = pki.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let config = ServerTlsConfig {
        cert_file: write(&dir, "server.crt", &server.pem),
        key_file: write(&dir, "server.key", &server.key.serialize_pem()),
        client_ca_file: None,
    };
    let server_config = tls::load(&config).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let running = start(
        Limits {
            tls_handshake_timeout: Duration::from_millis(300),
            ..limits()
        },
        Some(server_config),
    )
    .await;
    // Connected, and not a byte of a ClientHello.
    let mut silent = TcpStream::connect(running.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await.unwrap(), "");
    assert_eq!(
        refused(&running, "connection", "tls_handshake_timeout"),
        1.0
    );
    // Without `client_ca_file`, a client is served and seen without a certificate.
    let mut client = tls_client(running.addr, &pki, None).await.unwrap();
    let answer = request(&mut client, "/peer").await;
    assert!(answer.ends_with("no client certificate"), "{answer}");
}

async fn request_plain_or_error(stream: &mut TcpStream) -> String {
    let _ = stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: vigil\r\n\r\n")
        .await;
    read_until_closed(stream).await.unwrap_or_default()
}

#[test]
fn unreadable_and_unparsable_tls_files_are_named_with_their_key() {
    let dir = std::env::temp_dir().join(format!("vigil-server-tls-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = ServerTlsConfig {
        cert_file: write(&dir, "server.crt", "not a certificate\n"),
        key_file: dir.join("missing.key"),
        client_ca_file: Some(write(&dir, "ca.crt", "")),
    };
    let problems: Vec<String> = tls::load(&config)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with("server.tls.cert_file: `"),
        "{problems:#?}"
    );
    assert!(problems[0].ends_with("holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"));
    assert!(
        problems[1].starts_with("server.tls.key_file: cannot read `"),
        "{problems:#?}"
    );
    assert!(
        problems[2].starts_with("server.tls.client_ca_file: `"),
        "{problems:#?}"
    );
}

#[test]
fn the_default_connection_limit_stays_under_the_open_file_limit() {
    assert_eq!(default_max_connections(Some(1024)), 768);
    assert_eq!(
        default_max_connections(Some(1_048_576)),
        DEFAULT_MAX_CONNECTIONS
    );
    assert_eq!(default_max_connections(Some(100)), 1);
    assert_eq!(default_max_connections(None), DEFAULT_MAX_CONNECTIONS);
}
