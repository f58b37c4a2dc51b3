//! Encryption at rest for the device's store. Records, what is set aside and the session's
//! tokens are sealed (AES-256-GCM, ring) with a random data key. The data key is kept only
//! wrapped: under a key derived from the user's passphrase (Argon2id), which unlocks the store
//! offline, and under the device key the server hands out at each password sign-in, which
//! lets a user who forgot the passphrase sign in again and choose a new one. Wrong passphrases
//! are throttled; after MAX_TRIES the store is deleted (see `main`).
//!
//! Sealed values are [1, nonce (12 bytes), ciphertext and tag], bound to what they are
//! (additional data), so one cannot be swapped for another.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Where the passphrase comes from.
pub const PASSPHRASE_ENV: &str = "FIELDBOOK_DEVICE_PASSPHRASE";
pub const MIN_PASSPHRASE_CHARS: usize = 8;
/// Wrong passphrases in a row before the store is deleted.
pub const MAX_TRIES: i64 = 10;
/// Wrong passphrases allowed before each further try must wait (1 s, then a second more each time).
const FREE_TRIES: i64 = 3;
const VERSION: u8 = 1;

/// The store is locked and this passphrase does not open it.
#[derive(Debug, thiserror::Error)]
pub enum Locked {
    #[error(
        "set {PASSPHRASE_ENV} to this device's passphrase (at least {MIN_PASSPHRASE_CHARS} characters): its store is kept encrypted with it"
    )]
    NoPassphrase,
    #[error("the passphrase is not right ({tries_left} tries left before this device's store is deleted){}", wait_note(*.wait_secs))]
    Wrong { tries_left: i64, wait_secs: i64 },
    #[error("too soon after a wrong passphrase: wait {wait_secs} seconds ({tries_left} tries left)")]
    TooSoon { tries_left: i64, wait_secs: i64 },
    #[error("too many wrong passphrases")]
    TooManyTries,
}

fn wait_note(wait_secs: i64) -> String {
    if wait_secs > 0 { format!("; wait {wait_secs} seconds before trying again") } else { String::new() }
}

/// The data key, unwrapped.
pub struct DataKey(LessSafeKey);

/// The wrapped data key and the throttle, as the store keeps them (in clear: they give nothing
/// away without the passphrase or the device key).
#[derive(Debug, Clone, Default)]
pub struct Wrapped {
    pub salt: String,
    pub by_passphrase: String,
    pub by_device: Option<String>,
    pub failures: i64,
    pub retry_at: i64,
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).expect("the system's random number generator works");
    bytes
}

fn aes_key(raw: &[u8]) -> anyhow::Result<LessSafeKey> {
    Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, raw).map_err(|_| anyhow::anyhow!("a key of the wrong size"))?))
}

fn passphrase_key(passphrase: &str, salt: &[u8]) -> anyhow::Result<LessSafeKey> {
    let mut raw = [0u8; 32];
    argon2::Argon2::default()
        .hash_password_into(passphrase.as_bytes(), salt, &mut raw)
        .map_err(|e| anyhow::anyhow!("deriving the key from the passphrase: {e}"))?;
    let key = aes_key(&raw);
    raw.fill(0);
    key
}

fn seal_with(key: &LessSafeKey, plain: &[u8], what: &str) -> Vec<u8> {
    let nonce = random::<NONCE_LEN>();
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plain.len() + 16);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    let mut body = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(what.as_bytes()), &mut body)
        .expect("sealing cannot fail for in-memory data");
    out.extend_from_slice(&body);
    out
}

fn open_with(key: &LessSafeKey, sealed: &[u8], what: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(sealed.len() > 1 + NONCE_LEN && sealed[0] == VERSION, "not sealed by this version");
    let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).expect("nonce length");
    let mut body = sealed[1 + NONCE_LEN..].to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(what.as_bytes()), &mut body)
        .map_err(|_| anyhow::anyhow!("cannot decrypt {what}: wrong key, or altered"))?;
    Ok(plain.to_vec())
}

/// Whether `bytes` were sealed (values stored before encryption was on are not).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&VERSION)
}

impl DataKey {
    pub fn seal(&self, plain: &[u8], what: &str) -> Vec<u8> {
        seal_with(&self.0, plain, what)
    }

    pub fn open(&self, sealed: &[u8], what: &str) -> anyhow::Result<Vec<u8>> {
        open_with(&self.0, sealed, what)
    }

    /// A text value sealed, as base64.
    pub fn seal_text(&self, plain: &str, what: &str) -> String {
        STANDARD.encode(self.seal(plain.as_bytes(), what))
    }

    pub fn open_text(&self, sealed: &str, what: &str) -> anyhow::Result<String> {
        let bytes = STANDARD.decode(sealed).context("a sealed value that is not base64")?;
        Ok(String::from_utf8(self.open(&bytes, what)?)?)
    }
}

/// The passphrase from the environment.
pub fn passphrase() -> Result<String, Locked> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) if p.chars().count() >= MIN_PASSPHRASE_CHARS => Ok(p),
        _ => Err(Locked::NoPassphrase),
    }
}

/// A new data key, wrapped under `passphrase`.
pub fn create(passphrase: &str) -> anyhow::Result<(DataKey, Wrapped)> {
    let raw = random::<32>();
    let wrapped = wrap(&raw, passphrase, None)?;
    Ok((DataKey(aes_key(&raw)?), wrapped))
}

fn wrap(raw: &[u8], passphrase: &str, by_device: Option<String>) -> anyhow::Result<Wrapped> {
    let salt = random::<16>();
    let by_passphrase = seal_with(&passphrase_key(passphrase, &salt)?, raw, "data key by passphrase");
    Ok(Wrapped {
        salt: STANDARD.encode(salt),
        by_passphrase: STANDARD.encode(by_passphrase),
        by_device,
        ..Default::default()
    })
}

