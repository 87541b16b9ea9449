"""The `cms` command: serve, reindex, check, gc, openapi, import, tokens."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
from flask import Flask

from cms import auth
from cms.app import create_app
from cms.config import ConfigError
from cms.errors import CMSError, RepositoryFailure
from cms.openreview import keep_author_details, paper_from_note, read_export
from cms.serve import REQUEST_LINE_LIMIT
from cms.service import ContentService
from cms.types import TYPES


def _service(app: Flask) -> ContentService:
    svc: ContentService = app.extensions["cms"]
    return svc


def _app() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def spec_json(app: Flask) -> str:
    """The OpenAPI document exactly as `/openapi.json` serves it, pretty-printed."""
    return json.dumps(app.extensions["cms_api"].spec.to_dict(), indent=2, ensure_ascii=False) + "\n"


@click.group()
def main() -> None:
    """TerraBytes CMS: workshop content as JSON, every edit a git commit."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--dev", is_flag=True, help="Flask's reloading development server instead.")
def serve(host: str, port: int, workers: int, dev: bool) -> None:
    """Start the API (gunicorn), creating the repository from the seed on first start."""
    app = _app()  # creates the repository and catches the index up once, before forking
    click.echo(f"content repository: {_service(app).store.path}")
    click.echo(f"index: {app.config['DATABASE_URL']}")
    click.echo(f"accounts: {app.config['ACCOUNTS_DATABASE_URL']}")
    if dev:
        app.run(host=host, port=port, debug=True, use_reloader=True)
        return
    _service(app).dispose()
    argv = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers),
        "--bind", f"{host}:{port}",
        "--graceful-timeout", "10",
        "--no-control-socket",  # one per user by default: two servers would share it
        "--worker-class", "cms.serve.JSONErrorWorker",
        "--limit-request-line", str(REQUEST_LINE_LIMIT),
        "cms.app:create_app()",
    ]  # fmt: skip
    os.execvp(argv[0], argv)  # noqa: S606 (fixed argv: gunicorn replaces this process)


@main.command()
def reindex() -> None:
    """Rebuild the SQL index from git alone (tokens are kept)."""
    app = _app()

    def progress(ref: str, done: int, total: int) -> None:
        click.echo(f"{ref}: {done}/{total} commits indexed")

    started = time.perf_counter()
    count = _service(app).reindex(progress)
    click.echo(f"reindexed {count} commits in {time.perf_counter() - started:.3f} s")


@main.command()
def check() -> None:
    """git fsck the repository and compare the index with git; non-zero exit on any difference."""
    app = _app()
    svc = _service(app)
    problems = []
    try:
        svc.fsck()
        click.echo("git fsck --strict: ok")
    except RepositoryFailure as exc:
        problems.append(str(exc))
    problems += svc.check()
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("index matches git: ok")


@main.command()
def gc() -> None:
    """Pack the content repository (git gc); safe while the server runs."""
    svc = _service(_app())
    before = svc.store.size()
    svc.store.gc()
    click.echo(f"repository objects: {before} -> {svc.store.size()} bytes")


@main.command()
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("openapi") / "openapi.json", show_default=True,
)  # fmt: skip
def openapi(output: Path) -> None:
    """Write the OpenAPI document."""
    app = _app()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(spec_json(app), encoding="utf-8")
    click.echo(f"wrote {output}")


@main.group(name="import")
def import_() -> None:
    """Import content from other systems, each import one commit."""


@import_.command("openreview")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workshop", required=True, help="Slug of the workshop that accepted the papers.")
@click.option("--reason", default="", help="Why: kept in the commit message.")
@click.option("--author", "author_name", default="", help="Commit author (default: the CMS).")
@click.option("--email", "author_email", default="", help="Commit author's email.")
def import_openreview(
    export: Path, workshop: str, reason: str, author_name: str, author_email: str
) -> None:
    """Create or update papers from an OpenReview API v2 notes export (JSON), matched by
    note id; importing the same file again changes nothing."""
    svc = _service(_app())
    try:
        papers = [paper_from_note(n, workshop) for n in read_export(export)]
        result = svc.import_items(
            TYPES["papers"],
            papers,
            "openreview_id",
            auth.Actor(role="admin", name=author_name, email=author_email),
            reason or f"Import accepted papers from {export.name}",
            adjust=keep_author_details,
        )
    except CMSError as exc:
        details = f" {json.dumps(exc.errors)}" if exc.errors else ""
        raise click.ClickException(exc.message + details) from None
    finally:
        svc.dispose()
    click.echo(
        f"{len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged"
        + (f"; commit {result.commit}" if result.commit else "; nothing to commit")
    )


@main.group()
def tokens() -> None:
    """API tokens: create, list, revoke."""


@tokens.command("create")
@click.option("--name", required=True, help="Who uses it: becomes the commits' author.")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(auth.ROLES))
def tokens_create(name: str, email: str, role: str) -> None:
    """Create a token and print it once; only its hash is stored."""
    svc = _service(_app())
    try:
        with svc.accounts_session() as session:
            token, secret = auth.create_token(session, name, email, role)
            token_id = token.id
    except CMSError as exc:
        raise click.BadParameter(exc.message) from None
    click.echo(f"token {token_id} ({role}) for {name} <{email}>; it is shown only now:", err=True)
    click.echo(secret)


@tokens.command("list")
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    svc = _service(_app())
    with svc.accounts_session() as session:
        for t in auth.list_tokens(session):
            state = "revoked" if t.revoked_at else "active"
            click.echo(f"{t.id}\t{t.role}\t{state}\t{t.name} <{t.email}>")


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token: it stops working at once, in every worker."""
    svc = _service(_app())
    try:
        with svc.accounts_session() as session:
            auth.revoke_token(session, token_id)
    except CMSError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"token {token_id} revoked")


if __name__ == "__main__":
    main()
