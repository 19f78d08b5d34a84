// Passkey sign-in and registration for the resident portal (WebAuthn). Filled in when the
// hub's passkey operations are wired to the portal; nothing runs until then.
'use strict';