fn raw_by_passphrase(wrapped: &Wrapped, passphrase: &str) -> anyhow::Result<Vec<u8>> {
    let salt = STANDARD.decode(&wrapped.salt)?;
    open_with(&passphrase_key(passphrase, &salt)?, &STANDARD.decode(&wrapped.by_passphrase)?, "data key by passphrase")
}

/// Unlocks with the passphrase, counting a wrong one: returns the key, or why not, and the
/// throttle as it is now (to store).
pub fn unlock(mut wrapped: Wrapped, passphrase: &str, now_secs: i64) -> (Result<DataKey, Locked>, Wrapped) {
    let tries_left = |w: &Wrapped| MAX_TRIES - w.failures;
    if now_secs < wrapped.retry_at {
        let locked = Locked::TooSoon { tries_left: tries_left(&wrapped), wait_secs: wrapped.retry_at - now_secs };
        return (Err(locked), wrapped);
    }
    match raw_by_passphrase(&wrapped, passphrase).and_then(|raw| aes_key(&raw)) {
        Ok(key) => {
            wrapped.failures = 0;
            wrapped.retry_at = 0;
            (Ok(DataKey(key)), wrapped)
        }
        Err(_) => {
            wrapped.failures += 1;
            if wrapped.failures >= MAX_TRIES {
                return (Err(Locked::TooManyTries), wrapped);
            }
            let wait = if wrapped.failures >= FREE_TRIES { wrapped.failures - FREE_TRIES + 1 } else { 0 };
            wrapped.retry_at = now_secs + wait;
            (Err(Locked::Wrong { tries_left: tries_left(&wrapped), wait_secs: wait }), wrapped)
        }
    }
}

/// After a password sign-in: unwraps the data key with the device key (when the passphrase was
/// forgotten), and wraps it under the device key and `passphrase` from now on.
pub fn rewrap(
    wrapped: &Wrapped,
    key: Option<&DataKey>,
    device_key: &str,
    passphrase: &str,
) -> anyhow::Result<(DataKey, Wrapped)> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let device = aes_key(&URL_SAFE_NO_PAD.decode(device_key).context("a device key that is not base64url")?)?;
    let raw = match (key, &wrapped.by_device) {
        (Some(_), _) => raw_by_passphrase(wrapped, passphrase)?,
        (None, Some(by_device)) => open_with(&device, &STANDARD.decode(by_device)?, "data key by device key")
            .context("this device's store was not made for this sign-in")?,
        (None, None) => anyhow::bail!("the passphrase is not right, and this store was never unlocked by a sign-in"),
    };
    let by_device = STANDARD.encode(seal_with(&device, &raw, "data key by device key"));
    let rewrapped = wrap(&raw, passphrase, Some(by_device))?;
    Ok((DataKey(aes_key(&raw)?), rewrapped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_purpose() {
        let (key, _) = create("correct horse").unwrap();
        let sealed = key.seal(b"notes", "document:a");
        assert!(is_sealed(&sealed) && !sealed.windows(5).any(|w| w == b"notes"));
        assert_eq!(key.open(&sealed, "document:a").unwrap(), b"notes");
        assert!(key.open(&sealed, "document:b").is_err(), "bound to what it is");
        let (other, _) = create("correct horse").unwrap();
        assert!(other.open(&sealed, "document:a").is_err());
    }

    #[test]
    fn wrong_passphrases_are_throttled_then_too_many() {
        let (key, mut wrapped) = create("correct horse").unwrap();
        let sealed = key.seal(b"x", "t");
        let mut now = 1000;
        for failure in 1..MAX_TRIES {
            let (result, next) = unlock(wrapped, "wrong horse", now);
            wrapped = next;
            match result {
                Err(Locked::Wrong { tries_left, wait_secs }) => {
                    assert_eq!(tries_left, MAX_TRIES - failure);
                    assert_eq!(wait_secs, if failure >= FREE_TRIES { failure - FREE_TRIES + 1 } else { 0 });
                    if wait_secs > 0 {
                        // Even the right passphrase is not tried before the wait is over.
                        let (early, same) = unlock(wrapped.clone(), "correct horse", now);
                        assert!(matches!(early, Err(Locked::TooSoon { .. })));
                        assert_eq!(same.failures, failure);
                    }
                    now += wait_secs;
                }
                other => panic!("{:?}", other.err()),
            }
        }
        let (last, _) = unlock(wrapped.clone(), "wrong horse", now);
        assert!(matches!(last, Err(Locked::TooManyTries)));
        let (right, reset) = unlock(wrapped, "correct horse", now);
        assert_eq!(right.unwrap().open(&sealed, "t").unwrap(), b"x");
        assert_eq!(reset.failures, 0);
    }

    #[test]
    fn a_sign_in_recovers_a_forgotten_passphrase() {
        let device_key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        let (key, wrapped) = create("correct horse").unwrap();
        let sealed = key.seal(b"x", "t");
        let (_, signed_in) = rewrap(&wrapped, Some(&key), &device_key, "correct horse").unwrap();
        let (recovered, renewed) = rewrap(&signed_in, None, &device_key, "new passphrase").unwrap();
        assert_eq!(recovered.open(&sealed, "t").unwrap(), b"x");
        assert!(unlock(renewed, "new passphrase", 0).0.is_ok());
        let other_device = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([8u8; 32]);
        assert!(rewrap(&signed_in, None, &other_device, "new passphrase").is_err());
    }
}
