"""Receipts and grants the real hub signs, verified by a JOSE library nobody here wrote.

Python's joserfc checks, with nothing but the hub's /.well-known/jwks.json:
- a consent receipt (what a resident keeps), and that a receipt altered by one claim fails;
- the grants the hub sends providers for a data request: signature, `typ`, audience (the
  provider it was sent to), lifetime of at most 60 s.

The hub is `renkei demo` ($RENKEI_BIN). To see the grants, the demo is started once (its
providers' endpoints are stored then), stopped, and started again with its providers on
other ports: the hub still sends each grant to the stored endpoint, where this script
listens and keeps the `Authorization: Bearer <grant>` it receives (and answers 503, so the
request fails as a provider failure, nothing released). Everything stays on loopback.
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

# The demo's providers, in the order it assigns them ports (crates/renkei/src/demo.rs).
PROVIDERS = ["city-registry", "hikari-clinic", "hikari-pay"]
RESULTS = {"passed": 0, "failed": 0}


def check(name, condition, detail=""):
    """Records one check and says how it went."""
    RESULTS["passed" if condition else "failed"] += 1
    print(("ok   " if condition else "FAIL ") + name + (f": {detail}" if detail and not condition else ""))


def free_ports(count):
    """`count` consecutive free loopback ports."""
    for base in range(21000, 60000, 97):
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports")


def http(method, url, body=None, headers=None):
    """Status and parsed JSON (or text) of one request."""
    data = None
    headers = dict(headers or {})
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    elif isinstance(body, str):
        data = body.encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


class Demo:
    """`renkei demo` on `port`, its providers on `provider_port` and the next two."""

    def __init__(self, data_dir, port, provider_port):
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.log = open(os.path.join(data_dir, f"demo-{provider_port}.out"), "w+")
        self.process = subprocess.Popen(
            [os.environ["RENKEI_BIN"], "demo", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}",
             "--provider-port", str(provider_port), "--residents", "50"],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"},
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"renkei demo exited: {self.output()}")
            try:
                if http("GET", self.url + "/healthz")[0] == 200 and self.resident():
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"renkei demo did not start: {self.output()}")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def resident(self):
        """The guide's resident, as the demo prints it."""
        m = re.search(r"id ([0-9a-f-]{36})\)", self.output())
        return m.group(1) if m else None

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


class Capture(BaseHTTPRequestHandler):
    """A provider's endpoint that keeps the grant it is sent and serves nothing."""

    grants = []

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        auth = self.headers.get("authorization", "")
        Capture.grants.append((self.server.server_port, self.path, auth.removeprefix("Bearer ")))
        self.send_response(503)
        self.send_header("content-type", "application/problem+json")
        self.end_headers()
        self.wfile.write(b'{"type":"/problems/unavailable","title":"Not serving","status":503}')

    def log_message(self, *args):
        pass


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    data_dir = tempfile.mkdtemp(prefix="renkei-jose-")
    # The hub, the providers' stored endpoints (where this script listens) and the ports the
    # demo's own providers move to.
    hub_port = free_ports(14)
    stored, moved = hub_port + 1, hub_port + 10
    demo = Demo(data_dir, hub_port, stored)
    demo.stop()
    servers = []
    for i in range(3):
        server = ThreadingHTTPServer(("127.0.0.1", stored + i), Capture)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    demo = Demo(data_dir, hub_port, moved)
    try:
        run(demo, stored)
    finally:
        demo.stop()
        for server in servers:
            server.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"jose: {RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] or RESULTS["passed"] == 0 else 0


