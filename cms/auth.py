"""Accounts: API tokens and roles. Tokens are stored as SHA-256 hashes in SQL, never in git,
in tables of their own that an index rebuild never touches."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import BigInteger, Engine, ForeignKey, Integer, MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from cms.database import create_all
from cms.errors import Forbidden, Invalid, NotFound, Unauthorized

ROLES = ("auditor", "editor", "admin")
LEVEL = {"anonymous": 0, "auditor": 1, "editor": 2, "admin": 3}
TOKEN_PREFIX = "cms_"  # noqa: S105 (a prefix, not a secret)
_TOKEN_RE = re.compile(r"^cms_[A-Za-z0-9_-]{43}$")
_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


class AccountsBase(DeclarativeBase):
    metadata = MetaData()


class Token(AccountsBase):
    """An API token: only its SHA-256 is stored."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), nullable=True)


def create_tables(engine: Engine) -> None:
    create_all(engine, AccountsBase.metadata)


def now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class Actor:
    role: str
    token_id: int | None = None
    name: str = ""
    email: str = ""

    def can(self, role: str) -> bool:
        return LEVEL[self.role] >= LEVEL[role]


ANONYMOUS = Actor(role="anonymous")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, name: str, email: str, role: str) -> tuple[Token, str]:
    """Store a new token's hash; the secret is returned once and never kept."""
    name, email = name.strip(), email.strip()
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if not name or len(name) > 200 or re.search(r"[<>\x00-\x1f\x7f]", name):
        raise Invalid("name must be 1 to 200 characters, without <, > or control characters")
    if len(email) > 200 or not _EMAIL_RE.match(email):
        raise Invalid("email must look like name@host")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        name=name, email=email, role=role, token_hash=hash_token(secret), created_at=now()
    )
    session.add(token)
    session.flush()
    return token, secret


def list_tokens(session: Session) -> list[Token]:
    return list(session.scalars(select(Token).order_by(Token.id)))


def revoke_token(session: Session, token_id: int) -> Token:
    token = session.get(Token, token_id)
    if token is None:
        raise NotFound(f"no token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now()
    return token


def authenticate(session: Session, header: str | None) -> Actor:
    """The actor behind a request's Authorization header: anonymous without one, 401 for a
    bad token."""
    if header is None:
        return ANONYMOUS
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not _TOKEN_RE.match(secret):
        raise Unauthorized("Malformed Authorization header: use 'Bearer <token>'.")
    return actor_for_secret(session, secret)


def actor_for_secret(session: Session, secret: str) -> Actor:
    digest = hash_token(secret)
    token = session.scalar(select(Token).where(Token.token_hash == digest))
    # The lookup is by a hash the client cannot steer; the comparison is constant-time anyway.
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        raise Unauthorized("Unknown token.")
    if token.revoked_at is not None:
        raise Unauthorized("This token has been revoked.")
    return Actor(role=token.role, token_id=token.id, name=token.name, email=token.email)


def require(actor: Actor, role: str) -> None:
    """401 for anonymous callers, 403 for a role too low."""
    if actor.can(role):
        return
    if actor.role == "anonymous":
        raise Unauthorized(f"This needs a token with the {role} role or above.")
    raise Forbidden(f"This needs the {role} role or above; your token has {actor.role}.")
