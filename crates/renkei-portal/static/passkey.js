// Passkeys in the resident portal (WebAuthn): signing in on /portal/sign-in and registering
// one on this device on /portal/passkeys. The hub runs both ceremonies; this script only
// carries the options to navigator.credentials and the browser's answer back, as JSON posts
// with the page's CSRF token. Messages come from the page (data-msg-*), in its language.
'use strict';
(() => {
  const toBytes = (b64url) => {
    const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
    return out.buffer;
  };
  const toB64url = (buffer) => {
    let bin = '';
    for (const b of new Uint8Array(buffer)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const supported = () => typeof window.PublicKeyCredential === 'function'
    && !!navigator.credentials && typeof navigator.credentials.get === 'function';

  /** Wires one section: its button runs `ceremony` and reports in its status region. */
  function wire(section, buttonId, ceremony) {
    const button = document.getElementById(buttonId);
    const status = section.querySelector('#passkey-status');
    if (!button || !status) return;
    const say = (kind, text) => {
      status.replaceChildren();
      const p = document.createElement('p');
      p.className = `notice ${kind}`;
      p.textContent = text;
      status.append(p);
    };
    if (!supported()) {
      button.disabled = true;
      say('error', section.dataset.msgUnsupported);
      return;
    }
    const post = async (url, body) => {
      const r = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': section.dataset.csrf },
        body: JSON.stringify(body ?? {}),
      });
      let json = {};
      try { json = await r.json(); } catch { /* not JSON: use the page's message */ }
      return { ok: r.ok, json };
    };
    button.addEventListener('click', async () => {
      button.disabled = true;
      say('warn', section.dataset.msgWorking);
      try {
        const outcome = await ceremony(post, section);
        if (outcome.location) {
          window.location.assign(outcome.location);
          return;
        }
        say('error', outcome.message || section.dataset.msgFailed);
      } catch (e) {
        // The browser's refusals (cancelled, timed out, not allowed) are DOMExceptions.
        say('error', e instanceof DOMException ? section.dataset.msgRefused : section.dataset.msgFailed);
      }
      button.disabled = false;
    });
  }

  async function signIn(post, section) {
    const start = await post('/portal/sign-in/passkey/start');
    if (!start.ok) return { message: start.json.message };
    const options = start.json.options.publicKey;
    options.challenge = toBytes(options.challenge);
    options.allowCredentials = (options.allowCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) }));
    const credential = await navigator.credentials.get({ publicKey: options });
    const r = credential.response;
    const finish = await post('/portal/sign-in/passkey/finish', {
      ceremony: start.json.ceremony,
      next: section.dataset.next || null,
      credential: {
        id: credential.id,
        rawId: toB64url(credential.rawId),
        type: credential.type,
        response: {
          authenticatorData: toB64url(r.authenticatorData),
          clientDataJSON: toB64url(r.clientDataJSON),
          signature: toB64url(r.signature),
          userHandle: r.userHandle ? toB64url(r.userHandle) : null,
        },
        extensions: credential.getClientExtensionResults(),
      },
    });
    return finish.ok ? { location: finish.json.location } : { message: finish.json.message };
  }

  async function register(post) {
    const start = await post('/portal/passkeys/register/start');
    if (!start.ok) return { message: start.json.message };
    const options = start.json.options.publicKey;
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    options.excludeCredentials = (options.excludeCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) }));
    const credential = await navigator.credentials.create({ publicKey: options });
    const r = credential.response;
    const name = document.getElementById('passkey-name');
    const finish = await post('/portal/passkeys/register/finish', {
      ceremony: start.json.ceremony,
      name: name && name.value.trim() ? name.value.trim() : null,
      credential: {
        id: credential.id,
        rawId: toB64url(credential.rawId),
        type: credential.type,
        response: {
          attestationObject: toB64url(r.attestationObject),
          clientDataJSON: toB64url(r.clientDataJSON),
          transports: typeof r.getTransports === 'function' ? r.getTransports() : undefined,
        },
        extensions: credential.getClientExtensionResults(),
      },
    });
    return finish.ok ? { location: finish.json.location } : { message: finish.json.message };
  }

  const signInSection = document.getElementById('passkey-sign-in');
  if (signInSection) wire(signInSection, 'passkey-sign-in-button', signIn);
  const registerSection = document.getElementById('passkey-register');
  if (registerSection) wire(registerSection, 'passkey-register-button', register);
})();
