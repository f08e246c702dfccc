// Her records and consents, and her two actions on them: grant and revoke.
//
// Mirrors the CLI's `cradle consent grant` and `consent revoke` (`client/src/session/mod.rs`,
// `Session::grant`, `Session::revoke`, `submit_nonce`): the archives and grants are listed as
// the node answers `GET /v1/patients/KEY/archives` and `.../grants` (signed with her key); a
// grant opens the key of every archive its scope covers with her X25519 key and wraps it again
// for the grantee's X25519 key from the verified member set (`keywrap.js`), all in the page;
// the transaction is signed in the page (`tx.js`) with a nonce after the ledger's last one, and
// posted to `POST /v1/txs?wait=commit`, which answers once it is committed or with the ledger's
// reason for refusing it. Nothing but the signed transaction leaves the page.

import { fromHex, toHex } from '../../js/bytes.js';
import { CATEGORY, PURPOSE } from '../../js/audit.js';
import { rewrapKey, wrappedKeyFromHex } from '../../js/keywrap.js';
import { grantId, nextNonce, signTransaction } from '../../js/tx.js';
import { el } from './dom.js';
import { language, t } from './i18n.js';

const DAY_MS = 24 * 3600 * 1000;
/** The purposes a mother is offered for a grant (emergency access needs no grant). */
export const GRANT_PURPOSES = ['TREAT', 'COC', 'HRESCH', 'PUBHLTH'];
export const CATEGORIES = Object.values(CATEGORY);

/** Thrown for a grant the page will not build: `code` picks the message. */
export class GrantError extends Error {
  constructor(code, detail = '') {
    super(detail || code);
    this.code = code;
  }
}

