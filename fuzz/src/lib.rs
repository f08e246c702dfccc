//! What the fuzz targets share: the fixed test consortium every check runs against, and the
//! round-trip assertion each decoder must pass.
//!
//! The consortium is `cradle_testkit::TestConsortium` under the default policy: the same keys,
//! chain id and genesis time as the ledger's test world (`ledger/tests/common`) that the seed
//! corpora are made from, so seeded blocks, votes and answers verify and the fuzzer starts
//! from inputs that reach past the signature checks.

use std::sync::LazyLock;

use borsh::BorshSerialize;
use cradle_ledger::{Consortium, Policy};
use cradle_testkit::TestConsortium;

static CONSORTIUM: LazyLock<TestConsortium> =
    LazyLock::new(|| TestConsortium::new(Policy::default()));

/// The test consortium the targets verify against.
pub fn test_consortium() -> &'static TestConsortium {
    &CONSORTIUM
}

/// Its ledger view.
pub fn consortium() -> &'static Consortium {
    &CONSORTIUM.consortium
}

/// Asserts the canonical-encoding invariant: whatever `decode` accepted re-encodes to exactly
/// the bytes it came from (the codec refuses trailing bytes and has one encoding per value), and
/// those bytes decode to an equal value.
pub fn assert_canonical<T, E>(input: &[u8], value: &T, decode: impl Fn(&[u8]) -> Result<T, E>)
where
    T: BorshSerialize + PartialEq + std::fmt::Debug,
    E: std::fmt::Debug,
{
    let encoded = cradle_ledger::codec::encode(value);
    assert_eq!(encoded, input, "decode accepted a non-canonical encoding");
    match decode(&encoded) {
        Ok(again) => assert_eq!(&again, value, "re-decoding gave another value"),
        Err(e) => panic!("the re-encoded value does not decode: {e:?}"),
    }
}
