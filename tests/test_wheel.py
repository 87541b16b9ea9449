"""As a new user meets it: `pip install` of a wheel (no checkout beside it) serves the
TerraBytes workshop, and a seed folder that does not exist stops the server with a reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_install_serves_the_seed(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
         str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("terrabytes_cms-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"  # no checkout here: only the installed package
    elsewhere.mkdir()
    script = (
        "import cms, json\n"
        "from cms.app import create_app\n"
        "import os; app = create_app({'INSTANCE_PATH': os.path.abspath('instance')})\n"
        "c = app.test_client()\n"
        "r = c.get('/api/v1/workshops/terrabytes-icml25')\n"
        "pages = [c.get(p).status_code for p in ('/', '/edit', '/docs', '/static/edit/edit.js',\n"
        "         '/static/edit/edit.css', '/static/site.js')]\n"
        "print(json.dumps({'file': cms.__file__, 'status': r.status_code, 'body': r.get_json(),\n"
        "                  'pages': pages}))\n"
        "app.extensions['cms'].dispose()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("CMS_SEED_PATH", None)
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["file"].startswith(str(target))
    assert result["status"] == 200
    assert result["body"]["location"] == "Vancouvert, Canada"  # verbatim, typo included
    assert result["pages"] == [200] * 6  # the pages and the editor app ship in the wheel


def test_a_configured_seed_that_does_not_exist_is_a_clear_startup_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CMS_INSTANCE_PATH": str(tmp_path / "instance"),
        "CMS_SEED_PATH": str(tmp_path / "no-such-folder"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "cms.cli", "serve", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert "CMS_SEED_PATH" in out.stderr and "no-such-folder" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "instance" / "content.git").exists()  # nothing half-made
