"""A typed Python client generated from the spec (openapi-python-client, which names its
functions after the operationIds) calls the API: the contract is enough for a real client."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from conftest import git
from flask import Flask

from cms.cli import spec_json


@pytest.fixture
def generated(app: Flask, tmp_path: Path) -> Iterator[ModuleType]:
    spec = tmp_path / "openapi.json"
    spec.write_text(spec_json(app))
    bin_dir = str(Path(sys.executable).parent)  # its formatter (ruff) runs from the venv
    subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(spec),
         "--output-path", str(tmp_path / "cms_client"), "--meta", "none", "--fail-on-warning"],
        check=True, capture_output=True, cwd=tmp_path,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
    )  # fmt: skip
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("cms_client")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.split(".")[0] == "cms_client"]:
            del sys.modules[name]


def client_for(generated: ModuleType, app: Flask, token: str | None = None) -> Any:
    transport = httpx.WSGITransport(app=app)
    base = {"base_url": "http://cms.test", "httpx_args": {"transport": transport}}
    if token is None:
        return generated.Client(**base)
    return generated.AuthenticatedClient(token=token, **base)


def test_the_generated_client_reads_edits_and_publishes(
    generated: ModuleType, app: Flask, tokens: dict[str, dict[str, str]], repo: Path
) -> None:
    models = importlib.import_module("cms_client.models")
    secret = {role: h["Authorization"].removeprefix("Bearer ") for role, h in tokens.items()}

    anonymous = client_for(generated, app)
    listed = importlib.import_module("cms_client.api.people.list_people").sync(client=anonymous)
    assert [p.slug for p in listed] == ["valentin-barriere"]

    editor = client_for(generated, app, secret["editor"])
    get_person = importlib.import_module("cms_client.api.people.get_person")
    person = get_person.sync("valentin-barriere", client=editor, ref=models.GetPersonRef.MAIN)
    assert isinstance(person, models.Person) and person.name == "Valentin Barriere"

    update = importlib.import_module("cms_client.api.people.update_person")
    answer = update.sync_detailed(
        "valentin-barriere",
        client=editor,
        body=models.PersonPatch.from_dict({"bio": "Written through a generated client"}),
        if_match=f'"{person.etag}"',
        x_change_reason="Try the typed client",
    )
    assert answer.status_code == 200 and isinstance(answer.parsed, models.Person)
    assert answer.parsed.bio == "Written through a generated client"
    assert "Try the typed client" in git(repo, "log", "-1", "--format=%B", "main")

    stale = update.sync_detailed(
        "valentin-barriere", client=editor, body=models.PersonPatch.from_dict({"bio": "late"}),
        if_match=f'"{person.etag}"',
    )  # fmt: skip
    assert stale.status_code == 412 and isinstance(stale.parsed, models.ErrorResponse)

    admin = client_for(generated, app, secret["admin"])
    published = importlib.import_module("cms_client.api.site.publish_site").sync(client=admin)
    assert published is not None and published.changed is True
    whole = importlib.import_module("cms_client.api.site.get_site").sync(client=anonymous)
    assert whole.people[0].bio == "Written through a generated client"
