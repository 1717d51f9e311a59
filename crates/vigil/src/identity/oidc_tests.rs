//! Tests of OIDC token verification: real RSA signatures made offline (the private key was
//! discarded; only its public JWKS and two tokens are kept), and EC and Ed25519 keys made
//! with `ring` for every claim check.

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use serde_json::json;

use super::*;

/// The public half of an RSA key made with `openssl genpkey` for these tests.
const RSA_JWKS: &str = r#"{"keys": [{"kty": "RSA", "kid": "rsa-1", "use": "sig", "n": "ocQGmC-j9lELCKEEvLWPyj6sY_GqCHPDh8mN72NQRKOxXArOPGFK9ZgESsZ9BpPqSzTGvn85k8t4KCl8xq_Bsc6GOhs0tKzHo-_S9AukEKjOrUB7dX0DZ7abNfgS6zCJefv52BvMEjWleF4zPhfQgxYCMN08k51IFlrLvMpPlvJ_wign7GVKfSpkAWdEcuzlD0qLEve-JBHvlkIc1pDDl_IQ8DatKbWG3ifnV8GBiN8BU092joWL8hvoCLVGNhpas1BDP92qI4HKAw2jbvBBlmaw_2pfnYk07TfIn_LWc0IDx-gZCtSLGy4d9geaNPgcSq2VDQveoGNxCaB8hgyKGw", "e": "AQAB"}]}"#;

/// Tokens that key signed: `{"iss": "https://idp.example.com", "aud": ["vigil", "other"],
/// "sub": "u-123", "email": "Alice@Example.com", "groups": ["search-oncall", "sre"], "exp":
/// 4102444800}`, with RS256 and PS256.
const RS256_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYS0xIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsImF1ZCI6WyJ2aWdpbCIsIm90aGVyIl0sInN1YiI6InUtMTIzIiwiZW1haWwiOiJBbGljZUBFeGFtcGxlLmNvbSIsImdyb3VwcyI6WyJzZWFyY2gtb25jYWxsIiwic3JlIl0sImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ.aZ5vHgSkmh343CVqUweNZ5zmjRXXYlCZILYNC5zvSbSJGRIw1PFhQDz5m0_twa4LxS_uJVMk8U7hL8qlO9A_HEnxh0aWaOMRn9igq8_IIjmSpHhi7UEMpL10Yr4KoH3VyCFSLm7c4lcLtNTzX2Z-4ieFnuMgdYLWQhyVMsDSmdLGtyNqRBW1KmArIZilIcj3JiDHMqXbJelbVJ2ee4np1EMzAtSI0DVDdXeZ3tfT7ofhCN9Fdcqa0tuvj41_jAhK6qafD1FCfJjEEmt5vSEBIGIq0aguwYDt-0acui7PDU23cR30dGtmgv9JN8qT_wvEBiwL-UGuaItYv54r-D5Mtg";
const PS256_TOKEN: &str = "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYS0xIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsImF1ZCI6WyJ2aWdpbCIsIm90aGVyIl0sInN1YiI6InUtMTIzIiwiZW1haWwiOiJBbGljZUBFeGFtcGxlLmNvbSIsImdyb3VwcyI6WyJzZWFyY2gtb25jYWxsIiwic3JlIl0sImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ.ndgCP6dIR0mpqxax-HuJTeGmBZ1bjE0kRAdY7SBZJ5rAldnWPqh1jb29xaHn7l4iVM71MQvWDuQ-jH5BAsG_seKGcqk-u0uJglBqNDUQ8pfSgMsN1nmk-s8qHCRWe_8EW1G-4biOy4dzG6GDB1lJu1ebbxdw7QdmJpqMi1My99dEp-vmbdRMIJfSvy1Jqo6uJTDraIuiBuNP-z2XQvmJb1WTMr8DUG4vXTL3ffmxdpxAkLGSN9RuQcffiDu5ctqQ-E7y7bb9yzjpQb6qGXJTDWVlGH_C3vZTQ9U6nDIH2UppXfpwq5zzMdEPXE6enPSgs0nI42lhxmot5B9xbQ3mVA";

