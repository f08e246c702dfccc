// Signed API requests, built in the page: the `x-cradle-auth` header a node checks.
//
// Mirrors `ledger/src/api_request.rs`: the signer signs
// `"cradle.api.request.v1\0" || chain_id || borsh(ApiRequest)` where ApiRequest = signer key
// (32) || node member key (32) || method (string, at most 8 bytes) || path with query (string,
// at most 1024 bytes) || SHA-256 of the body (32) || time_ms (u64) || nonce (16 random bytes),
// and the header carries hex of `codec::encode(SignedApiRequest)`: version byte 1, the request,
// then the 64-byte signature. The private key stays a WebCrypto CryptoKey; only the public key,
// the request and the signature leave the page.

import { BorshWriter, concatBytes, requireBytes, sha256, toHex, utf8 } from './bytes.js';

export const TAG_API_REQUEST = utf8('cradle.api.request.v1\0');
export const AUTH_HEADER = 'x-cradle-auth';
export const METHOD_BYTES_MAX = 8;
export const PATH_BYTES_MAX = 1024;

/** The Borsh bytes of an ApiRequest `{signer, node, method, path, bodySha256, timeMs, nonce}`. */
export function encodeApiRequest(req) {
  return new BorshWriter()
    .fixed(req.signer, 32, 'signer').fixed(req.node, 32, 'node')
    .string(req.method, METHOD_BYTES_MAX, 'method').string(req.path, PATH_BYTES_MAX, 'path')
    .fixed(req.bodySha256, 32, 'body hash').u64(req.timeMs, 'time_ms').fixed(req.nonce, 16, 'nonce')
    .toBytes();
}

/** What the signer signs for `req` on chain `chainId`. */
export function apiRequestSigningBytes(chainId, req) {
  return concatBytes(TAG_API_REQUEST, requireBytes(chainId, 'chain id', 32), encodeApiRequest(req));
}

/**
 * The `x-cradle-auth` header value for a request to the node whose member key is `node`.
 * `signer = {publicKey, privateKey}` with `privateKey` an Ed25519 CryptoKey that may sign
 * (extractable or not). `body` is the exact request body (empty for a GET); `nowMs` and
 * `nonce` default to the clock and 16 random bytes.
 */
export async function signedRequestHeader({ chainId, signer, node, method, path, body = new Uint8Array(0), nowMs = Date.now(), nonce }) {
  const req = {
    signer: signer.publicKey,
    node,
    method,
    path,
    bodySha256: await sha256(body),
    timeMs: BigInt(nowMs),
    nonce: nonce ?? globalThis.crypto.getRandomValues(new Uint8Array(16)),
  };
  const message = apiRequestSigningBytes(chainId, req);
  const signature = new Uint8Array(await globalThis.crypto.subtle.sign('Ed25519', signer.privateKey, message));
  return toHex(concatBytes(Uint8Array.of(1), encodeApiRequest(req), signature));
}
