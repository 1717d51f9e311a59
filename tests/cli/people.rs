//! People authenticated end to end through the real binary: by TLS client certificate (the
//! listener verifies it against the client CA, the admin API reads its email and OUs) and by
//! OIDC token (the daemon fetches the issuer's keys from its JWKS URL and verifies ES256
//! signatures). The ledger records the principal and the credential each proved.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

use crate::crash::wait_for_line;
use crate::ledger::read_rows;
use crate::serve::Served;
use crate::support::{Finished, TempDir, finish, repo_root, vigil, vigil_command, write_secret};

const LIMIT: Duration = Duration::from_secs(60);

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params
        .distinguished_name
        .push(DnType::CommonName, "vigil people CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key")).expect("a CA")
}

/// Writes a certificate issued by `ca` and its key into `dir` as `NAME.crt` and `NAME.key`.
fn issue(
    dir: &TempDir,
    ca: &CertifiedIssuer<'static, KeyPair>,
    file: &str,
    subject: &str,
    unit: Option<&str>,
    email: Option<&str>,
    usage: ExtendedKeyUsagePurpose,
) {
    let names = if usage == ExtendedKeyUsagePurpose::ServerAuth {
        vec![subject.to_owned()]
    } else {
        Vec::new()
    };
    let mut params = CertificateParams::new(names).expect("params");
    params.distinguished_name.push(DnType::CommonName, subject);
    if let Some(unit) = unit {
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, unit);
    }
    if let Some(email) = email {
        params
            .subject_alt_names
            .push(SanType::Rfc822Name(email.try_into().expect("an email")));
    }
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("a key");
    let cert = params.signed_by(&key, ca).expect("a certificate");
    std::fs::write(dir.join(&format!("{file}.crt")), cert.pem()).expect("writing");
    write_secret(&dir.join(&format!("{file}.key")), &key.serialize_pem());
}

/// A config with the admin API configured by `admin` (YAML lines under `admin:`) and
/// `server` lines under `server:` when given.
fn config(dir: &TempDir, admin: &str, server: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("runbooks")).expect("creating runbooks/");
    let text = format!(
        "mode: autonomous\nledger:\n  sqlite_path: ledger.db\npolicies_dir: \"{}\"\nrunbooks_dir: runbooks\n{server}\
         sources:\n  - name: gateway\n    kind: litellm\n    url: http://127.0.0.1:9/metrics/\n    scrape_interval_secs: 3600\n\
         detectors:\n  - name: token-spike\n    kind: spike\n    source: gateway\n\
         admin:\n{admin}pager:\n  kind: log\n",
        repo_root().join("policies").display()
    );
    let path = dir.join("vigil.yaml");
    std::fs::write(&path, text).expect("writing the config");
    path
}

fn cli(dir: &TempDir, args: &[&str], token: Option<&str>) -> Finished {
    let mut command = vigil_command(args, dir.path());
    command.env_remove("VIGIL_ADMIN_TOKEN");
    if let Some(token) = token {
        command.env("VIGIL_ADMIN_TOKEN", token);
    }
    finish(command, LIMIT)
}

/// The `human_action` records of the ledger, as JSON.
fn human_actions(dir: &TempDir) -> Vec<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime
        .block_on(read_rows(&dir.join("ledger.db")))
        .iter()
        .filter(|row| row.payload.contains("\"record\":\"human_action\""))
        .map(|row| serde_json::from_str(&row.payload).expect("a JSON payload"))
        .collect()
}

#[test]
fn a_client_certificate_names_the_person_and_its_units_are_their_groups() {
    let dir = TempDir::new("people-mtls");
    let authority = ca();
    issue(
        &dir,
        &authority,
        "server",
        "localhost",
        None,
        None,
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    issue(
        &dir,
        &authority,
        "olga",
        "Olga",
        Some("sre"),
        Some("olga@example.com"),
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    std::fs::write(dir.join("ca.crt"), authority.pem()).expect("writing");
    let config = config(
        &dir,
        "  mtls:\n    name_from: email\n  roles:\n    operator: [sre]\n",
        "server:\n  tls:\n    cert_file: server.crt\n    key_file: server.key\n    client_ca_file: ca.crt\n",
    );
    let shown = config.to_str().expect("a UTF-8 path");
    vigil(["check", "--config", shown], dir.path()).assert_success("check with mTLS");
    let served = Served::start(&config, dir.path());
    let url = format!("https://localhost:{}", served.address.port());
    let with_cert = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--url", &url, "--cert", "olga.crt", "--key", "olga.key", "--ca", "ca.crt",
        ]);
        cli(&dir, &all, None)
    };
    let whoami = with_cert(&["whoami"]);
    whoami.assert_success("vigil whoami by certificate");
    assert!(whoami.stdout.starts_with("olga@example.com\n"), "{whoami}");
    assert!(whoami.stdout.contains("(mtls)"), "{whoami}");
    assert!(whoami.stdout.contains("groups:     sre"), "{whoami}");
    assert!(
        whoami.stdout.contains("roles:      viewer, operator"),
        "{whoami}"
    );
    let killed = with_cert(&["kill", "--reason", "maintenance"]);
    killed.assert_success("vigil kill by certificate");
    // Without a certificate or a token: nobody.
    let anonymous = cli(&dir, &["whoami", "--url", &url, "--ca", "ca.crt"], Some(""));
    assert_eq!(anonymous.code(), 1, "{anonymous}");
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    let actions = human_actions(&dir);
    assert_eq!(actions.len(), 1, "{actions:?}");
    let record = &actions[0]["command"];
    assert_eq!(record["by"], "olga@example.com", "{record}");
    assert_eq!(record["accepted"], true, "{record}");
    assert!(
        record["credential_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:") && id.len() == 7 + 64),
        "{record}"
    );
}

