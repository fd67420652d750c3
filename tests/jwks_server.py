"""A local JWKS endpoint and signing keys, for tests of user JWTs.

:class:`JwksServer` is a real aiohttp server on 127.0.0.1 serving
``GET /.well-known/jwks.json``; tests rotate its keys, make it fail, hang or
answer slowly, and count the fetches.  In async tests use it directly
(``await JwksServer(keys).start()``); from synchronous tests (e.g. against a
worker subprocess) use :class:`ThreadedJwksServer`, which runs one on its own
event loop in a thread.

:class:`SigningKey` makes RSA and EC key pairs with ``cryptography`` and signs
tokens with PyJWT; :func:`forge` builds the tokens PyJWT would refuse to
make (``alg: none``, HS256 keyed with a public key's PEM).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

JWKS_PATH = "/.well-known/jwks.json"
ISSUER = "https://login.example.test/"
AUDIENCE = "pushes-api"


@dataclass
class SigningKey:
    """A key pair that signs test JWTs; ``public_jwk`` is what a JWKS publishes."""

    kid: str
    alg: str
    private: Any = field(repr=False)

    @classmethod
    def rsa(cls, kid: str, bits: int = 2048) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def ec(cls, kid: str, curve: ec.EllipticCurve | None = None) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(curve or ec.SECP256R1()))

    def public_jwk(self, **extra: Any) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        jwk = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig", **extra}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | bool | None = True) -> str:
        """``claims`` signed with this key; ``kid=False`` leaves the kid header out."""
        headers = {} if kid is False else {"kid": self.kid if kid is True else kid}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=headers)


def claims(user: object = "42", **overrides: Any) -> dict[str, Any]:
    """Valid claims for ``user``, issued now for five minutes; ``None`` removes a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": user,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], payload: dict[str, Any], hmac_secret: bytes | None) -> str:
    """A compact JWT built by hand: HS256 over ``hmac_secret``, or no signature."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if hmac_secret is None:
        return f"{signing_input}."
    mac = hmac.new(hmac_secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 (see the module doc)."""

    def __init__(self, *keys: SigningKey) -> None:
        self.jwks: dict[str, Any] = {"keys": [key.public_jwk() for key in keys]}
        #: GET requests received, and the monotonic time of the last one.
        self.fetches = 0
        self.last_fetch: float | None = None
        #: None (serve the set), an HTTP status to answer instead, or "garbage".
        self.failure: int | str | None = None
        #: Seconds to wait before answering (a slow or hanging issuer).
        self.delay = 0.0
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    def serve(self, *keys: SigningKey, extra: list[dict[str, Any]] | None = None) -> None:
        """Publish exactly ``keys`` (plus raw ``extra`` JWKs) from now on: a rotation."""
        self.jwks = {"keys": [key.public_jwk() for key in keys] + (extra or [])}

    async def start(self) -> JwksServer:
        app = web.Application()
        app.router.add_get(JWKS_PATH, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._stopping.set()  # ends a delayed answer at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        self.last_fetch = time.monotonic()
        if self.delay:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.delay)
        if self.failure == "garbage":
            return web.Response(text="<html>not a key set</html>", content_type="text/html")
        if isinstance(self.failure, int):
            return web.json_response({"error": "down"}, status=self.failure)
        return web.json_response(self.jwks, headers={"Cache-Control": "max-age=300"})


class ThreadedJwksServer:
    """A :class:`JwksServer` on its own event loop in a thread, for synchronous tests."""

    def __init__(self, *keys: SigningKey) -> None:
        self.server = JwksServer(*keys)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> JwksServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
