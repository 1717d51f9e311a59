//! What the HTTP server knows about the other end of a connection, attached to every request
//! as an extension: its address, and the client certificate chain the TLS handshake verified
//! (when the listener terminates TLS with a client CA). The admin API reads it to log who
//! failed to authenticate and to authenticate people by certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

/// The peer of a request's connection.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The peer's address.
    pub addr: SocketAddr,
    /// The client certificate chain the handshake verified, end-entity first; `None` on plain
    /// HTTP or when the client sent none.
    pub client_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}
