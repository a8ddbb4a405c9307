"""The HTTPS webhook forwarding target (docs/forwarding.md).

Each outbox document is POSTed as its alarm JSON with
  X-Anju-Timestamp: <unix seconds>
  X-Anju-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
  Idempotency-Key: <alarm id>:<seq>
2xx = delivered; 408, 429, 5xx, timeouts and connection errors = retry with
backoff; any other 4xx (and 3xx) = refused for good → dead letter. Requests run
with the stdlib `http.client` in worker threads, each with a timeout.

Never sends to plain http, never logs the secret or the body.
"""
import asyncio
import hashlib
import hmac
import http.client
import ssl
import threading
import urllib.parse
from pathlib import Path

from hub import ConfigError
from hub.config.values import refuse_unknown_keys, where_in
from hub.forward.outbox import DEAD, DELIVERED, OutboxDrainer, RETRY

RETRYABLE_4XX = (408, 429)
DEFAULT_TIMEOUT_S = 10.0
WEBHOOK_KEYS = ("url", "secret_file", "timeout", "ca")


def sign(secret, timestamp, body):
    """The X-Anju-Signature value for `body` (bytes) sent at `timestamp` (int)."""
    mac = hmac.new(secret, str(int(timestamp)).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret, timestamp, body, signature):
    """Constant-time check of a received signature (what a platform does)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def classify(status):
    if 200 <= status < 300:
        return DELIVERED
    if status in RETRYABLE_4XX or status >= 500:
        return RETRY
    return DEAD


def parse_config(node, where="hub.webhook"):
    """{url, secret_file, timeout, ca} → checked dict with the secret loaded
    (and the CA file, when given, loaded once to check it). Opens no connection."""
    if not isinstance(node, dict):
        raise ConfigError("%s: must be a mapping with 'url' and 'secret_file'" % where)
    refuse_unknown_keys(node, WEBHOOK_KEYS, "in " + where)
    url = node.get("url")
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise ConfigError("%s: key 'url': must be an https:// URL" % where_in(node, "url", where))
    secret_file = node.get("secret_file")
    if not isinstance(secret_file, str):
        raise ConfigError("%s: key 'secret_file': required (a file holding the HMAC key)"
                          % where_in(node, "secret_file", where))
    try:
        secret = Path(secret_file).read_bytes().strip()
    except OSError as exc:
        raise ConfigError("%s: key 'secret_file': cannot read %s: %s"
                          % (where_in(node, "secret_file", where), secret_file,
                             exc.strerror)) from exc
    if len(secret) < 16:
        raise ConfigError("%s: key 'secret_file': the key must be at least 16 bytes"
                          % where_in(node, "secret_file", where))
    timeout = node.get("timeout", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError("%s: key 'timeout': a positive number of seconds"
                          % where_in(node, "timeout", where))
    ca = node.get("ca")
    if ca is not None:
        if not isinstance(ca, str):
            raise ConfigError("%s: key 'ca': a path to a PEM file" % where_in(node, "ca", where))
        _ssl_context(ca, where_in(node, "ca", where))
    return {"url": url, "secret": secret, "timeout": float(timeout), "ca": ca}


def _ssl_context(ca, where="hub.webhook"):
    try:
        return ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("%s: key 'ca': cannot load %s: %s"
                          % (where, ca, getattr(exc, "strerror", None) or exc)) from exc


class WebhookForwarder(OutboxDrainer):
    """The webhook target; `clock.now()` gives the signature timestamp."""

    target = "webhook"

    def __init__(self, store, config, clock, wakeup, window=8, backoff=None, now=None,
                 sleep=None):
        super().__init__(store, wakeup, window=window, backoff=backoff, now=now, sleep=sleep)
        self.url = urllib.parse.urlsplit(config["url"])
        self._secret = config["secret"]
        self.timeout = config["timeout"]
        self.clock = clock
        self._ssl = _ssl_context(config.get("ca"))
        self.connected = threading.Event()
        self.connected.set()  # HTTP has no link; failures back off per alarm

    def __repr__(self):
        return "<WebhookForwarder %s>" % self.url.hostname

    def start(self, loop):
        pass

    def stop(self):
        pass

    async def send(self, row):
        _, alarm_id, seq, _, payload, _ = row
        body = payload.encode()
        ts = int(self.clock.now())
        headers = {"Content-Type": "application/json", "X-Anju-Timestamp": str(ts),
                   "X-Anju-Signature": sign(self._secret, ts, body),
                   "Idempotency-Key": "%s:%s" % (alarm_id, seq)}
        try:
            status = await asyncio.wait_for(
                asyncio.to_thread(self._post, body, headers), self.timeout + 5.0)
        except (OSError, http.client.HTTPException, asyncio.TimeoutError) as exc:
            return RETRY, "%s: %s" % (type(exc).__name__, exc)
        outcome = classify(status)
        return outcome, None if outcome == DELIVERED else "HTTP %d" % status

    def _post(self, body, headers):
        conn = http.client.HTTPSConnection(self.url.hostname, self.url.port or 443,
                                           timeout=self.timeout, context=self._ssl)
        try:
            path = self.url.path or "/"
            if self.url.query:
                path += "?" + self.url.query
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()
