// What the page keeps in this browser, in IndexedDB: the genesis file the patient loaded, her
// key pair (private keys as non-extractable CryptoKeys, which IndexedDB stores as they are: a
// script can use them but never read them out), and per chain the last verified checkpoint, the
// member set changes verified since genesis, and how much of her history she has seen.

const DB_NAME = 'cradle-portal';
const DB_VERSION = 1;
const STORE = 'kv';

let opened = null;

function open() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return opened;
}

async function run(mode, action) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = action(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export const get = (key) => run('readonly', (s) => s.get(key));
export const put = (key, value) => run('readwrite', (s) => s.put(value, key));
export const remove = (key) => run('readwrite', (s) => s.delete(key));

export const KEYS = Object.freeze({
  genesis: 'genesis',
  keypair: 'keypair',
  recovery: 'recovery',
  checkpoint: (chainIdHex) => `checkpoint:${chainIdHex}`,
  sets: (chainIdHex) => `sets:${chainIdHex}`,
  seen: (chainIdHex) => `seen:${chainIdHex}`,
});
