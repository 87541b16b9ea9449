"""Scheduled publications: publish exactly one reviewed commit of main at a set instant. Kept
beside the tokens (user intent, not derived from git); run by the service's runner."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cms.auth import AccountsBase, Actor, now
from cms.errors import Conflict, Forbidden, NotFound

PENDING, DONE, FAILED, CANCELLED = "pending", "done", "failed", "cancelled"


class ScheduleRow(AccountsBase):
    """One scheduled publication: what (a commit of main), when (UTC, and the zone it was
    given in), who asked and why, and how it ended."""

    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    commit: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(100))  # the revision as the admin named it
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    zone: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), nullable=True)
    created_by_name: Mapped[str] = mapped_column(String(200))
    created_by_email: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), index=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)  # published commit, or why not
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    def actor(self) -> Actor:
        """Who the publication is made in the name of: the admin who scheduled it."""
        return Actor("admin", self.created_by, self.created_by_name, self.created_by_email)


def create_schedule(
    session: Session, actor: Actor, *, commit: str, label: str, at: int, zone: str, reason: str
) -> ScheduleRow:
    row = ScheduleRow(
        commit=commit, label=label[:100], at=at, zone=zone, reason=reason,
        created_by=actor.token_id, created_by_name=actor.name, created_by_email=actor.email,
        created_at=now(), status=PENDING,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def list_schedules(session: Session) -> list[ScheduleRow]:
    return list(session.scalars(select(ScheduleRow).order_by(ScheduleRow.at.desc())))


def get_schedule(session: Session, schedule_id: int) -> ScheduleRow:
    row = session.get(ScheduleRow, schedule_id)
    if row is None:
        raise NotFound(f"No scheduled publication {schedule_id}.")
    return row


def cancel_schedule(session: Session, actor: Actor, schedule_id: int) -> ScheduleRow:
    row = get_schedule(session, schedule_id)
    if not actor.can("admin"):
        raise Forbidden("Only admins cancel scheduled publications.")
    if row.status != PENDING:
        raise Conflict(f"Scheduled publication {schedule_id} is {row.status}: too late to cancel.")
    row.status, row.finished_at = CANCELLED, now()
    return row


def due(session: Session, when: int) -> list[ScheduleRow]:
    """Pending publications whose time has come, oldest first."""
    query = select(ScheduleRow).where(ScheduleRow.status == PENDING, ScheduleRow.at <= when)
    return list(session.scalars(query.order_by(ScheduleRow.at, ScheduleRow.id)))


def finish(session: Session, schedule_id: int, status: str, result: str) -> None:
    row = session.get(ScheduleRow, schedule_id)
    if row is not None and row.status == PENDING:
        row.status, row.result, row.finished_at = status, result, now()
