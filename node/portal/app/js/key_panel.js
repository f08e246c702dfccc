// The page's second step: her key pair made, imported or restored, its recovery file, and her
// public key as text, as a QR code and as a file for the clinic that enrols her.

import { toHex } from '../../js/bytes.js';
import { RecoveryError } from '../../js/recovery.js';
import { $, say } from './dom.js';
import { t } from './i18n.js';
import { KeyFileError, adoptRotated, createKeypair, forgetKeypair, importKeyFile, importRecovery, loadIdentity, loadPending, loadRecovery, saveKeypair, savePending } from './keyring.js';
import { Node } from './node.js';
import { downloadHref, publicKeyFile, qrSvg } from './qr_view.js';
import { RotateError, awaitRewraps, rotateKey } from './rotate.js';
import { rotationSection } from './rotate_view.js';

/** The message key for a refused key action. */
function refusal(e) {
  if (e instanceof RecoveryError) {
    return { 'weak-passphrase': 'key.weakPassphrase', passphrase: 'recovery.passphrase', mismatch: 'recovery.mismatch' }[e.code] ?? 'recovery.format';
  }
  return e instanceof KeyFileError ? 'key.bad' : 'key.unsupported';
}

/**
 * Wires the section. `state` holds `keypair`, `identity` and `genesis`; `changed()` is told when
 * the key pair changes; `readFile(input)` reads a picked file's text; `node()` gives the checked
 * node (main.js), and `failure(e)` the message of a node's refusal. Returns `show(message)`.
 */
export function setupKey(state, changed, readFile, node = null, failure = null) {
  let drawn = 0;

  async function show(message) {
    const box = $('key-public-box');
    const draw = ++drawn;
    if (!state.keypair) {
      box.hidden = true;
      $('key-public').textContent = '';
      $('key-qr').replaceChildren();
      return say('key-status', message ?? 'key.none');
    }
    box.hidden = false;
    $('key-public').textContent = toHex(state.keypair.signing.publicKey);
    say('key-status', message ?? 'key.kept', {}, 'ok');
    const file = await publicKeyFile(state.keypair, state.genesis);
    const recovery = await loadRecovery();
    // A newer call (another key, another genesis) has drawn since: leave its drawing.
    if (draw !== drawn) return;
    $('key-qr').replaceChildren(qrSvg(file, t('key.qrLabel')));
    $('key-qr').dataset.content = file;
    $('key-pub-download').href = downloadHref(file);
    const link = $('recovery-download');
    link.hidden = !recovery;
    $('recovery-none').hidden = Boolean(recovery);
    if (recovery) link.href = downloadHref(recovery);
    else link.removeAttribute('href');
  }

  async function adopt({ keypair, recovery }, message) {
    state.keypair = keypair;
    await saveKeypair(keypair, recovery);
    state.identity = await loadIdentity(keypair);
    $('key-passphrase').value = '';
    changed();
    await show(message);
  }

  const passphrase = () => $('key-passphrase').value || null;

  $('key-create').addEventListener('click', async () => {
    if (!passphrase()) return say('key-status', 'key.needsPassphrase', {}, 'error');
    say('key-status', 'key.working');
    try {
      await adopt(await createKeypair(passphrase()), 'key.created');
    } catch (e) {
      say('key-status', refusal(e), { reason: e.message }, 'error');
    }
  });

  $('key-file').addEventListener('change', async (event) => {
    try {
      const text = await readFile(event.target);
      if (text === null) return;
      say('key-status', 'key.working');
      await adopt(await importKeyFile(text, passphrase()), 'key.imported');
    } catch (e) {
      say('key-status', refusal(e), { reason: e instanceof KeyFileError || e instanceof RecoveryError ? e.message : 'unreadable' }, 'error');
    }
  });

  $('recovery-file').addEventListener('change', async (event) => {
    try {
      const text = await readFile(event.target);
      if (text === null) return;
      if (!passphrase()) return say('key-status', 'recovery.needsPassphrase', {}, 'error');
      say('key-status', 'key.working');
      await adopt(await importRecovery(text, passphrase()), 'key.restored');
    } catch (e) {
      say('key-status', refusal(e), { reason: e.message }, 'error');
    }
  });

  $('key-forget').addEventListener('click', async () => {
    await forgetKeypair();
    state.keypair = null;
    state.identity = null;
    changed();
    await show('key.forgotten');
  });

  if (node) {
    $('key-public-box').append(rotationSection());
    $('key-rotate').addEventListener('click', () => rotate());
  }

  /**
   * Her key rotated in the page (rotate.js): a new key pair and recovery file under the
   * passphrase she typed, the rotation signed with her current key and committed, then the new
   * key kept in place of the old, and the custodians' re-wraps awaited.
   */
  async function rotate() {
    if (!state.genesis || !state.keypair) return say('rotate-status', 'history.needs', {}, 'error');
    if (!passphrase()) return say('rotate-status', 'rotate.needsPassphrase', {}, 'error');
    const button = $('key-rotate');
    button.disabled = true;
    say('rotate-status', 'rotate.sending');
    const old = state.keypair;
    try {
      const n = await node();
      const done = await rotateKey({ node: n, genesis: state.genesis, keypair: old, passphrase: passphrase(), keep: (k, r) => savePending(k, r, old) });
      await adoptRotated(old, done.keypair, done.recovery);
      state.keypair = done.keypair;
      state.identity = await loadIdentity(done.keypair);
      $('key-passphrase').value = '';
      changed();
      await show('rotate.done');
      say('rotate-status', 'rotate.waiting', { height: done.height });
      const fresh = await node();
      const end = await awaitRewraps(fresh, state.identity, state.keypair, (p) => {
        say('rotate-status', 'rotate.rewrapping', { height: done.height, open: p.open, total: p.total });
      });
      const key = end.open === end.total ? 'rotate.complete' : 'rotate.rewrapLate';
      say('rotate-status', key, { height: done.height, open: end.open, total: end.total }, end.open === end.total ? 'ok' : 'error');
    } catch (e) {
      if (e instanceof RotateError || e instanceof RecoveryError) {
        say('rotate-status', e.code === 'weak-passphrase' ? 'key.weakPassphrase' : e.code, {}, 'error');
      } else {
        const [key, vars] = failure ? failure(e) : ['node.failed', { reason: e.message }];
        say('rotate-status', key, vars, 'error');
      }
    } finally {
      button.disabled = false;
    }
  }

  /**
   * A rotation whose answer was lost (the page closed, the network failed) may have committed:
   * then the kept key is hers, and the node answers it. Asked when the page starts; the kept
   * key is adopted only when the node knows it, and kept otherwise (it may still commit).
   */
  async function resume() {
    if (!state.genesis || !state.keypair) return;
    const pending = await loadPending(state.keypair);
    if (!pending) return;
    try {
      const probe = new Node(state.genesis, pending.keypair);
      await probe.connect();
      await probe.signedGet('/v1/genesis');
    } catch {
      return;
    }
    await adoptRotated(state.keypair, pending.keypair, pending.recovery);
    state.keypair = pending.keypair;
    state.identity = await loadIdentity(pending.keypair);
    changed();
    await show('rotate.resumed');
  }

  show.resume = resume;
  return show;
}