function json(bytes) {
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** Her archives as the node lists them: `[{id, category, custodian, registeredAtMs, keyForPatient}]`. */
export async function fetchArchives(node, me) {
  const v = json(await node.signedGet(`/v1/patients/${toHex(me)}/archives`));
  if (!Array.isArray(v.archives)) throw new Error('the archive list is not one');
  return v.archives.map((a) => ({
    id: fromHex(String(a.archive), 32, 'archive id'),
    category: CATEGORIES.includes(a.record?.category) ? a.record.category : 'other',
    custodian: fromHex(String(a.record?.custodian), 32, 'custodian'),
    registeredAtMs: Number(a.record?.registered_at_ms),
    keyForPatient: wrappedKeyFromHex(String(a.record?.key_for_patient)),
  }));
}

function scopeOf(s) {
  if (s === 'all') return { kind: 'all' };
  if (s && Array.isArray(s.categories)) return { kind: 'categories', categories: s.categories.map(String) };
  if (s && Array.isArray(s.archives)) return { kind: 'archives', count: s.archives.length };
  return { kind: 'all' };
}

/** Her grants as the node lists them, each with its state at `nowMs` (as `consent list` says it). */
export async function fetchGrants(node, me, nowMs = Date.now()) {
  const v = json(await node.signedGet(`/v1/patients/${toHex(me)}/grants`));
  if (!Array.isArray(v.grants)) throw new Error('the grant list is not one');
  return v.grants.map((g) => {
    const r = g.record ?? {};
    const grant = {
      id: fromHex(String(g.grant), 32, 'grant id'),
      grantee: fromHex(String(r.grantee), 32, 'grantee'),
      scope: scopeOf(r.scope),
      purposes: Array.isArray(r.purposes) ? r.purposes.map(String) : [],
      validFromMs: Number(r.valid_from_ms),
      expiresAtMs: Number(r.expires_at_ms),
      revokedAtMs: r.revoked_at_ms === null || r.revoked_at_ms === undefined ? null : Number(r.revoked_at_ms),
    };
    grant.status = grant.revokedAtMs !== null ? 'revoked'
      : nowMs >= grant.expiresAtMs ? 'expired'
        : nowMs < grant.validFromMs ? 'pending' : 'active';
    return grant;
  });
}

/** The care providers of the newest verified set she may grant: `[{name, role, publicKey, x25519}]`. */
export function grantees(sets) {
  return sets.latest().members.filter((m) => m.role !== 'regulator');
}

/** The signed transaction, posted and committed; returns the node's answer `{hash, height}`. */
async function submit(node, keypair, chainId, body) {
  // A node that would not show the membership changes may hold a key a vote replaced.
  if (node.setsConfirmed !== true) throw new GrantError('grant.unconfirmedNode');
  const me = keypair.signing.publicKey;
  const last = json(await node.signedGet(`/v1/nonce/${toHex(me)}`)).last_nonce;
  const nonce = nextNonce(last === null || last === undefined ? null : BigInt(last));
  const signed = await signTransaction({ chainId, nonce, body }, keypair.signing);
  const answer = json(await node.post('/v1/txs?wait=commit', signed.encoded));
  return { ...answer, nonce, hash: toHex(signed.hash) };
}

/**
 * Grants `grantee` (a member of the verified set) `purposes` on the archives `scope` covers,
 * from now for `days` days. Every covered archive's key is opened with her key and wrapped for
 * the grantee here. Returns `{grant, height}`; throws a GrantError, a KeyUnwrapError for a key
 * that does not open, or a NodeError with the ledger's reason.
 */
export async function grant({ node, keypair, genesis, sets, grantee, purposes, scope, days, archives }) {
  if (!grantee) throw new GrantError('grant.noGrantee');
  if (purposes.length === 0) throw new GrantError('grant.noPurpose');
  if (scope.kind === 'categories' && scope.categories.length === 0) throw new GrantError('grant.noCategory');
  const durationMs = Math.round(Number(days) * DAY_MS);
  const maxMs = Number(sets.latest().set.policy.grantDurationMaxMs);
  if (!Number.isFinite(durationMs) || durationMs <= 0 || durationMs > maxMs) {
    throw new GrantError('grant.badDuration', String(Math.floor(maxMs / DAY_MS)));
  }
  const now = Date.now();
  const archiveKeys = [];
  for (const a of archives) {
    if (scope.kind === 'categories' && !scope.categories.includes(a.category)) continue;
    archiveKeys.push({ archive: a.id, key: await rewrapKey(a.keyForPatient, a.id, keypair.x25519, grantee.x25519) });
  }
  const body = {
    kind: 'grant_consent',
    grantee: grantee.publicKey,
    scope,
    purposes: PURPOSES_IN_ORDER.filter((p) => purposes.includes(p)),
    roles: [],
    validFromMs: BigInt(now),
    expiresAtMs: BigInt(now + durationMs),
    archiveKeys,
  };
  const done = await submit(node, keypair, genesis.chainId, body);
  return { grant: toHex(await grantId(keypair.signing.publicKey, done.nonce)), height: done.height, keys: archiveKeys.length };
}

const PURPOSES_IN_ORDER = Object.values(PURPOSE);

/** Revokes grant `id` (bytes); returns `{height}`. */
export async function revoke({ node, keypair, genesis, id }) {
  return submit(node, keypair, genesis.chainId, { kind: 'revoke_consent', grant: id });
}

function day(ms) {
  return new Intl.DateTimeFormat(language(), { dateStyle: 'medium' }).format(new Date(ms));
}

function memberName(sets, key) {
  const m = sets.memberByAnyKey(key);
  return m ? m.name : t('institution.unknown', { key: toHex(key).slice(0, 12) });
}

/** One archive: its category, custodian and date. */
export function archiveItem(sets, a) {
  return el('li', { class: 'item', dataset: { archive: toHex(a.id) } },
    el('strong', { text: t(`category.${a.category}`) }),
    el('span', { text: t('archive.held', { custodian: memberName(sets, a.custodian), date: day(a.registeredAtMs) }) }));
}

function scopeText(scope) {
  if (scope.kind === 'categories') return scope.categories.map((c) => t(`category.${c}`)).join(', ');
  if (scope.kind === 'archives') return t('scope.archives', { count: scope.count });
  return t('scope.all');
}

/** One grant, with a revoke button while it is in force or pending. */
export function grantItem(sets, g) {
  const purposes = g.purposes.map((p) => t(`purpose.${p}`)).join(', ');
  const item = el('li', { class: 'item', dataset: { grant: toHex(g.id), status: g.status } },
    el('strong', { text: memberName(sets, g.grantee) }),
    el('span', { class: 'badge', text: t(`grant.status.${g.status}`) }),
    el('span', { text: t('grant.summary', { purposes, scope: scopeText(g.scope), from: day(g.validFromMs), until: day(g.expiresAtMs) }) }));
  if (g.status === 'active' || g.status === 'pending') {
    item.append(el('button', { type: 'button', class: 'quiet revoke', dataset: { grant: toHex(g.id) }, text: t('grant.revoke') }));
  }
  return item;
}
