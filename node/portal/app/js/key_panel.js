// The page's second step: her key pair made, imported or restored, its recovery file, and her
// public key as text, as a QR code and as a file for the clinic that enrols her.

import { toHex } from '../../js/bytes.js';
import { RecoveryError } from '../../js/recovery.js';
import { $, say } from './dom.js';
import { t } from './i18n.js';
import { KeyFileError, createKeypair, forgetKeypair, importKeyFile, importRecovery, loadRecovery, saveKeypair } from './keyring.js';
import { downloadHref, publicKeyFile, qrSvg } from './qr_view.js';

/** The message key for a refused key action. */
function refusal(e) {
  if (e instanceof RecoveryError) {
    return { 'weak-passphrase': 'key.weakPassphrase', passphrase: 'recovery.passphrase', mismatch: 'recovery.mismatch' }[e.code] ?? 'recovery.format';
  }
  return e instanceof KeyFileError ? 'key.bad' : 'key.unsupported';
}

/**
 * Wires the section. `state` holds `keypair` and `genesis`; `changed()` is told when the key
 * pair changes; `readFile(input)` reads a picked file's text. Returns `show(message)`.
 */
export function setupKey(state, changed, readFile) {
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
    changed();
    await show('key.forgotten');
  });

  return show;
}
