#!/usr/bin/env python3
"""A loopback proxy in front of a docker-registry, for registry.sh.

--token            demand bearer tokens (RFC 6750) issued by its own /token endpoint
--token-creds U:P  and demand basic credentials at that endpoint
--refresh-token T  and accept the OAuth2 form POST (grant_type=refresh_token) with T there
--drop-after N     cut the connection after N bytes of the first full GET of each blob
--no-range         ignore Range headers (answer 200 with the whole blob)
Every request is logged to --log as: METHOD PATH range=… auth=… status=…
"""
import argparse, base64, http.client, http.server, json, re, secrets, socket, threading, urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--backend", type=int, required=True)
ap.add_argument("--token", action="store_true")
ap.add_argument("--token-creds")
ap.add_argument("--refresh-token")
ap.add_argument("--drop-after", type=int, default=0)
ap.add_argument("--no-range", action="store_true")
ap.add_argument("--log", required=True)
args = ap.parse_args()

TOKENS, DROPPED, LOCK = set(), set(), threading.Lock()

def log(line):
    with LOCK, open(args.log, "a") as f:
        f.write(line + "\n")

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0)).decode()
        form = urllib.parse.parse_qs(body)
        one = lambda k: form.get(k, [""])[0]
        if url.path != "/token" or not args.refresh_token:
            log("POST %s status=404" % self.path)
            return self.reply(404)
        if one("grant_type") != "refresh_token" or one("refresh_token") != args.refresh_token:
            log("POST /token denied grant=%s" % one("grant_type"))
            return self.reply(401, b'{"details":"invalid refresh token"}')
        tok = secrets.token_hex(16)
        with LOCK:
            TOKENS.add(tok)
        log("POST /token grant=refresh_token scope=%s service=%s" % (one("scope"), one("service")))
        return self.reply(200, json.dumps({"access_token": tok, "expires_in": 300}).encode(),
                          [("Content-Type", "application/json")])

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        rng = self.headers.get("Range", "")
        kind = auth.split(" ")[0].lower() if auth else "none"
        url = urllib.parse.urlparse(self.path)
        if url.path == "/token":
            q = urllib.parse.parse_qs(url.query)
            if args.token_creds:
                want = "Basic " + base64.b64encode(args.token_creds.encode()).decode()
                if auth != want:
                    log("GET /token denied auth=%s" % kind)
                    return self.reply(401, b'{"details":"bad credentials"}')
            tok = secrets.token_hex(16)
            with LOCK:
                TOKENS.add(tok)
            log("GET /token scope=%s service=%s auth=%s" % (q.get("scope", [""])[0], q.get("service", [""])[0], kind))
            return self.reply(200, json.dumps({"token": tok, "expires_in": 300}).encode(),
                              [("Content-Type", "application/json")])
        if args.token and not (auth.startswith("Bearer ") and auth[7:] in TOKENS):
            m = re.match(r"/v2/(.+?)/(manifests|blobs)/", url.path)
            scope = "repository:%s:pull" % m.group(1) if m else ""
            challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="stockade-test",scope="%s"' % (args.port, scope)
            log("GET %s status=401 auth=%s" % (self.path, kind))
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}',
                              [("WWW-Authenticate", challenge), ("Content-Type", "application/json")])
        headers = {}
        if self.headers.get("Accept"):
            headers["Accept"] = self.headers["Accept"]
        if rng and not args.no_range:
            headers["Range"] = rng
        conn = http.client.HTTPConnection("127.0.0.1", args.backend, timeout=60)
        conn.request("GET", self.path, headers=headers)
        r = conn.getresponse()
        m = re.search(r"/blobs/(sha256:[0-9a-f]{64})", url.path)
        drop = False
        if m and args.drop_after and not rng and r.status == 200:
            with LOCK:
                if m.group(1) not in DROPPED:
                    DROPPED.add(m.group(1))
                    drop = True
        log("GET %s range=%s auth=%s status=%d%s" % (self.path, rng or "-", kind, r.status, " drop" if drop else ""))
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                self.send_header(k, v)
        self.end_headers()
        sent = 0
        while True:
            chunk = r.read(65536)
            if not chunk:
                break
            if drop and sent + len(chunk) >= args.drop_after:
                self.wfile.write(chunk[: args.drop_after - sent])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                conn.close()
                return
            self.wfile.write(chunk)
            sent += len(chunk)
        conn.close()

http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
