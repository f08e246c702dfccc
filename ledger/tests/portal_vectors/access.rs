//! The portal's access-request vectors (`node/portal/test/vectors/access.json`): the request a
//! patient's page signs to fetch her own record (purpose PATRQT, no justification), and one of
//! another purpose, byte for byte as the ledger encodes and signs it, with the fetch body a
//! custodian reads (`SignedAccessRequest::encode`). Each is checked with the ledger's decoder
//! and verifier, and a request signed for another chain is refused.

use cradle_ledger::access::{AccessRequest, SignedAccessRequest};
use cradle_ledger::crypto::TAG_ACCESS_REQUEST;
use cradle_ledger::tx::Purpose;
use cradle_ledger::{ArchiveId, Keypair};
use cradle_testkit::TestConsortium;
use serde_json::{Value, json};

use super::dec;

pub fn vectors(t: &TestConsortium) -> Value {
    let chain = t.chain_id();
    let cases = [
        (
            "own-record",
            0x21u8,
            Purpose::PatientRequest,
            1_780_000_000_123u64,
            0x44u8,
            0x0au8,
        ),
        (
            "treatment",
            0x22,
            Purpose::Treat,
            1_780_000_009_999,
            0x45,
            0x0b,
        ),
    ];
    let mut out = Vec::new();
    for (name, seed, purpose, requested_at_ms, id, archive) in cases {
        let key = Keypair::from_seed(&[seed; 32]);
        let request = AccessRequest {
            accessor: key.public_key(),
            archive: ArchiveId([archive; 32]),
            purpose,
            justification: None,
            requested_at_ms,
            request_id: [id; 16],
        };
        let signature = key.sign(TAG_ACCESS_REQUEST, &chain, &request);
        let signed = SignedAccessRequest {
            request: request.clone(),
            signature,
        };
        signed.verify(&chain).unwrap();
        assert!(signed.verify(&[0x99; 32]).is_err(), "bound to its chain");
        let body = signed.encode();
        assert_eq!(SignedAccessRequest::decode(&body).unwrap(), signed);
        let borsh = borsh::to_vec(&request).unwrap();
        let mut signing = TAG_ACCESS_REQUEST.to_vec();
        signing.extend_from_slice(&chain);
        signing.extend_from_slice(&borsh);
        out.push(json!({
            "name": name,
            "seed": hex::encode([seed; 32]),
            "accessor": hex::encode(request.accessor.0),
            "archive": hex::encode(request.archive.0),
            "purpose": purpose.code(),
            "requested_at_ms": dec(requested_at_ms),
            "request_id": hex::encode(request.request_id),
            "borsh": hex::encode(&borsh),
            "signing_bytes": hex::encode(&signing),
            "signature": hex::encode(signed.signature.0),
            "body": hex::encode(&body),
        }));
    }
    json!({ "requests": out })
}
