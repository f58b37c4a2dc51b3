//! Built-in passwords: argon2id with the crate's default parameters, stored as PHC strings
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), so parameters can change without a migration.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in characters (hashing cost grows with the input).
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password is too long: use at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// Hashes a new password (random salt) to a PHC string; refuses ones that are too short.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    hash_unchecked(password)
}

fn hash_unchecked(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True if `password` matches the PHC string (with the parameters stored in it). A malformed
/// hash matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, to verify against when the user is unknown or has no
/// password, so such a failure takes as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        let random = uuid::Uuid::new_v4().to_string();
        hash_unchecked(&random).expect("hashing a random password")
    });
    &DUMMY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_short_passwords_are_refused() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("correct horse battery", "not a phc string"));
        assert!(matches!(hash_password("short pass"), Err(PasswordError::TooShort)));
        assert_ne!(hash_password("correct horse battery").unwrap(), hash, "salted");
        assert!(!verify_password("anything at all", dummy_hash()));
    }
}