/// Serves `body` at every request on a loopback port until the returned flag is set.
fn serve_jwks(body: String) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
    let port = listener.local_addr().expect("an address").port();
    listener.set_nonblocking(true).expect("non-blocking");
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    std::thread::spawn(move || {
        // Bounded: the test stops it, and it gives up after ten minutes regardless.
        let deadline = Instant::now() + Duration::from_secs(600);
        while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = [0_u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, stop)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 key with its JWK.
fn es256_key(kid: &str) -> (EcdsaKeyPair, serde_json::Value) {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("a key pair");
    let point = pair.public_key().as_ref().to_vec();
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
        "x": b64(&point[1..33]), "y": b64(&point[33..65])});
    (pair, jwk)
}

fn token(key: &EcdsaKeyPair, kid: &str, claims: &serde_json::Value) -> String {
    let header = serde_json::json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key
        .sign(&SystemRandom::new(), signed.as_bytes())
        .expect("signing");
    format!("{signed}.{}", b64(signature.as_ref()))
}

#[test]
fn an_oidc_token_signed_by_the_issuer_names_the_person_and_its_groups() {
    let dir = TempDir::new("people-oidc");
    let (key, jwk) = es256_key("k1");
    let (port, stop) = serve_jwks(serde_json::json!({ "keys": [jwk] }).to_string());
    let admin = format!(
        "  oidc:\n    issuer: https://idp.test\n    audience: vigil\n    jwks_url: http://127.0.0.1:{port}/jwks\n  roles:\n    operator: [sre]\n"
    );
    let config = config(&dir, &admin, "");
    let shown = config.to_str().expect("a UTF-8 path");
    vigil(["check", "--config", shown], dir.path()).assert_success("check with OIDC");
    let mut served = Served::start(&config, dir.path());
    wait_for_line(&mut served, "fetched the OIDC issuer's signing keys");
    let url = format!("http://{}", served.address);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = serde_json::json!({"iss": "https://idp.test", "aud": ["vigil"], "sub": "u-1",
        "email": "Olga@Example.com", "groups": ["sre"], "exp": now + 300, "iat": now});
    let good = token(&key, "k1", &claims);
    let whoami = cli(&dir, &["whoami", "--url", &url], Some(&good));
    whoami.assert_success("vigil whoami by OIDC token");
    assert!(whoami.stdout.starts_with("olga@example.com\n"), "{whoami}");
    assert!(
        whoami
            .stdout
            .contains("credential: https://idp.test#u-1 (oidc)"),
        "{whoami}"
    );
    assert!(
        whoami.stdout.contains("roles:      viewer, operator"),
        "{whoami}"
    );
    cli(
        &dir,
        &["kill", "--url", &url, "--reason", "maintenance"],
        Some(&good),
    )
    .assert_success("vigil kill by OIDC token");
    // Signed by someone else's key, expired, or for another audience: refused.
    let (other, _) = es256_key("k1");
    let mut expired = claims.clone();
    expired["exp"] = serde_json::json!(now - 3600);
    let mut elsewhere = claims.clone();
    elsewhere["aud"] = serde_json::json!("grafana");
    for (bad, says) in [
        (
            token(&other, "k1", &claims),
            "the signature does not verify",
        ),
        (token(&key, "k1", &expired), "the token has expired"),
        (
            token(&key, "k1", &elsewhere),
            "not issued for audience `vigil`",
        ),
    ] {
        let refused = cli(&dir, &["whoami", "--url", &url], Some(&bad));
        assert_eq!(refused.code(), 1, "{refused}");
        assert!(refused.stderr.contains("401"), "{refused}");
        assert!(refused.stderr.contains(says), "{says}: {refused}");
    }
    let (code, stderr) = served.stop_with("TERM");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(code, Some(0), "{stderr}");
    let actions = human_actions(&dir);
    assert_eq!(actions.len(), 1, "{actions:?}");
    let record = &actions[0]["command"];
    assert_eq!(record["by"], "olga@example.com", "{record}");
    assert_eq!(record["credential_id"], "https://idp.test#u-1", "{record}");
    assert_eq!(record["accepted"], true, "{record}");
}
