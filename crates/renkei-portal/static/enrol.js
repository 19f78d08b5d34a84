// Enrolment page: lets the resident pick the certificate file instead of pasting its text.
// The file is read in the page and put into the form's text box, so the form stays a plain
// URL-encoded post (with its CSRF token) and works, by pasting, without JavaScript.
'use strict';
(() => {
  const pick = document.querySelector('.file-pick');
  const input = document.getElementById('certificate-file');
  const target = document.getElementById('certificate_chain');
  const status = document.getElementById('certificate-file-status');
  if (!pick || !input || !target || !status || typeof FileReader !== 'function') return;
  pick.hidden = false;
  input.addEventListener('change', async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    const text = file.size <= 32 * 1024 ? await file.text() : '';
    if (text.includes('-----BEGIN CERTIFICATE-----')) {
      target.value = text.trim();
      status.textContent = status.dataset.msgRead;
    } else {
      status.textContent = status.dataset.msgBad;
    }
  });
})();
