"""Access tokens: HS256 JWTs whose `sub` is the user id. Token in, identity out; nothing else."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import jwt

USER_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


class TokenError(Exception):
    """The token is missing, malformed, expired, or not signed by us."""


@dataclass(frozen=True)
class Identity:
    user_id: str
    admin: bool = False


class Auth:
    """Signs with `secret`; accepts tokens signed with it or with any of `also_accept` (a demo
    node's own ephemeral key, so that its open /demo/token never holds the shared secret's
    power)."""

    def __init__(
        self,
        secret: str,
        *,
        algorithm: str = "HS256",
        leeway: int = 10,
        also_accept: tuple[str, ...] = (),
    ) -> None:
        self._secret = secret
        self._keys = (secret, *also_accept)
        self._algorithm = algorithm
        self._leeway = leeway

    def issue(self, user_id: str, *, ttl: int = 3600, admin: bool = False) -> str:
        if not USER_ID_RE.match(user_id):
            raise ValueError("user id must be 1-128 of A-Z a-z 0-9 _ . : @ -")
        now = int(time.time())
        claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + ttl}
        if admin:
            claims["admin"] = True
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def verify(self, token: object) -> Identity:
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise TokenError("missing token")
        claims: dict[str, object] | None = None
        problem = "bad token"
        for key in self._keys:
            try:
                # The algorithm list is pinned: a token cannot choose `none` or another key type.
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[self._algorithm],
                    leeway=self._leeway,
                    options={"require": ["exp", "sub"]},
                )
                break
            except jwt.InvalidSignatureError as exc:
                problem = str(exc)  # maybe the next key
            except jwt.PyJWTError as exc:
                raise TokenError(str(exc)) from None
        if claims is None:
            raise TokenError(problem)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not USER_ID_RE.match(sub):
            raise TokenError("bad sub")
        return Identity(user_id=sub, admin=claims.get("admin") is True)
