// Her public key file as a QR code, for the clinic that enrols her, and as a file to hand over.
//
// The QR code carries what `cradle keygen` writes beside a key (`FILE.pub`, see
// `client/src/session/enrolment.rs`): her two public keys and, once her genesis file is loaded,
// her proof for this consortium that she holds both (`proveKeys`), which the clinic's
// `cradle patient enrol FILE` checks. Nothing secret is in it. The encoder is
// `app/vendor/qrcode-generator.mjs` (qrcode-generator 2.0.4 by Kazuhiko Arase, MIT, unmodified
// from the npm package); the code is drawn here as SVG elements, never as markup.

import qrcode from '../vendor/qrcode-generator.mjs';
import { toHex } from '../../js/bytes.js';
import { proveKeys } from '../../js/keys.js';

const SVG = 'http://www.w3.org/2000/svg';
/** Quiet zone around the code, in modules (the standard's four). */
const MARGIN = 4;

/** The public key file of `keypair`, with its enrolment proof when `genesis` is known. */
export async function publicKeyFile(keypair, genesis) {
  const file = { public_key: toHex(keypair.signing.publicKey), x25519_public: toHex(keypair.x25519.publicKey) };
  if (genesis) {
    const { proof } = await proveKeys(keypair, genesis.chainId);
    file.enrolment = { chain_id: genesis.chainIdHex, proof: toHex(proof) };
  }
  return JSON.stringify(file);
}

/** An SVG element drawing `text` as a QR code (error correction L, for a screen; the smallest version that fits). */
export function qrSvg(text, label) {
  const code = qrcode(0, 'L');
  code.addData(text, 'Byte');
  code.make();
  const n = code.getModuleCount();
  const size = n + 2 * MARGIN;
  let d = '';
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (code.isDark(r, c)) d += `M${c + MARGIN} ${r + MARGIN}h1v1h-1z`;
    }
  }
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('shape-rendering', 'crispEdges');
  svg.dataset.modules = String(n);
  const paper = document.createElementNS(SVG, 'rect');
  paper.setAttribute('width', String(size));
  paper.setAttribute('height', String(size));
  paper.setAttribute('fill', '#ffffff');
  const ink = document.createElementNS(SVG, 'path');
  ink.setAttribute('d', d);
  ink.setAttribute('fill', '#000000');
  svg.append(paper, ink);
  return svg;
}

/** A `data:` link that saves `text` as `name` (no network, no blob URL to revoke). */
export function downloadHref(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return `data:application/json;base64,${btoa(bin)}`;
}
