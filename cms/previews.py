"""Preview links: opaque, expiring, revocable, read-only tokens that show a co-organizer the
drafts (main as it moves) or one commit, without an account. Kept beside the tokens."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import BigInteger, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cms.auth import AccountsBase, Actor, hash_token, now
from cms.errors import Forbidden, NotFound, Unauthorized

PREFIX = "prv_"
PREVIEW_PATTERN = r"^prv_[A-Za-z0-9_-]{43}$"
_PREVIEW_RE = re.compile(PREVIEW_PATTERN)
MAX_LIFETIME = 30 * 24 * 3600


class PreviewRow(AccountsBase):
    """A preview link: its token's hash and what it shows (a ref, or one commit)."""

    __tablename__ = "previews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    commit: Mapped[str | None] = mapped_column(String(40), nullable=True)
    description: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


@dataclass(frozen=True)
class Scope:
    """What a preview link may read: a ref as it moves, or one commit."""

    ref: str | None
    commit: str | None


def create_preview(
    session: Session,
    actor: Actor,
    *,
    ref: str | None,
    commit: str | None,
    lifetime: int,
    description: str = "",
) -> tuple[PreviewRow, str]:
    """A new preview link; its secret is returned once and only its hash is kept."""
    assert (ref is None) != (commit is None) and 0 < lifetime <= MAX_LIFETIME
    secret = PREFIX + secrets.token_urlsafe(32)
    created = now()
    row = PreviewRow(
        token_hash=hash_token(secret),
        ref=ref,
        commit=commit,
        description=description,
        created_by=actor.token_id,
        created_at=created,
        expires_at=created + lifetime,
    )
    session.add(row)
    session.flush()
    return row, secret


def scope_of(session: Session, secret: str) -> Scope:
    """What the preview token may read; 401 when it is unknown, expired or revoked."""
    row = (
        session.scalar(select(PreviewRow).where(PreviewRow.token_hash == hash_token(secret)))
        if _PREVIEW_RE.match(secret)
        else None
    )
    if row is None:
        raise Unauthorized("Unknown preview link.")
    if row.revoked_at is not None:
        raise Unauthorized("This preview link has been revoked.")
    if row.expires_at <= now():
        raise Unauthorized("This preview link has expired.")
    return Scope(row.ref, row.commit)


def visible_previews(session: Session, actor: Actor) -> list[PreviewRow]:
    """Admins see every preview link, others the ones they made."""
    query = select(PreviewRow).order_by(PreviewRow.id.desc())
    if not actor.can("admin"):
        query = query.where(PreviewRow.created_by == actor.token_id)
    return list(session.scalars(query))


def revoke_preview(session: Session, actor: Actor, preview_id: int) -> PreviewRow:
    row = session.get(PreviewRow, preview_id)
    if row is None:
        raise NotFound(f"No preview link {preview_id}.")
    if not actor.can("admin") and row.created_by != actor.token_id:
        raise Forbidden("Only its creator or an admin may revoke a preview link.")
    if row.revoked_at is None:
        row.revoked_at = now()
    return row
