// The disclosure page. Asking: a fresh X25519 key pair is made in the browser (WebCrypto);
// its private half is saved as a file for the resident alone, its public half is sent with
// the form, and the providers seal their answers to it, so the hub cannot read them.
// Checking: a package file picked here is checked as `renkei verify-package` does, with
// WebCrypto only (the log's checks are in logcheck.js): the checkpoint's signature by this
// hub's log key, every entry's leaf hash and inclusion proof against it, that the log
// records the disclosure, and every receipt's signature by a key this hub publishes. The
// sealed answers stay sealed: `renkei verify-package --key` opens them.
'use strict';
(function () {
  const say = (el, key) => el.getAttribute('data-text-' + key) || key;
  const b64url = (bytes) => btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const fromB64url = (s) => {
    const std = s.replace(/-/g, '+').replace(/_/g, '/');
    return Uint8Array.from(atob(std + '='.repeat((4 - (std.length % 4)) % 4)), (c) => c.charCodeAt(0));
  };

  // --- asking for a package ---
  const form = document.getElementById('disclosure-form');
  const status = document.getElementById('key-status');
  if (form && status) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      let pair;
      try {
        pair = await crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
      } catch (e) {
        status.textContent = say(status, 'no-x25519');
        return;
      }
      const publicRaw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
      const privateJwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
      // The private key as `renkei verify-package --key` reads it: base64url of 32 bytes.
      const file = new Blob([privateJwk.d + '\n'], { type: 'text/plain' });
      const link = document.createElement('a');
      link.href = URL.createObjectURL(file);
      link.download = 'renkei-disclosure-key.txt';
      document.body.appendChild(link);
      link.click();
      link.remove();
      form.querySelector('input[name="recipient_key"]').value = b64url(publicRaw);
      status.textContent = say(status, 'key-saved');
      form.submit();
    });
  }

  // --- checking a package ---
  const check = document.getElementById('check');
  const input = document.getElementById('package-file');
  if (!check || !input || !window.RenkeiLog) return;
  const L = window.RenkeiLog;
  const summary = check.querySelector('.verify-summary');
  const details = document.getElementById('check-details');
  const hubKey = check.getAttribute('data-verifier-key') || '';
  const hubJwks = JSON.parse(check.getAttribute('data-jwks') || '{"keys":[]}');

  function line(text, ok) {
    const li = document.createElement('li');
    li.textContent = text;
    li.setAttribute('data-ok', ok ? 'true' : 'false');
    details.appendChild(li);
  }

  // A receipt (compact JWS, EdDSA) signed by a key of the package's set this hub publishes.
  async function checkReceipt(jws, jwks) {
    const [head, body, sig] = jws.split('.');
    const header = JSON.parse(new TextDecoder().decode(fromB64url(head)));
    if (header.alg !== 'EdDSA') throw new Error('alg');
    const jwk = (jwks.keys || []).find((k) => k.kid === header.kid);
    const published = (hubJwks.keys || []).find((k) => k.kid === header.kid);
    if (!jwk || !published || published.x !== jwk.x) throw new Error('key not published');
    const key = await crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x },
      { name: 'Ed25519' }, false, ['verify']);
    const ok = await crypto.subtle.verify({ name: 'Ed25519' }, key, fromB64url(sig),
      new TextEncoder().encode(head + '.' + body));
    if (!ok) throw new Error('signature');
    return JSON.parse(new TextDecoder().decode(fromB64url(body)));
  }

  const residentOf = (entry) => entry.resident || (entry.action || {}).resident;

  async function verify(pkg) {
    if (pkg.format !== 'renkei-disclosure/1') throw new Error(say(check, 'bad-format'));
    if ((pkg.log.verifier_key || '').trim() !== hubKey.trim()) throw new Error(say(check, 'bad-log-key'));
    const vkey = await L.parseVerifierKey(pkg.log.verifier_key.trim());
    const checkpoint = await L.openCheckpoint(pkg.log.checkpoint, vkey);
    line(say(check, 'checkpoint-ok') + ' (' + checkpoint.size + ')', true);
    let recorded = false;
    let last = -1n;
    for (const view of pkg.log.entries) {
      const index = BigInt(view.seq);
      if (index <= last) throw new Error(say(check, 'bad-entry') + ' #' + view.seq);
      last = index;
      const entry = JSON.parse(view.entry);
      if (BigInt(entry.seq) !== index || residentOf(entry) !== pkg.resident) {
        throw new Error(say(check, 'bad-entry') + ' #' + view.seq);
      }
      const leaf = await L.leafHash(L.fromB64(view.salt), view.entry);
      if (!L.same(leaf, L.fromB64(view.leaf_hash)) || !view.proof) {
        throw new Error(say(check, 'bad-entry') + ' #' + view.seq);
      }
      const root = await L.rootFromProof(index, checkpoint.size, leaf, view.proof.map(L.fromB64));
      if (!L.same(root, checkpoint.root)) throw new Error(say(check, 'bad-entry') + ' #' + view.seq);
      if (entry.kind === 'access' && entry.request === pkg.disclosure_id
          && (entry.basis || {}).kind === 'data_subject_access') recorded = true;
    }
    line(say(check, 'entries-ok') + ' (' + pkg.log.entries.length + ')', true);
    if (!recorded) throw new Error(say(check, 'not-recorded'));
    line(say(check, 'recorded-ok'), true);
    for (const c of pkg.consents) {
      const receipt = await checkReceipt(c.receipt, pkg.jwks).catch(() => null);
      if (!receipt || receipt.consentId !== c.consent.id || receipt.piiPrincipalId !== pkg.resident) {
        throw new Error(say(check, 'bad-receipt') + ' ' + c.consent.id);
      }
    }
    line(say(check, 'receipts-ok') + ' (' + pkg.consents.length + ')', true);
    const sealed = pkg.providers.filter((p) => p.payload).length;
    line(say(check, 'sealed') + ' (' + sealed + ')', true);
  }

  input.addEventListener('change', async () => {
    details.textContent = '';
    check.setAttribute('data-verified', 'checking');
    summary.textContent = say(check, 'checking');
    try {
      const file = input.files && input.files[0];
      if (!file) return;
      await verify(JSON.parse(await file.text()));
      summary.textContent = say(check, 'summary-ok');
      check.setAttribute('data-verified', 'all');
    } catch (e) {
      line(e.message || String(e), false);
      summary.textContent = say(check, 'summary-bad');
      check.setAttribute('data-verified', 'failed');
    }
  });
})();
