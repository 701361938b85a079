"""Access control: a bearer token for every mutation; reads open to loopback clients by default.

The token comes from ``--token-file FILE`` (first line, surrounding blanks
stripped) or the environment variable ``PRESPLIT_API_TOKEN``; it is never
logged or echoed. Without a token, mutations are refused (401) -- there is no
"open" write mode. A request whose ``Authorization`` header is missing or
wrong gets 401 before its body is even validated, so nothing is changed and
nothing is revealed. Tokens are compared in constant time.

Reads (GET) need no token from a loopback client (127.0.0.0/8, ::1); from
any other address they need the token unless the service was started with
``--open-reads``.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from presplit.errors import InputError

ENV = "PRESPLIT_API_TOKEN"
bearer = HTTPBearer(auto_error=False, description="The service's API token (--token-file or PRESPLIT_API_TOKEN).")


class TokenError(InputError):
    pass


def load_token(token_file: str | None = None, env: dict | None = None) -> str | None:
    env = os.environ if env is None else env
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenError(f"{token_file}: cannot read the token file: {exc.strerror}") from None
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise TokenError(f"{token_file}: the token file is empty")
        return token
    token = (env.get(ENV) or "").strip()
    return token or None


class Auth:
    def __init__(self, token: str | None, *, open_reads: bool = False) -> None:
        self._token = token.encode() if token else None
        self.open_reads = open_reads

    @property
    def mutations_enabled(self) -> bool:
        return self._token is not None

    def __repr__(self) -> str:  # never show the token
        return f"Auth(mutations_enabled={self.mutations_enabled}, open_reads={self.open_reads})"

    def check(self, cred: HTTPAuthorizationCredentials | None) -> None:
        if self._token is None:
            raise _unauthorized("mutations are disabled: start presplit serve with --token-file or "
                                f"{ENV} to allow them")
        if cred is None or cred.scheme.lower() != "bearer" or not cred.credentials:
            raise _unauthorized("this request changes the fleet: send 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(cred.credentials.encode(), self._token):
            raise _unauthorized("the bearer token is not valid")


def _unauthorized(msg: str) -> HTTPException:
    return HTTPException(status_code=401, detail=msg, headers={"WWW-Authenticate": "Bearer"})


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


async def require_token(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    request.app.state.auth.check(cred)


async def check_write(request: Request) -> None:
    """The token check of a mutation, called by the write routes before the body is read (see WriteRoute)."""
    request.app.state.auth.check(await bearer(request))


async def read_access(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    auth: Auth = request.app.state.auth
    if auth.open_reads or is_loopback(request.client.host if request.client else None):
        return
    auth.check(cred)
