// The signed log's checks, shared by the history page (history.js) and the disclosure
// package's check (disclosure.js), with WebCrypto only: RFC 9162 leaf hashes and inclusion
// proofs, and C2SP checkpoints as Ed25519 signed notes.
'use strict';
(function () {
  const enc = new TextEncoder();
  const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

  // The verifier key's text form: <name>+<hex key id>+<base64(0x01 || 32-byte key)>.
  async function parseVerifierKey(text) {
    const first = text.indexOf('+');
    const second = text.indexOf('+', first + 1);
    if (first < 1 || second < 0) throw new Error('verifier key');
    const name = text.slice(0, first);
    const id = parseInt(text.slice(first + 1, second), 16);
    const typed = fromB64(text.slice(second + 1));
    if (typed.length !== 33 || typed[0] !== 1) throw new Error('not an Ed25519 key');
    const raw = typed.slice(1);
    const digest = await sha256(concat(enc.encode(name), Uint8Array.of(0x0a, 0x01), raw));
    const computed = new DataView(digest.buffer).getUint32(0);
    if (computed !== id) throw new Error('key id');
    const key = await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
    return { name, id, key };
  }

  // Opens a signed checkpoint: returns { size, root } if the signature by `vkey` holds.
  async function openCheckpoint(note, vkey) {
    const split = note.indexOf('\n\n');
    if (split < 0) throw new Error('no signatures');
    const text = note.slice(0, split + 1);
    const lines = note.slice(split + 2).split('\n').filter((l) => l.length > 0);
    let ok = false;
    for (const line of lines) {
      if (!line.startsWith('\u2014 ')) throw new Error('signature line');
      const rest = line.slice(2);
      const space = rest.lastIndexOf(' ');
      if (rest.slice(0, space) !== vkey.name) continue;
      const sig = fromB64(rest.slice(space + 1));
      if (sig.length !== 68) continue;
      if (new DataView(sig.buffer).getUint32(0) !== vkey.id) continue;
      ok = await crypto.subtle.verify({ name: 'Ed25519' }, vkey.key, sig.slice(4), enc.encode(text));
      if (ok) break;
    }
    if (!ok) throw new Error('checkpoint signature');
    const [origin, size, root] = text.split('\n');
    if (origin !== vkey.name) throw new Error('origin');
    if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error('size');
    const rootBytes = fromB64(root);
    if (rootBytes.length !== 32) throw new Error('root');
    return { size: BigInt(size), root: rootBytes };
  }

  // RFC 9162 section 2.1.3.2: the root an inclusion proof leads to.
  async function rootFromProof(index, size, leaf, proof) {
    if (index >= size) throw new Error('index beyond the tree');
    let fn = index;
    let sn = size - 1n;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0n) throw new Error('proof too long');
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) throw new Error('proof too short');
    return r;
  }

  // The leaf hash of an entry: SHA-256(0x00 || salt || entry JSON).
  const leafHash = (salt, json) => sha256(concat(Uint8Array.of(0), salt, enc.encode(json)));

  window.RenkeiLog = {
    fromB64, concat, sha256, same, parseVerifierKey, openCheckpoint, rootFromProof, leafHash,
  };
})();
