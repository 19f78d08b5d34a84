// "Who used my data": checks every entry on the page against the hub's signed access log,
// in the browser, with WebCrypto only. For each entry: the leaf hash is recomputed as
// SHA-256(0x00 || salt || entry JSON) (RFC 9162 leaf with the per-entry salt), the entry's
// RFC 9162 inclusion proof is folded up to a root, and that root must be the one in the
// C2SP checkpoint whose Ed25519 signed-note signature verifies under the key served at
// /log/key. The words shown beside the entry must say what the entry says. Entries newer
// than the page's checkpoint are checked against a fresh one from /log/checkpoint.
'use strict';
(function () {
  const log = document.getElementById('log');
  if (!log || !window.crypto || !crypto.subtle) return;
  const entries = Array.from(log.querySelectorAll('li.entry'));
  const summary = log.querySelector('.verify-summary');
  const say = (key) => log.getAttribute('data-text-' + key) || key;
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

  function mark(li, state) {
    const badge = li.querySelector('.verify');
    if (!badge) return;
    badge.setAttribute('data-state', state);
    badge.textContent = say(state);
  }

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

  // The words beside the entry must say what the entry says.
  function consistent(li, entry) {
    if (String(entry.seq) !== li.getAttribute('data-seq')) return false;
    if (entry.kind !== li.getAttribute('data-kind')) return false;
    if (entry.service !== li.getAttribute('data-service')) return false;
    const outcome = li.getAttribute('data-outcome');
    if (entry.kind === 'access' && (entry.outcome || {}).outcome !== outcome) return false;
    if (entry.kind === 'consent' && outcome !== 'consent') return false;
    return true;
  }

  async function leafOf(li) {
    const json = li.getAttribute('data-entry') || '';
    const entry = JSON.parse(json);
    if (!consistent(li, entry)) throw new Error('the page does not say what the entry says');
    const leaf = await sha256(concat(Uint8Array.of(0), fromB64(li.getAttribute('data-salt') || ''), enc.encode(json)));
    if (!same(leaf, fromB64(li.getAttribute('data-leaf') || ''))) throw new Error('leaf hash');
    return leaf;
  }

  async function check(li, checkpoint) {
    const leaf = await leafOf(li);
    const index = BigInt(li.getAttribute('data-seq'));
    const proof = (li.getAttribute('data-proof') || '').split(',').filter((s) => s).map(fromB64);
    const root = await rootFromProof(index, checkpoint.size, leaf, proof);
    if (!same(root, checkpoint.root)) throw new Error('root');
  }

  // An entry newer than the page's checkpoint: a fresh checkpoint and proof from /log.
  async function checkFresh(li, vkey) {
    const note = await (await fetch('/log/checkpoint', { cache: 'no-store' })).text();
    const checkpoint = await openCheckpoint(note, vkey);
    const index = BigInt(li.getAttribute('data-seq'));
    if (index >= checkpoint.size) return false;
    const url = '/log/proof/inclusion?index=' + index + '&size=' + checkpoint.size;
    const answer = await (await fetch(url, { cache: 'no-store' })).json();
    const leaf = await leafOf(li);
    const root = await rootFromProof(index, checkpoint.size, leaf, answer.proof.map(fromB64));
    if (!same(root, checkpoint.root)) throw new Error('root');
    return true;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function run() {
    entries.forEach((li) => mark(li, 'checking'));
    let failed = 0;
    let vkey;
    let checkpoint;
    try {
      const keyText = (await (await fetch('/log/key', { cache: 'no-store' })).text()).trim();
      vkey = await parseVerifierKey(keyText);
      checkpoint = await openCheckpoint(log.getAttribute('data-checkpoint') || '', vkey);
    } catch (e) {
      entries.forEach((li) => mark(li, 'failed'));
      if (summary) summary.textContent = say('summary-bad');
      return;
    }
    const waiting = [];
    for (const li of entries) {
      try {
        if (li.getAttribute('data-has-proof') === 'true') {
          await check(li, checkpoint);
          mark(li, 'verified');
        } else {
          waiting.push(li);
        }
      } catch (e) {
        failed += 1;
        mark(li, 'failed');
      }
    }
    for (let attempt = 0; attempt < 10 && waiting.length > 0; attempt += 1) {
      for (const li of waiting.slice()) {
        try {
          if (await checkFresh(li, vkey)) {
            mark(li, 'verified');
            waiting.splice(waiting.indexOf(li), 1);
          }
        } catch (e) {
          failed += 1;
          mark(li, 'failed');
          waiting.splice(waiting.indexOf(li), 1);
        }
      }
      if (waiting.length > 0) await sleep(500);
    }
    waiting.forEach((li) => mark(li, 'pending'));
    if (summary) summary.textContent = say(failed === 0 && waiting.length === 0 ? 'summary-ok' : 'summary-bad');
    log.setAttribute('data-verified', failed === 0 && waiting.length === 0 ? 'all' : 'not-all');
  }

  run();
})();
