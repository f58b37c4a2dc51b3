//! Token parsing: any string presented as an access token is verified or refused, never a
//! panic, and a refused token never passes for another user; a key set that does not parse
//! is refused with a reason.

use std::time::Duration;

use fieldbook_fuzz::{fuzz, mutated};
use fieldbook_server::auth::{KeySet, TokenKeys};
use proptest::prelude::*;

#[test]
fn any_string_as_an_access_token() {
    let keys = TokenKeys::from_set(KeySet::generate()).unwrap();
    let genuine = keys.issue("alice", Some("tablet"), Duration::from_secs(600)).unwrap();
    let parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let inputs = prop_oneof![
        mutated(genuine.clone().into_bytes()),
        // Recombined parts, and random base64url in any of them.
        (0..3usize, "[A-Za-z0-9_-]{0,80}").prop_map(move |(i, random)| {
            let mut p = parts.clone();
            p[i] = random;
            p.join(".").into_bytes()
        }),
        proptest::collection::vec(any::<u8>(), 0..200),
        "[A-Za-z0-9_.-]{0,120}".prop_map(String::into_bytes),
    ];
    fuzz("access tokens", 200_000, inputs, |bytes| {
        let token = String::from_utf8_lossy(&bytes);
        if let Ok(claims) = keys.verify(&token) {
            prop_assert_eq!(claims.sub.as_str(), "alice", "a forged token passed: {}", token);
        }
        Ok(())
    });
}

#[test]
fn any_text_as_a_key_set() {
    let genuine = KeySet::generate().to_json().into_bytes();
    let inputs = prop_oneof![mutated(genuine), proptest::collection::vec(any::<u8>(), 0..200)];
    fuzz("key sets", 100_000, inputs, |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(set) = KeySet::parse(&text) {
            prop_assert!(TokenKeys::from_set(set).is_ok(), "a key set parsed but cannot sign: {}", text);
        }
        Ok(())
    });
}