/// A second before the fixed tokens expire, and well before.
const NOW: i64 = 1_800_000_000;

fn expected() -> Expectations {
    Expectations {
        issuer: "https://idp.example.com".to_owned(),
        audience: "vigil".to_owned(),
        name_claim: "email".to_owned(),
        groups_claim: "groups".to_owned(),
        leeway_secs: 60,
    }
}

fn encode(value: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 key pair with its JWK.
struct EcKey {
    pair: EcdsaKeyPair,
    jwk: serde_json::Value,
}

fn ec_key(kid: &str) -> EcKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                     "x": b64url(&point[1..33]), "y": b64url(&point[33..65])});
    EcKey { pair, jwk }
}

impl EcKey {
    fn sign(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let signed = format!("{}.{}", encode(header), encode(claims));
        let signature = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", b64url(signature.as_ref()))
    }
}

fn claims() -> serde_json::Value {
    json!({"iss": "https://idp.example.com", "aud": "vigil", "sub": "u-9", "email": "bob@example.com",
           "groups": ["payments-oncall"], "exp": NOW + 300, "nbf": NOW - 10, "iat": NOW - 10})
}

fn jwks_of(keys: &[&serde_json::Value]) -> Jwks {
    Jwks::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

#[test]
fn rsa_tokens_signed_by_the_issuer_verify_and_name_the_person() {
    let keys = Jwks::parse(RSA_JWKS.as_bytes()).unwrap();
    for token in [RS256_TOKEN, PS256_TOKEN] {
        assert!(looks_like_jwt(token));
        let verified = verify(token, &keys, &expected(), NOW).unwrap();
        assert_eq!(verified.name, "Alice@Example.com");
        assert_eq!(verified.groups, ["search-oncall", "sre"]);
        assert_eq!(verified.credential_id, "https://idp.example.com#u-123");
    }
    // The same token after it expired, and for another audience.
    assert_eq!(
        verify(RS256_TOKEN, &keys, &expected(), 4_102_444_800 + 61),
        Err(TokenRefused::Claims("the token has expired".to_owned()))
    );
    let other = Expectations {
        audience: "grafana".to_owned(),
        ..expected()
    };
    assert!(matches!(
        verify(RS256_TOKEN, &keys, &other, NOW),
        Err(TokenRefused::Claims(_))
    ));
}

#[test]
fn a_changed_payload_header_or_signature_is_refused() {
    let keys = Jwks::parse(RSA_JWKS.as_bytes()).unwrap();
    let parts: Vec<&str> = RS256_TOKEN.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["email"] = json!("mallory@example.com");
    let forged = format!("{}.{}.{}", parts[0], encode(&claims), parts[2]);
    assert_eq!(
        verify(&forged, &keys, &expected(), NOW),
        Err(TokenRefused::Signature)
    );
    // `alg: none` with no signature, and HMAC keyed with the public key (alg confusion).
    for alg in ["none", "HS256"] {
        let header = encode(&json!({"alg": alg, "kid": "rsa-1"}));
        let token = format!("{header}.{}.", parts[1]);
        assert_eq!(
            verify(&token, &keys, &expected(), NOW),
            Err(TokenRefused::Algorithm(alg.to_owned()))
        );
    }
    // ES256 claimed over the RSA key's id: no key of that kind.
    let header = encode(&json!({"alg": "ES256", "kid": "rsa-1"}));
    let token = format!("{header}.{}.{}", parts[1], parts[2]);
    assert_eq!(
        verify(&token, &keys, &expected(), NOW),
        Err(TokenRefused::UnknownKey)
    );
    for malformed in [
        "",
        "a.b",
        "a.b.c.d",
        "eyJ.eyJ.!!!",
        &"x".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        assert_eq!(
            verify(malformed, &keys, &expected(), NOW),
            Err(TokenRefused::Malformed),
            "{malformed:.20}"
        );
    }
    let crit = encode(&json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}));
    assert!(matches!(
        verify(
            &format!("{crit}.{}.{}", parts[1], parts[2]),
            &keys,
            &expected(),
            NOW
        ),
        Err(TokenRefused::Claims(_))
    ));
}

