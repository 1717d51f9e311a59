//! Scraping over TLS against a real TLS server (`openssl s_server`) with certificates made for
//! the test: a private CA, a server certificate for 127.0.0.1, and a client certificate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vigil_connectors::ConnectorError;
use vigil_connectors::http::{ClientCert, TlsOptions, client_with_tls};
use vigil_connectors::scrape::{ScrapeTarget, fetch};

const EXPOSITION: &str = "# TYPE up gauge\nup 1\nvllm:num_requests_running{model_name=\"m\"} 3\n";

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Pki {
    dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate.
fn make_pki(name: &str) -> Option<Pki> {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is needed for the TLS tests"
        );
        eprintln!("skipping: openssl is not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("vigil-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pki = Pki { dir };
    let dir = pki.dir.as_path();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=vigil test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    for (who, subject, extension) in [
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
        ("client", "/CN=vigil", "extendedKeyUsage=clientAuth"),
    ] {
        std::fs::write(dir.join(format!("{who}.ext")), format!("{extension}\n")).expect("ext file");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{who}.ext"),
                "-out",
                &format!("{who}.pem"),
            ],
        );
    }
    std::fs::write(dir.join("metrics"), EXPOSITION).expect("exposition file");
    Some(pki)
}

/// `openssl s_server -WWW` serves the files of its working folder over HTTPS.
fn serve(pki: &Pki, extra: &[&str]) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let accept = format!("127.0.0.1:{port}");
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-accept",
            &accept,
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-WWW",
        ])
        .args(extra)
        .current_dir(&pki.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    let server = Server(child);
    // Wait, boundedly, until it accepts connections.
    for _ in 0..100 {
        if std::net::TcpStream::connect(&accept).is_ok() {
            return (server, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("openssl s_server did not start on {accept}");
}

fn target(port: u16) -> ScrapeTarget {
    ScrapeTarget {
        name: "tls-target".to_owned(),
        url: format!("https://127.0.0.1:{port}/metrics"),
        timeout: Duration::from_secs(5),
        bearer: None,
        max_body_bytes: 1 << 20,
    }
}

async fn scrape(tls: &TlsOptions, port: u16) -> Result<String, ConnectorError> {
    let client = client_with_tls(Duration::from_secs(5), tls)?;
    fetch(&client, &target(port))
        .await
        .map(|body| String::from_utf8(body.body).unwrap())
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_configured() {
    let Some(pki) = make_pki("ca") else { return };
    let (_server, port) = serve(&pki, &[]);

    // The system roots do not know the test CA: the handshake must fail.
    let error = scrape(&TlsOptions::default(), port).await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::Transport { .. }),
        "{error:?}"
    );

    let trusted = TlsOptions {
        ca_file: Some(pki.path("ca.pem")),
        ..TlsOptions::default()
    };
    let body = scrape(&trusted, port).await.unwrap();
    assert!(body.contains("vllm:num_requests_running"), "{body}");

    let insecure = TlsOptions {
        insecure_skip_verify: true,
        ..TlsOptions::default()
    };
    assert!(scrape(&insecure, port).await.unwrap().contains("up 1"));
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let Some(pki) = make_pki("mtls") else { return };
    let ca = pki.path("ca.pem");
    let ca_arg = ca.to_str().expect("utf-8 path").to_owned();
    let (_server, port) = serve(&pki, &["-Verify", "1", "-CAfile", &ca_arg]);

    let without = TlsOptions {
        ca_file: Some(ca.clone()),
        ..TlsOptions::default()
    };
    assert!(
        scrape(&without, port).await.is_err(),
        "the server requires a client certificate"
    );

    let with = TlsOptions {
        ca_file: Some(ca),
        client_cert: Some(ClientCert {
            cert_file: pki.path("client.pem"),
            key_file: pki.path("client.key"),
        }),
        insecure_skip_verify: false,
    };
    assert!(scrape(&with, port).await.unwrap().contains("up 1"));
}

#[test]
fn unusable_tls_files_are_named_in_the_error() {
    let missing = TlsOptions {
        ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
        ..TlsOptions::default()
    };
    let error = client_with_tls(Duration::from_secs(1), &missing).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");

    let dir = std::env::temp_dir().join(format!("vigil-tls-garbage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let garbage = dir.join("ca.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let error = client_with_tls(
        Duration::from_secs(1),
        &TlsOptions {
            ca_file: Some(garbage),
            ..TlsOptions::default()
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
