"""A CRM endpoint (WSGI) that gives the logged-in operator's browser phone a short-lived siptoken
token instead of the SIP password; the WebRTC-SIP gateway, which alone holds the key, turns it
back into SIP credentials.

Serve it (stdlib only, for a try; any WSGI server in production):
    SIPTOKEN_KEYS=/etc/siptoken/keys.conf python3 examples/python/crm_token.py --serve 127.0.0.1:8080
    GET /softphone/token  with header  X-Operator-Id: 42  (stands in for the CRM's session)

Without --serve it handles one request for a demo operator in-process and checks the token the
way the gateway would:
    SIPTOKEN_KEYS=keys.conf python3 examples/python/crm_token.py
"""

import json
import os
import sys
from wsgiref.simple_server import make_server
from wsgiref.util import setup_testing_defaults

import siptoken

APP = "CRM"
TOKEN_TTL = 120


def sip_account_of(operator_id):
    """The operator's SIP account as the CRM's database would return it: one demo row whose
    password comes from the environment, never from code or the command line."""
    rows = {
        42: {
            "login": "crm42",
            "domain": "sip.example.org",
            "visibleName": "Opérateur 42",
            "outboundProxy": "proxy.example.org",
            "port": 5060,
            "transport": "udp",
            "password": os.environ.get("CRM_DEMO_SIP_PASSWORD", "demo-pa$$<&>"),
        }
    }
    return rows.get(operator_id)


def make_app(ring):
    """The WSGI application: GET /softphone/token for the session's operator."""

    def app(environ, start_response):
        def reply(status, body):
            data = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
            return [data]

        if environ.get("PATH_INFO") != "/softphone/token":
            return reply("404 Not Found", {"error": "not found"})
        operator = environ.get("HTTP_X_OPERATOR_ID", "")
        if not operator.isdigit():
            return reply("401 Unauthorized", {"error": "not logged in"})
        account = sip_account_of(int(operator))
        if account is None:
            return reply("404 Not Found", {"error": "this operator has no SIP account"})
        try:
            token = ring.issue(APP, dict(account, ttl_seconds=TOKEN_TTL))
        except siptoken.SipTokenError as e:
            # The message never holds the password or key; the browser sees only the code.
            print(f"siptoken: issuing for operator {operator} failed: {e}", file=sys.stderr)
            return reply("500 Internal Server Error", {"error": e.code})
        return reply("200 OK", {"token": token, "expires_in": TOKEN_TTL})

    return app


def call(app, path, headers):
    """Runs one request through the WSGI app in-process; returns (status, parsed body)."""
    environ = {"PATH_INFO": path, **headers}
    setup_testing_defaults(environ)
    got = {}
    body = b"".join(app(environ, lambda status, _headers: got.setdefault("status", status)))
    return got["status"], json.loads(body)


def main():
    keys = os.environ.get("SIPTOKEN_KEYS")
    if not keys:
        sys.exit("set SIPTOKEN_KEYS to the key ring file")
    # One KeyRing per process, shared by every request thread.
    ring = siptoken.KeyRing.open(keys)
    app = make_app(ring)
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        host, port = sys.argv[2].rsplit(":", 1)
        print(f"serving on http://{host}:{port}/softphone/token", file=sys.stderr)
        make_server(host, int(port), app).serve_forever()
        return

    status, body = call(app, "/softphone/token", {"HTTP_X_OPERATOR_ID": "42"})
    print(f"GET /softphone/token (operator 42) -> {status} {json.dumps(body)}")
    anon_status, anon = call(app, "/softphone/token", {})
    print(f"GET /softphone/token (no session)  -> {anon_status} {json.dumps(anon)}")
    # What the gateway does with the token (it holds the same key ring).
    result = ring.verify(body.get("token", ""))
    print("gateway check:", f"valid v1 token for {result['claims']['login']}" if result["valid"] else result["error"])
    ok = (
        status.startswith("200")
        and anon_status.startswith("401")
        and result["valid"]
        and result["claims"]["visibleName"] == "Opérateur 42"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
