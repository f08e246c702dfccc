// bytes.js: hex and base64 round trips, and the Borsh reader refusing truncated, trailing,
// oversized and non-canonical input with an Error (never partial data).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  BorshReader, BorshWriter, decodeCanonical, decodeExact, fromBase64, fromHex, toBase64, toHex,
} from '../js/bytes.js';

test('hex and base64 round trip and refuse malformed text', () => {
  const bytes = Uint8Array.from([0, 1, 0xab, 0xff, 0x10]);
  assert.equal(toHex(bytes), '0001abff10');
  assert.deepEqual(fromHex('0001ABff10'), bytes);
  assert.throws(() => fromHex('abc'), /odd number/);
  assert.throws(() => fromHex('zz'), /not hex/);
  assert.throws(() => fromHex('00', 32, 'key'), /key: expected 32 bytes, got 1/);
  for (let n = 0; n < 7; n++) {
    const b = bytes.subarray(0, n);
    assert.deepEqual(fromBase64(toBase64(b)), b);
  }
  assert.equal(toBase64(Uint8Array.from([0xfb, 0xff])), '+/8=');
  assert.throws(() => fromBase64('abc'), /base64/);
  assert.throws(() => fromBase64('ab-_'), /base64/);
  assert.throws(() => fromBase64('AB=='), /non-canonical/);
});

test('the writer and reader agree on every Borsh shape', () => {
  const w = new BorshWriter().u8(7).u16(0x1234).u32(0xdeadbeef).u64(2n ** 64n - 1n).u64(5).bool(true)
    .fixed(new Uint8Array(3).fill(9), 3).byteVec(Uint8Array.of(1, 2), 4).string('产科 ok', 16)
    .option(null, () => {}).option(42, (ww, v) => ww.u32(v)).vec([1, 2, 3], 3, (ww, v) => ww.u16(v));
  const bytes = w.toBytes();
  const v = decodeExact(bytes, (r) => ({
    a: r.u8(), b: r.u16(), c: r.u32(), d: r.u64(), e: r.u64Number(), f: r.bool(), g: r.fixed(3),
    h: r.byteVec(4), i: r.string(16), j: r.option((x) => x.u32()), k: r.option((x) => x.u32()),
    l: r.vec(3, (x) => x.u16()),
  }));
  assert.deepEqual(v, {
    a: 7, b: 0x1234, c: 0xdeadbeef, d: 2n ** 64n - 1n, e: 5, f: true, g: new Uint8Array(3).fill(9),
    h: Uint8Array.of(1, 2), i: '产科 ok', j: null, k: 42, l: [1, 2, 3],
  });
  // u32 and u64 are little-endian, as Borsh writes them.
  assert.equal(toHex(new BorshWriter().u32(1).u64(258).toBytes()), '010000000201000000000000');
});

test('truncated input is refused at every length', () => {
  const bytes = new BorshWriter().u64(1).vec([7, 8], 10, (w, x) => w.u32(x)).string('abc', 8).toBytes();
  const read = (r) => [r.u64(), r.vec(10, (x) => x.u32()), r.string(8)];
  decodeExact(bytes, read);
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => decodeExact(bytes.subarray(0, n), read), /truncated/, `length ${n}`);
  }
});

test('trailing bytes are refused', () => {
  assert.throws(() => decodeExact(Uint8Array.of(1, 0), (r) => r.u8()), /1 trailing bytes/);
  assert.throws(() => decodeCanonical(Uint8Array.of(1, 5, 0), 10, (r) => r.u8()), /trailing/);
});

test('lengths over the caller bound are refused before the items are read', () => {
  // Claims 2^32 - 1 items and holds none: refused on the bound, not on truncation.
  const huge = Uint8Array.of(0xff, 0xff, 0xff, 0xff);
  assert.throws(() => decodeExact(huge, (r) => r.vec(1024, (x) => x.u8(), 'signatures')), /signatures of length 4294967295 exceeds the bound 1024/);
  assert.throws(() => decodeExact(huge, (r) => r.byteVec(16)), /exceeds the bound 16/);
  const long = new BorshWriter().string('abcdef', 6).toBytes();
  assert.throws(() => decodeExact(long, (r) => r.string(5, 'name')), /name of length 6 exceeds the bound 5/);
  assert.throws(() => new BorshWriter().vec([1, 2], 1, (w, v) => w.u8(v)), /exceed 1/);
});

test('non-canonical tags, bools, UTF-8 and oversized numbers are refused', () => {
  assert.throws(() => decodeExact(Uint8Array.of(2), (r) => r.option((x) => x.u8())), /invalid option tag 2/);
  assert.throws(() => decodeExact(Uint8Array.of(2), (r) => r.bool()), /invalid bool byte 2/);
  assert.throws(() => decodeExact(Uint8Array.of(5), (r) => r.enumOf({ 0: () => 0 })), /unknown variant tag 5/);
  assert.throws(() => decodeExact(Uint8Array.of(1, 0, 0, 0, 0xff), (r) => r.string(4)), /not valid UTF-8/);
  const big = new BorshWriter().u64(2n ** 53n).toBytes();
  assert.throws(() => decodeExact(big, (r) => r.u64Number('height')), /too large for a Number/);
  assert.throws(() => new BorshWriter().u32(2 ** 32), /out of range/);
  assert.throws(() => new BorshWriter().u64(-1n), /out of range/);
  assert.throws(() => new BorshWriter().u64(2 ** 60), /not a safe integer/);
});

test('the canonical codec wants its version byte and a size bound', () => {
  const read = (r) => r.u8();
  assert.equal(decodeCanonical(Uint8Array.of(1, 9), 2, read), 9);
  assert.throws(() => decodeCanonical(new Uint8Array(0), 2, read), /empty input/);
  assert.throws(() => decodeCanonical(Uint8Array.of(2, 9), 2, read), /unsupported version 2/);
  assert.throws(() => decodeCanonical(Uint8Array.of(1, 9, 9), 2, read), /3 bytes exceed 2/);
  assert.throws(() => new BorshReader('not bytes'), /expected bytes/);
});