def run(demo, stored):
    status, jwks = http("GET", demo.url + "/.well-known/jwks.json")
    check("the hub publishes a JWK Set", status == 200 and jwks.get("keys"), jwks)
    keys = KeySet.import_key_set(jwks)

    # A resident says yes to health advice and gets the signed receipt.
    _, session = http("POST", demo.url + "/demo/sign-in", {"resident": demo.resident()})
    resident = {"authorization": "Bearer " + session["access_token"]}
    status, granted = http("POST", demo.url + "/v1/me/consents",
                           {"service": "health-advice", "purpose": "health-advice"}, resident)
    check("the resident's consent is granted", status == 201, granted)
    receipt = jws.deserialize_compact(granted["receipt"], keys, algorithms=["EdDSA"])
    claims = json.loads(receipt.payload)
    check("the receipt verifies (EdDSA) with the published keys",
          receipt.headers()["alg"] == "EdDSA" and receipt.headers()["kid"] in {k["kid"] for k in jwks["keys"]})
    check("the receipt's typ is renkei-receipt+jwt", receipt.headers().get("typ") == "renkei-receipt+jwt")
    # The demo's issuer is http://localhost:<port> (passkeys need a domain name).
    issuer = "http://localhost:" + demo.url.rsplit(":", 1)[1]
    check("the receipt names the consent, the version and the hub",
          claims["consentId"] == granted["consent"]["id"] and claims["version"] == "KI-CR-v1.1.0"
          and claims["iss"] == issuer, claims)
    check("the receipt carries the controller's contact details",
          all(claims["piiControllers"][0].get(f) for f in ("contact", "address", "email", "phone")), claims)
    header, _, signature = granted["receipt"].split(".")
    altered = dict(claims, consentTimestamp=claims["consentTimestamp"] + 1)
    forged = ".".join([header, b64url(json.dumps(altered).encode()), signature])
    try:
        jws.deserialize_compact(forged, keys, algorithms=["EdDSA"])
        check("a receipt altered by one claim is refused", False, "it verified")
    except BadSignatureError:
        check("a receipt altered by one claim is refused", True)

    # The service asks for the data; the hub sends a grant to each provider holding some.
    # The client secret the hub showed the demo operator when it registered the service.
    with open(os.path.join(demo.data_dir, "service-secrets", "health-advice")) as f:
        secret = f.read().strip()
    client = "health%2Dadvice:" + urllib.parse.quote(secret, safe="")  # RFC 6749 §2.3.1
    basic = {"authorization": "Basic " + base64.b64encode(client.encode()).decode(),
             "content-type": "application/x-www-form-urlencoded"}
    status, token = http("POST", demo.url + "/oauth/token", "grant_type=client_credentials", basic)
    check("the service gets a token with client_secret_basic", status == 200, token)
    service = {"authorization": "Bearer " + token["access_token"]}
    before = time.time()
    status, answer = http("POST", demo.url + "/v1/data-requests", {
        "subject": granted["subject"], "purpose": "health-advice",
        "categories": ["payment.history", "health.checkup"],
    }, service)
    check("the request is granted and fails at the providers only",
          status == 502 and answer.get("type") == "/problems/provider-failure", (status, answer))
    grants = Capture.grants
    check("two providers were sent a grant", sorted(p for p, _, _ in grants) == [stored + 1, stored + 2], grants)
    for port, path, grant in grants:
        provider = PROVIDERS[port - stored]
        signed = jws.deserialize_compact(grant, keys, algorithms=["EdDSA"])
        g = json.loads(signed.payload)
        check(f"the grant sent to {provider} verifies (EdDSA) with the published keys",
              signed.headers()["alg"] == "EdDSA")
        check(f"its typ is renkei-grant+jwt, at {path}",
              signed.headers().get("typ") == "renkei-grant+jwt" and path == "/renkei/v1/fetch")
        check(f"it is for {provider} alone", g["aud"] == provider, g.get("aud"))
        check("it lives at most 60 s and has not expired",
              0 < g["exp"] - g["iat"] <= 60 and g["exp"] >= before, (g["iat"], g["exp"]))
        check("it names the hub, a single-use id, the service, its purpose and the consent",
              g["iss"] == issuer and g.get("jti") and g.get("service") == "health-advice"
              and g.get("purpose") == "health-advice" and g.get("consent") == granted["consent"]["id"],
              {k: g.get(k) for k in ("iss", "jti", "service", "purpose", "consent")})


if __name__ == "__main__":
    sys.exit(main())
