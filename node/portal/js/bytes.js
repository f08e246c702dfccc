// Bytes for the portal: hex and base64, and a strict Borsh reader and writer.
//
// Mirrors the ledger's canonical encoding (`ledger/src/codec.rs`): `VERSION || borsh(value)`,
// decoded under explicit bounds. The reader refuses, with an Error that names what it was
// reading, every truncated input, every length prefix above the caller's bound (before reading
// the items), every option or bool byte other than 0 or 1, every unknown enum tag and every
// trailing byte. It never returns partial data: a decode either returns the whole value or
// throws.
//
// u64 values are read as BigInt (exact); `u64Number` reads one as a Number and throws when it
// is above Number.MAX_SAFE_INTEGER.

/** The encoding version the ledger writes and reads (`codec::VERSION`). */
export const CODEC_VERSION = 1;

const U64_MAX = (1n << 64n) - 1n;

/** Throws unless `value` is a Uint8Array (optionally of exactly `len` bytes). */
export function requireBytes(value, what, len) {
  if (!(value instanceof Uint8Array)) {
    throw new Error(`${what}: expected bytes, got ${typeof value}`);
  }
  if (len !== undefined && value.length !== len) {
    throw new Error(`${what}: expected ${len} bytes, got ${value.length}`);
  }
  return value;
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes) {
  requireBytes(bytes, 'hex input');
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/**
 * Bytes of a hex string (either case, no prefix, no spaces). With `len`, the result must have
 * exactly that many bytes. Throws on odd length or a non-hex character.
 */
export function fromHex(hex, len, what = 'hex') {
  if (typeof hex !== 'string') throw new Error(`${what}: expected a hex string`);
  if (hex.length % 2 !== 0) throw new Error(`${what}: odd number of hex digits`);
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`${what}: not hex`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  if (len !== undefined && out.length !== len) {
    throw new Error(`${what}: expected ${len} bytes, got ${out.length}`);
  }
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard (padded) base64 of `bytes`. */
export function toBase64(bytes) {
  requireBytes(bytes, 'base64 input');
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.length ? B64[n & 63] : '=';
  }
  return out;
}

/** Bytes of standard padded base64. Throws on any other alphabet, padding or length. */
export function fromBase64(text, what = 'base64') {
  if (typeof text !== 'string') throw new Error(`${what}: expected a base64 string`);
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new Error(`${what}: not padded standard base64`);
  }
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text[i + j];
      n = (n << 6) | (c === '=' ? 0 : B64.indexOf(c));
    }
    for (const shift of [16, 8, 0]) {
      if (o < out.length) out[o++] = (n >> shift) & 255;
    }
  }
  if (toBase64(out) !== text) throw new Error(`${what}: non-canonical base64`);
  return out;
}