#[test]
fn every_claim_is_checked() {
    let key = ec_key("ec-1");
    let keys = jwks_of(&[&key.jwk]);
    let header = json!({"alg": "ES256", "kid": "ec-1", "typ": "JWT"});
    let verified = verify(&key.sign(&header, &claims()), &keys, &expected(), NOW).unwrap();
    assert_eq!(verified.name, "bob@example.com");
    assert_eq!(verified.credential_id, "https://idp.example.com#u-9");
    let refusal = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut changed = claims();
        change(&mut changed);
        match verify(&key.sign(&header, &changed), &keys, &expected(), NOW) {
            Err(TokenRefused::Claims(why)) => why,
            other => panic!("{other:?}"),
        }
    };
    let refusals = [
        refusal(&|c| c["iss"] = json!("https://evil.example.com")),
        refusal(&|c| c["aud"] = json!(["grafana"])),
        refusal(&|c| c["exp"] = json!(NOW - 61)),
        refusal(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        refusal(&|c| c["nbf"] = json!(NOW + 61)),
        refusal(&|c| {
            c.as_object_mut().unwrap().remove("sub");
        }),
        refusal(&|c| {
            c.as_object_mut().unwrap().remove("email");
        }),
        refusal(&|c| c["groups"] = json!({"admin": true})),
        refusal(&|c| c["iss"] = json!("evil\nINFO forged")),
    ];
    expect_test::expect![[r#"
        issued by `https://evil.example.com`, not by `https://idp.example.com`
        not issued for audience `vigil`
        the token has expired
        the token has no `exp`
        the token is not valid yet
        the token has no `sub`
        the token has no `email` claim to name the person
        the `groups` claim is not a list of groups
        issued by `evil\nINFO forged`, not by `https://idp.example.com`"#]]
    .assert_eq(&refusals.join("\n"));
    // Within the leeway: accepted.
    let mut late = claims();
    late["exp"] = json!(NOW - 30);
    late["nbf"] = json!(NOW + 30);
    assert!(verify(&key.sign(&header, &late), &keys, &expected(), NOW).is_ok());
    // Signed by another key under the same id: refused.
    let impostor = ec_key("ec-1");
    assert_eq!(
        verify(&impostor.sign(&header, &claims()), &keys, &expected(), NOW),
        Err(TokenRefused::Signature)
    );
}

#[test]
fn ed25519_keys_verify_and_a_token_without_kid_tries_each_key_of_its_kind() {
    let rng = SystemRandom::new();
    let pair = |seed: &ring::pkcs8::Document| Ed25519KeyPair::from_pkcs8(seed.as_ref()).unwrap();
    let first = pair(&Ed25519KeyPair::generate_pkcs8(&rng).unwrap());
    let second = pair(&Ed25519KeyPair::generate_pkcs8(&rng).unwrap());
    let jwk = |key: &Ed25519KeyPair| json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(key.public_key().as_ref())});
    let keys = jwks_of(&[&jwk(&first), &jwk(&second)]);
    let signed = format!("{}.{}", encode(&json!({"alg": "EdDSA"})), encode(&claims()));
    let token = format!(
        "{signed}.{}",
        b64url(second.sign(signed.as_bytes()).as_ref())
    );
    assert!(verify(&token, &keys, &expected(), NOW).is_ok());
}

#[test]
fn a_jwks_keeps_only_usable_signing_keys() {
    let jwks = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "Ed25519", "x": b64url(&[7; 32])}
    ]});
    assert_eq!(Jwks::parse(jwks.to_string().as_bytes()).unwrap().len(), 1);
    assert!(Jwks::parse(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).is_err());
    assert!(Jwks::parse(b"[]").is_err());
    assert!(Jwks::parse(b"not json").is_err());
}
