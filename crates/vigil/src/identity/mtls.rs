//! Client certificates: who a certificate that the TLS handshake already verified against the
//! configured client CA names. The name is the subjectAltName email (or the subject's common
//! name, as configured); the groups are the subject's organizational units; the credential id
//! is the certificate's SHA-256 fingerprint.

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::admin::CertificateName;

/// What a client certificate says about its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// The name, as written in the certificate.
    pub name: String,
    /// The subject's organizational units.
    pub groups: Vec<String>,
    /// `sha256:<hex>` of the certificate.
    pub credential_id: String,
}

/// Reads the identity out of a client certificate (DER).
///
/// # Errors
///
/// When the certificate does not parse or does not carry the configured name.
pub fn identity(der: &[u8], name_from: CertificateName) -> Result<CertificateIdentity, String> {
    let (_, certificate) = X509Certificate::from_der(der)
        .map_err(|error| format!("the client certificate does not parse: {error}"))?;
    let subject = certificate.subject();
    let name = match name_from {
        CertificateName::Email => certificate
            .subject_alternative_name()
            .ok()
            .flatten()
            .and_then(|extension| {
                extension
                    .value
                    .general_names
                    .iter()
                    .find_map(|general| match general {
                        GeneralName::RFC822Name(email) => Some((*email).to_owned()),
                        _ => None,
                    })
            })
            .ok_or("the client certificate has no email in its subjectAltName")?,
        CertificateName::CommonName => subject
            .iter_common_name()
            .next()
            .and_then(|name| name.as_str().ok())
            .map(str::to_owned)
            .ok_or("the client certificate's subject has no common name")?,
    };
    let groups = subject
        .iter_organizational_unit()
        .filter_map(|unit| unit.as_str().ok())
        .map(str::to_owned)
        .collect();
    Ok(CertificateIdentity {
        name,
        groups,
        credential_id: format!("sha256:{}", hex::encode(Sha256::digest(der))),
    })
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    use super::*;

    fn certificate(common_name: &str, units: &[&str], email: Option<&str>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, common_name);
        for unit in units {
            subject.push(DnType::OrganizationalUnitName, *unit);
        }
        params.distinguished_name = subject;
        if let Some(email) = email {
            params.subject_alt_names = vec![SanType::Rfc822Name(email.try_into().unwrap())];
        }
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_name_and_groups_come_from_the_certificate() {
        let der = certificate("Alice", &["search-oncall"], Some("alice@example.com"));
        let by_email = identity(&der, CertificateName::Email).unwrap();
        assert_eq!(by_email.name, "alice@example.com");
        assert_eq!(by_email.groups, ["search-oncall"]);
        assert!(by_email.credential_id.starts_with("sha256:"));
        assert_eq!(by_email.credential_id.len(), "sha256:".len() + 64);
        assert_eq!(
            identity(&der, CertificateName::CommonName).unwrap().name,
            "Alice"
        );
        let no_email = certificate("svc-deployer", &[], None);
        assert_eq!(
            identity(&no_email, CertificateName::Email),
            Err("the client certificate has no email in its subjectAltName".to_owned())
        );
        assert!(identity(b"not a certificate", CertificateName::Email).is_err());
    }
}