/** The concatenation of the given byte arrays. */
export function concatBytes(...parts) {
  const len = parts.reduce((n, p) => n + requireBytes(p, 'part').length, 0);
  const out = new Uint8Array(len);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether `a` and `b` hold the same bytes. */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** UTF-8 bytes of a string. */
export function utf8(text) {
  return new TextEncoder().encode(text);
}

/** SHA-256 of `bytes`, through WebCrypto. */
export async function sha256(bytes) {
  requireBytes(bytes, 'sha256 input');
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
}

/**
 * A strict Borsh reader over one byte array. Every method reads exactly what it names or
 * throws; `finish()` throws if any byte is left over.
 */
export class BorshReader {
  /** @param {Uint8Array} bytes @param {string} what names the input in error messages */
  constructor(bytes, what = 'input') {
    this.bytes = requireBytes(bytes, what);
    this.at = 0;
    this.what = what;
  }

  fail(message) {
    throw new Error(`${this.what}: ${message} (at byte ${this.at})`);
  }

  take(n, field) {
    if (n > this.bytes.length - this.at) {
      this.fail(`truncated: ${field} needs ${n} bytes, ${this.bytes.length - this.at} left`);
    }
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  little(n, field) {
    const b = this.take(n, field);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }

  u8(field = 'u8') {
    return this.take(1, field)[0];
  }

  u16(field = 'u16') {
    return Number(this.little(2, field));
  }

  u32(field = 'u32') {
    return Number(this.little(4, field));
  }

  /** A u64 as a BigInt. */
  u64(field = 'u64') {
    return this.little(8, field);
  }

  /** A u64 as a Number; throws if it is above Number.MAX_SAFE_INTEGER. */
  u64Number(field = 'u64') {
    const v = this.u64(field);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${field} ${v} is too large for a Number`);
    return Number(v);
  }

  bool(field = 'bool') {
    const b = this.u8(field);
    if (b > 1) this.fail(`${field}: invalid bool byte ${b}`);
    return b === 1;
  }

  /** `n` raw bytes (a Borsh fixed-size array), copied. */
  fixed(n, field = 'array') {
    return this.take(n, field).slice();
  }

  /** A u32 length prefix, refused above `max` before anything is read for the items. */
  length(max, field) {
    const len = this.u32(`${field} length`);
    if (len > max) this.fail(`${field} of length ${len} exceeds the bound ${max}`);
    return len;
  }

  /** A length-prefixed vector of at most `max` items, each read by `item(reader, i)`. */
  vec(max, item, field = 'list') {
    const len = this.length(max, field);
    const out = [];
    for (let i = 0; i < len; i++) out.push(item(this, i));
    return out;
  }

  /** A length-prefixed byte vector (`Vec<u8>`) of at most `max` bytes. */
  byteVec(max, field = 'bytes') {
    const len = this.length(max, field);
    return this.fixed(len, field);
  }

  /** A length-prefixed UTF-8 string of at most `max` bytes; invalid UTF-8 is refused. */
  string(max, field = 'string') {
    const raw = this.byteVec(max, field);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      return this.fail(`${field} is not valid UTF-8`);
    }
  }

  /** `Option<T>`: null for None, `item(reader)` for Some; any tag but 0 or 1 is refused. */
  option(item, field = 'option') {
    const tag = this.u8(`${field} tag`);
    if (tag === 0) return null;
    if (tag === 1) return item(this);
    return this.fail(`${field}: invalid option tag ${tag}`);
  }

  /**
   * An enum: reads the one-byte tag and calls `variants[tag](reader)`, which returns the
   * variant's fields. Returns `{kind: names[tag], ...fields}`. Unknown tags are refused.
   */
  enumOf(variants, field = 'enum') {
    const tag = this.u8(`${field} tag`);
    const variant = Object.prototype.hasOwnProperty.call(variants, tag) ? variants[tag] : null;
    if (!variant) this.fail(`${field}: unknown variant tag ${tag}`);
    return variant(this);
  }

  /** Throws if any byte is left. */
  finish() {
    if (this.at !== this.bytes.length) {
      this.fail(`${this.bytes.length - this.at} trailing bytes`);
    }
  }
}

/** Decodes all of `bytes` with `read(reader)`, refusing trailing bytes. */
export function decodeExact(bytes, read, what = 'input') {
  const reader = new BorshReader(bytes, what);
  const value = read(reader);
  reader.finish();
  return value;
}

/**
 * Decodes the ledger's canonical `VERSION || borsh(value)` (`codec::decode`): refuses more than
 * `maxLen` bytes before reading, an empty input, another version and trailing bytes.
 */
export function decodeCanonical(bytes, maxLen, read, what = 'input') {
  requireBytes(bytes, what);
  if (bytes.length > maxLen) throw new Error(`${what}: ${bytes.length} bytes exceed ${maxLen}`);
  if (bytes.length === 0) throw new Error(`${what}: empty input`);
  if (bytes[0] !== CODEC_VERSION) throw new Error(`${what}: unsupported version ${bytes[0]}`);
  return decodeExact(bytes.subarray(1), read, what);
}

/** A Borsh writer for what the portal builds (requests, transactions, test vectors). */
export class BorshWriter {
  constructor() {
    this.parts = [];
  }

  uint(value, bytes, field) {
    const v = BigInt(value);
    const max = (1n << BigInt(8 * bytes)) - 1n;
    if (v < 0n || v > max) throw new Error(`${field}: ${v} out of range for ${8 * bytes} bits`);
    const out = new Uint8Array(bytes);
    let x = v;
    for (let i = 0; i < bytes; i++) {
      out[i] = Number(x & 255n);
      x >>= 8n;
    }
    this.parts.push(out);
    return this;
  }

  u8(v, field = 'u8') {
    return this.uint(v, 1, field);
  }

  u16(v, field = 'u16') {
    return this.uint(v, 2, field);
  }

  u32(v, field = 'u32') {
    return this.uint(v, 4, field);
  }

  /** A u64 from a BigInt or a safe integer Number. */
  u64(v, field = 'u64') {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new Error(`${field}: not a safe integer`);
    if (BigInt(v) > U64_MAX) throw new Error(`${field}: above u64`);
    return this.uint(v, 8, field);
  }

  bool(v) {
    return this.u8(v ? 1 : 0);
  }

  /** Exactly `n` raw bytes (a Borsh fixed-size array). */
  fixed(bytes, n, field = 'array') {
    this.parts.push(requireBytes(bytes, field, n).slice());
    return this;
  }

  /** A length-prefixed byte vector, refused above `max` bytes. */
  byteVec(bytes, max, field = 'bytes') {
    requireBytes(bytes, field);
    if (bytes.length > max) throw new Error(`${field}: ${bytes.length} bytes exceed ${max}`);
    this.u32(bytes.length);
    this.parts.push(bytes.slice());
    return this;
  }

  /** A length-prefixed UTF-8 string, refused above `max` bytes. */
  string(text, max, field = 'string') {
    return this.byteVec(utf8(text), max, field);
  }

  /** A length-prefixed vector, each item written by `item(writer, value)`. */
  vec(items, max, item, field = 'list') {
    if (items.length > max) throw new Error(`${field}: ${items.length} items exceed ${max}`);
    this.u32(items.length);
    for (const v of items) item(this, v);
    return this;
  }

  /** `Option<T>`: tag 0 for null or undefined, else tag 1 and `item(writer, value)`. */
  option(value, item) {
    if (value === null || value === undefined) return this.u8(0);
    this.u8(1);
    item(this, value);
    return this;
  }

  /** The bytes written so far. */
  toBytes() {
    return concatBytes(...this.parts);
  }

  /** `VERSION || bytes written so far`, as `codec::encode` writes. */
  toCanonical() {
    return concatBytes(Uint8Array.of(CODEC_VERSION), this.toBytes());
  }
}
