//! The console's sessions: a bounded map from the SHA-256 of a random cookie value to what
//! proves who signed in (their token, or their client certificate), re-checked on every
//! request so that a token revoked by a SIGHUP reload, or expired, ends its sessions at
//! once. Each session has its own CSRF token, which every form carries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use vigil_connectors::secret::Secret;

/// What a session holds to authenticate each request again.
#[derive(Clone)]
pub(crate) enum Proof {
    /// A personal or OIDC token, as the person typed it.
    Token(Secret),
    /// A client certificate (DER); requests must come with the same one.
    Certificate(Vec<u8>),
}

/// One signed-in person.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) proof: Proof,
    pub(crate) csrf: String,
    pub(crate) expires_at_ms: i64,
    created_ms: i64,
}

/// The sessions, at most `max` of them.
pub(crate) struct Sessions {
    max: usize,
    ttl: Duration,
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
}

/// What [`Sessions::start`] did.
pub(crate) struct Started {
    /// The cookie value (shown once, never stored).
    pub(crate) cookie: String,
    /// Whether an older session was ended to make room.
    pub(crate) evicted: bool,
}

impl Sessions {
    pub(crate) fn new(max: usize, ttl: Duration) -> Sessions {
        Sessions {
            max: max.max(1),
            ttl,
            by_digest: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `proof` at `now_ms`.
    ///
    /// # Errors
    /// When the system has no randomness to give.
    pub(crate) fn start(&self, proof: Proof, now_ms: i64) -> anyhow::Result<Started> {
        let cookie = random_token()?;
        let csrf = random_token()?;
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let session = Session {
            proof,
            csrf,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            created_ms: now_ms,
        };
        let mut evicted = false;
        let mut sessions = self
            .by_digest
            .lock()
            .map_err(|_| anyhow::anyhow!("the session store is poisoned"))?;
        sessions.retain(|_, session| session.expires_at_ms > now_ms);
        if sessions.len() >= self.max {
            // Full of live sessions: the oldest sign-in ends (its owner signs in again).
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.created_ms)
                .map(|(digest, _)| *digest)
            {
                sessions.remove(&oldest);
                evicted = true;
            }
        }
        sessions.insert(digest(&cookie), session);
        Ok(Started { cookie, evicted })
    }

    /// The live session of `cookie` at `now_ms`.
    pub(crate) fn get(&self, cookie: &str, now_ms: i64) -> Option<Session> {
        let mut sessions = self.by_digest.lock().ok()?;
        let key = digest(cookie);
        match sessions.get(&key) {
            Some(session) if session.expires_at_ms > now_ms => Some(session.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `cookie`.
    pub(crate) fn end(&self, cookie: &str) {
        if let Ok(mut sessions) = self.by_digest.lock() {
            sessions.remove(&digest(cookie));
        }
    }

    /// Sessions held now (expired ones included until the next sign-in sweeps them).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_digest.lock().map_or(0, |sessions| sessions.len())
    }
}

fn digest(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

/// 32 random bytes, hex.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    Ok(hex::encode(bytes))
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> Proof {
        Proof::Token(Secret::new(value))
    }

    #[test]
    fn a_session_lives_until_its_ttl_and_ends_on_sign_out() {
        let sessions = Sessions::new(10, Duration::from_secs(60));
        let started = sessions.start(token("t"), 1_000).unwrap();
        assert!(!started.evicted);
        let session = sessions.get(&started.cookie, 60_999).unwrap();
        assert_eq!(session.csrf.len(), 64);
        assert!(sessions.get(&started.cookie, 61_000).is_none(), "expired");
        let again = sessions.start(token("t"), 2_000).unwrap();
        sessions.end(&again.cookie);
        assert!(sessions.get(&again.cookie, 2_001).is_none(), "signed out");
        assert!(sessions.get("not-a-session", 2_001).is_none());
    }

    #[test]
    fn past_the_bound_the_oldest_sign_in_ends() {
        let sessions = Sessions::new(2, Duration::from_secs(600));
        let first = sessions.start(token("a"), 1).unwrap();
        let second = sessions.start(token("b"), 2).unwrap();
        let third = sessions.start(token("c"), 3).unwrap();
        assert!(third.evicted);
        assert_eq!(sessions.len(), 2);
        assert!(sessions.get(&first.cookie, 4).is_none());
        assert!(sessions.get(&second.cookie, 4).is_some());
        assert!(sessions.get(&third.cookie, 4).is_some());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}
