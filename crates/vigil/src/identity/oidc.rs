//! OIDC bearer tokens: a JWT (an ID token or an access token) signed by the configured
//! issuer, verified against the issuer's JSON Web Key Set with `ring`.
//!
//! Accepted: RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA (Ed25519), each only with a
//! key of its kind. Refused: `none`, HMAC (`HS*`, whose key would have to be shared with
//! vigil), unknown algorithms, and tokens that name critical header extensions. The claims
//! must have the configured `iss` exactly, the configured audience in `aud`, an `exp` in the
//! future and any `nbf` in the past (both with the configured leeway), a `sub`, and the name
//! claim. The credential id the ledger records is `iss#sub`.

use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::{Map, Value};

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The most keys a JWKS may hold.
const MAX_KEYS: usize = 64;

/// A public key from a JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PublicKey {
    /// RSA: modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// ECDSA on P-256: the uncompressed point.
    P256(Vec<u8>),
    /// ECDSA on P-384: the uncompressed point.
    P384(Vec<u8>),
    /// Ed25519: the 32-byte public key.
    Ed25519(Vec<u8>),
}

/// One usable key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    key: PublicKey,
}

/// An issuer's signing keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS (`{"keys": [...]}`); keys vigil cannot use (symmetric keys, keys for
    /// encryption, unknown curves) are skipped.
    ///
    /// # Errors
    ///
    /// When it is not a JWKS, or holds no usable signing key.
    pub fn parse(bytes: &[u8]) -> Result<Jwks, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|error| format!("not JSON: {error}"))?;
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("not a JWKS: no `keys` array")?;
        let keys: Vec<Jwk> = keys.iter().take(MAX_KEYS).filter_map(parse_jwk).collect();
        if keys.is_empty() {
            return Err(
                "the JWKS holds no usable signing key (RSA, EC P-256/P-384, Ed25519)".to_owned(),
            );
        }
        Ok(Jwks { keys })
    }

    /// How many usable keys it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn parse_jwk(value: &Value) -> Option<Jwk> {
    let text = |name: &str| value.get(name).and_then(Value::as_str);
    let bytes = |name: &str| text(name).and_then(|text| b64(text).ok());
    if text("use").is_some_and(|usage| usage != "sig") {
        return None;
    }
    if let Some(ops) = value.get("key_ops").and_then(Value::as_array)
        && !ops.iter().any(|op| op.as_str() == Some("verify"))
    {
        return None;
    }
    let key = match (text("kty")?, text("crv")) {
        ("RSA", _) => PublicKey::Rsa {
            n: bytes("n")?,
            e: bytes("e")?,
        },
        ("EC", Some(curve @ ("P-256" | "P-384"))) => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            let size = if curve == "P-256" { 32 } else { 48 };
            if x.len() != size || y.len() != size {
                return None;
            }
            let mut point = vec![0x04];
            point.extend(x);
            point.extend(y);
            if curve == "P-256" {
                PublicKey::P256(point)
            } else {
                PublicKey::P384(point)
            }
        }
        ("OKP", Some("Ed25519")) => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return None;
            }
            PublicKey::Ed25519(x)
        }
        _ => return None,
    };
    Some(Jwk {
        kid: text("kid").map(str::to_owned),
        alg: text("alg").map(str::to_owned),
        key,
    })
}

/// What a token must say.
#[derive(Clone, Debug)]
pub struct Expectations {
    /// The exact `iss`.
    pub issuer: String,
    /// An `aud` it must carry.
    pub audience: String,
    /// The claim naming the person.
    pub name_claim: String,
    /// The claim listing their groups.
    pub groups_claim: String,
    /// Tolerated clock skew, in seconds.
    pub leeway_secs: i64,
}

/// Who a verified token says the person is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The name claim's value, as given.
    pub name: String,
    /// The groups claim's values, as given.
    pub groups: Vec<String>,
    /// `iss#sub`.
    pub credential_id: String,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    /// Not a compact JWS of three base64url parts, or too large.
    #[error("not a JWT")]
    Malformed,
    /// The header's algorithm is not one vigil accepts.
    #[error("algorithm `{0}` is not accepted")]
    Algorithm(String),
    /// No key of the JWKS matches the header's `kid` and algorithm.
    #[error("no key of the issuer matches the token's key id and algorithm")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    Signature,
    /// A claim is missing or wrong.
    #[error("{0}")]
    Claims(String),
}

impl TokenRefused {
    /// A short, fixed label for metrics.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            TokenRefused::Malformed => "malformed",
            TokenRefused::Algorithm(_) => "algorithm",
            TokenRefused::UnknownKey => "unknown_key",
            TokenRefused::Signature => "signature",
            TokenRefused::Claims(_) => "claims",
        }
    }
}

/// Whether `token` looks like a JWT at all (three dot-separated parts).
#[must_use]
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("ey")
}

/// Verifies `token` against `keys` and `expected` at `now_secs` (seconds since the epoch).
///
/// # Errors
///
/// Why it was refused; see the module docs for what is checked.
pub fn verify(
    token: &str,
    keys: &Jwks,
    expected: &Expectations,
    now_secs: i64,
) -> Result<Verified, TokenRefused> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenRefused::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenRefused::Malformed);
    };
    let header = json_object(header_b64)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenRefused::Malformed)?;
    if header.contains_key("crit") {
        return Err(TokenRefused::Claims(
            "the token names critical header extensions vigil does not understand".to_owned(),
        ));
    }
    let algorithm = algorithm(alg)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let signature = b64(signature_b64).map_err(|()| TokenRefused::Malformed)?;
    let signed = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(TokenRefused::Malformed)?
        .as_bytes();
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)))
        .filter(|key| key.alg.as_deref().is_none_or(|key_alg| key_alg == alg))
        .filter(|key| algorithm.fits(&key.key))
        .collect();
    if candidates.is_empty() {
        return Err(TokenRefused::UnknownKey);
    }
    if !candidates
        .iter()
        .any(|key| algorithm.verify(&key.key, signed, &signature))
    {
        return Err(TokenRefused::Signature);
    }
    let claims = json_object(payload_b64)?;
    check_claims(&claims, expected, now_secs)
}

fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expectations,
    now_secs: i64,
) -> Result<Verified, TokenRefused> {
    let refuse = |why: String| Err(TokenRefused::Claims(why));
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if issuer != expected.issuer {
        return refuse(format!(
            "issued by `{}`, not by `{}`",
            shown(issuer),
            expected.issuer
        ));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(audience)) => *audience == expected.audience,
        Some(Value::Array(audiences)) => audiences
            .iter()
            .any(|audience| audience.as_str() == Some(expected.audience.as_str())),
        _ => false,
    };
    if !audience_ok {
        return refuse(format!("not issued for audience `{}`", expected.audience));
    }
    let Some(expires) = claims.get("exp").and_then(Value::as_f64) else {
        return refuse("the token has no `exp`".to_owned());
    };
    if (now_secs as f64) >= expires + expected.leeway_secs as f64 {
        return refuse("the token has expired".to_owned());
    }
    if let Some(not_before) = claims.get("nbf") {
        let Some(not_before) = not_before.as_f64() else {
            return refuse("`nbf` is not a number".to_owned());
        };
        if (now_secs as f64) + (expected.leeway_secs as f64) < not_before {
            return refuse("the token is not valid yet".to_owned());
        }
    }
    let Some(subject) = claims.get("sub").and_then(Value::as_str) else {
        return refuse("the token has no `sub`".to_owned());
    };
    let Some(name) = claims.get(&expected.name_claim).and_then(Value::as_str) else {
        return refuse(format!(
            "the token has no `{}` claim to name the person",
            expected.name_claim
        ));
    };
    let groups = match claims.get(&expected.groups_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(groups)) => groups
            .iter()
            .take(256)
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            return refuse(format!(
                "the `{}` claim is not a list of groups",
                expected.groups_claim
            ));
        }
    };
    Ok(Verified {
        name: name.to_owned(),
        groups,
        credential_id: format!("{issuer}#{}", shown(subject)),
    })
}

/// A claim's text as messages and ids show it: bounded, control characters escaped.
fn shown(text: &str) -> String {
    text.chars()
        .take(200)
        .flat_map(char::escape_debug)
        .collect()
}

fn b64(text: &str) -> Result<Vec<u8>, ()> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ())
}

fn json_object(part: &str) -> Result<Map<String, Value>, TokenRefused> {
    let bytes = b64(part).map_err(|()| TokenRefused::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(TokenRefused::Malformed),
    }
}

/// The algorithms accepted.
#[derive(Clone, Copy, Debug)]
enum Algorithm {
    RsaPkcs1(&'static signature::RsaParameters),
    RsaPss(&'static signature::RsaParameters),
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

fn algorithm(alg: &str) -> Result<Algorithm, TokenRefused> {
    Ok(match alg {
        "RS256" => Algorithm::RsaPkcs1(&signature::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => Algorithm::RsaPkcs1(&signature::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => Algorithm::RsaPkcs1(&signature::RSA_PKCS1_2048_8192_SHA512),
        "PS256" => Algorithm::RsaPss(&signature::RSA_PSS_2048_8192_SHA256),
        "PS384" => Algorithm::RsaPss(&signature::RSA_PSS_2048_8192_SHA384),
        "PS512" => Algorithm::RsaPss(&signature::RSA_PSS_2048_8192_SHA512),
        "ES256" => Algorithm::EcdsaP256,
        "ES384" => Algorithm::EcdsaP384,
        "EdDSA" => Algorithm::Ed25519,
        other => return Err(TokenRefused::Algorithm(shown(other))),
    })
}

impl Algorithm {
    fn fits(self, key: &PublicKey) -> bool {
        matches!(
            (self, key),
            (
                Algorithm::RsaPkcs1(_) | Algorithm::RsaPss(_),
                PublicKey::Rsa { .. }
            ) | (Algorithm::EcdsaP256, PublicKey::P256(_))
                | (Algorithm::EcdsaP384, PublicKey::P384(_))
                | (Algorithm::Ed25519, PublicKey::Ed25519(_))
        )
    }

    fn verify(self, key: &PublicKey, message: &[u8], signature_bytes: &[u8]) -> bool {
        let unparsed = |algorithm: &'static dyn VerificationAlgorithm, key: &[u8]| {
            UnparsedPublicKey::new(algorithm, key.to_vec())
                .verify(message, signature_bytes)
                .is_ok()
        };
        match (self, key) {
            (
                Algorithm::RsaPkcs1(parameters) | Algorithm::RsaPss(parameters),
                PublicKey::Rsa { n, e },
            ) => RsaPublicKeyComponents { n, e }
                .verify(parameters, message, signature_bytes)
                .is_ok(),
            (Algorithm::EcdsaP256, PublicKey::P256(point)) => {
                unparsed(&signature::ECDSA_P256_SHA256_FIXED, point)
            }
            (Algorithm::EcdsaP384, PublicKey::P384(point)) => {
                unparsed(&signature::ECDSA_P384_SHA384_FIXED, point)
            }
            (Algorithm::Ed25519, PublicKey::Ed25519(point)) => unparsed(&signature::ED25519, point),
            _ => false,
        }
    }
}

#[cfg(test)]
#[path = "oidc_tests.rs"]
mod tests;
