// "Who used my data": checks every entry on the page against the hub's signed access log,
// in the browser, with WebCrypto only. For each entry: the leaf hash is recomputed as
// SHA-256(0x00 || salt || entry JSON) (RFC 9162 leaf with the per-entry salt), the entry's
// RFC 9162 inclusion proof is folded up to a root, and that root must be the one in the
// C2SP checkpoint whose Ed25519 signed-note signature verifies under the key served at
// /log/key (the checks themselves are in logcheck.js). The words shown beside the entry
// must say what the entry says. Entries newer than the page's checkpoint are checked against
// a fresh one from /log/checkpoint.
'use strict';
(function () {
  const log = document.getElementById('log');
  if (!log || !window.crypto || !crypto.subtle || !window.RenkeiLog) return;
  const entries = Array.from(log.querySelectorAll('li.entry'));
  const summary = log.querySelector('.verify-summary');
  const say = (key) => log.getAttribute('data-text-' + key) || key;
  const enc = new TextEncoder();

  const { fromB64, concat, sha256, same, parseVerifierKey, openCheckpoint, rootFromProof } =
    window.RenkeiLog;

  function mark(li, state) {
    const badge = li.querySelector('.verify');
    if (!badge) return;
    badge.setAttribute('data-state', state);
    badge.textContent = say(state);
  }

  // The words beside the entry must say what the entry says.
  function consistent(li, entry) {
    if (String(entry.seq) !== li.getAttribute('data-seq')) return false;
    if (entry.kind !== li.getAttribute('data-kind')) return false;
    if ((entry.service || '') !== li.getAttribute('data-service')) return false;
    const outcome = li.getAttribute('data-outcome');
    if (entry.kind === 'access' && (entry.outcome || {}).outcome !== outcome) return false;
    if (entry.kind === 'consent' && outcome !== 'consent') return false;
    if (entry.kind === 'operator' && outcome !== 'looked') return false;
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
