"""Commit messages: the editor's reason made safe, the message the CMS writes, and the one
parser that reads any message back (subject, reason, trailers) and names each change's action.
"""

from __future__ import annotations

import re

from cms.errors import Invalid

REASON_MAX = 1000
MERGE_TRAILER = "CMS-Merge-Base: "  # a commit merged with what changed since its base
TOKEN_TRAILER = "CMS-Token-Id: "  # noqa: S105 (the id of the API token that made it)
TRAILER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*): (.*)$")
_TRAILER_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*\s*:")


def clean_reason(reason: str | None) -> str:
    """One line of the editor's own words: it can never forge a trailer or a header."""
    if not reason:
        return ""
    text = " ".join(re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", reason).split())
    if len(text) > REASON_MAX:
        raise Invalid(
            f"X-Change-Reason is limited to {REASON_MAX} characters.",
            errors={"headers": {"X-Change-Reason": [f"Longer than {REASON_MAX} characters."]}},
        )
    return f'"{text}"' if _TRAILER_LIKE.match(text) else text


def commit_message(subject: str, reason: str, trailers: list[str]) -> str:
    """Subject, the (cleaned) reason as its own paragraph, then the trailers."""
    return subject + "\n\n" + (reason + "\n\n" if reason else "") + "\n".join(trailers)


def split_message(message: str) -> tuple[str, str, dict[str, str]]:
    """(subject, reason, trailers) of a commit message written by the CMS or by hand."""
    paragraphs = message.strip("\n").split("\n\n")
    subject = paragraphs[0].split("\n", 1)[0] if paragraphs else ""
    rest = paragraphs[1:]
    trailers: dict[str, str] = {}
    if rest and all(TRAILER.match(line) for line in rest[-1].split("\n")):
        for line in rest.pop().split("\n"):
            key, _, value = line.partition(": ")
            trailers[key] = value
    first_rest = paragraphs[0].split("\n", 1)[1:] if paragraphs else []
    reason = "\n\n".join([*first_rest, *rest]).strip()
    return subject, reason, trailers


def token_id_of(trailers: dict[str, str]) -> int | None:
    token = trailers.get("CMS-Token-Id", "")
    return int(token) if token.isdigit() and len(token) < 10 else None


def action_of(old_blob: str | None, new_blob: str | None, trailers: dict[str, str]) -> str:
    """What a commit did to one item: create, update, delete or revert."""
    if new_blob is None:
        return "delete"
    if trailers.get("CMS-Action") == "revert":
        return "revert"
    return "create" if old_blob is None else "update"
