//! Fuzzing on stable Rust: each target (in `tests/`) feeds generated inputs to code that
//! parses what clients send, and checks it neither panics, hangs nor breaks its invariants.
//! proptest generates the inputs and shrinks a failure to a minimal case.
//!
//! `cargo test -p fieldbook-fuzz` is the smoke run (part of `scripts/test`, about a minute);
//! `FIELDBOOK_FUZZ_SCALE=N` runs N times as many cases (`scripts/fuzz` for a long run).
//! Each target prints how many inputs it ran and the slowest one.

use std::cell::Cell;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// A single input taking longer than this is a hang.
const HANG: Duration = Duration::from_secs(5);

/// Runs `check` on `smoke_cases` × `FIELDBOOK_FUZZ_SCALE` generated inputs; panics with the
/// shrunk input on a failure (a panic inside `check` counts as one).
pub fn fuzz<S: Strategy>(
    name: &str,
    smoke_cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: Debug,
{
    let scale: u32 = std::env::var("FIELDBOOK_FUZZ_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let cases = smoke_cases.saturating_mul(scale.max(1));
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        // Inputs are cheap to make; never give up on rejected ones.
        max_global_rejects: u32::MAX,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let started = Instant::now();
    let executions = Cell::new(0u64);
    let slowest = Cell::new(Duration::ZERO);
    let result = runner.run(&strategy, |input| {
        let at = Instant::now();
        let outcome = check(input);
        let took = at.elapsed();
        executions.set(executions.get() + 1);
        slowest.set(slowest.get().max(took));
        if took > HANG {
            return Err(TestCaseError::fail(format!("one input took {took:?}: a hang")));
        }
        outcome
    });
    eprintln!(
        "fuzz {name}: {} executions (incl. shrinking) in {:.1?}, slowest input {:.1?}",
        executions.get(),
        started.elapsed(),
        slowest.get()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => panic!("fuzz {name} failed: {reason}\nminimal input: {input:#?}"),
        Err(TestError::Abort(reason)) => panic!("fuzz {name} aborted: {reason}"),
    }
}

/// Bytes derived from `seed` by flipping, dropping, duplicating and inserting bytes: a real
/// frame, slightly wrong.
pub fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len().max(1);
    proptest::collection::vec((0..4u8, 0..len, any::<u8>()), 1..8).prop_map(move |edits| {
        let mut bytes = seed.clone();
        for (kind, at, byte) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match kind {
                0 if !bytes.is_empty() => bytes[at] ^= byte | 1,
                1 if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at.min(bytes.len()), byte),
                _ => bytes.truncate(at),
            }
        }
        bytes
    })
}

/// Keys a client might write: every field name of the schemas, component ids, and names no
/// schema has (one of them narrative a client might put in a key).
pub fn field_names() -> Vec<&'static str> {
    let mut names = fieldbook_sync_core::records::SCHEMA_NAMES.to_vec();
    names.extend(["kss-cf-2018/1", "kss-cf-2018/6", "extra", "", "Mother said"]);
    names
}

/// Text a client might write: ordinary words, quotes and escapes, control characters,
/// non-Latin script, ids and dates.
pub fn client_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 .,'\"\\\\/-]{0,24}",
        Just(String::new()),
        Just("pub\" and then \\\"Mother\\\" said".to_owned()),
        Just("kss-cf-2018/1".to_owned()),
        Just("kss-cf-2018/6.2".to_owned()),
        Just("2026-11-20T10:00:00Z".to_owned()),
        Just("2027-03-31".to_owned()),
        Just("shared".to_owned()),
        Just("signed-off".to_owned()),
        Just("automerge:2BqZ1S3CcSbiH7jHnjb6aVdtNgWu".to_owned()),
        "\\PC{0,12}",
        proptest::collection::vec(any::<char>(), 0..8).prop_map(|c| c.into_iter().collect()),
    ]
}
