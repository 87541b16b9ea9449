"""A TypeScript client generated from openapi/openapi.json type-checks (openapi-typescript)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import IN_CI

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "openapi.json"
# kept between runs (git-ignored) so the packages are downloaded once
WORKDIR = ROOT / ".cache" / "ts-client"
PACKAGES = {"openapi-typescript": "7.13.0", "openapi-fetch": "0.17.0", "typescript": "5.9.3"}

CLIENT = """\
import createClient from "openapi-fetch";
import type { paths, components } from "./schema";

type Workshop = components["schemas"]["Workshop"];

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:5000" });

export async function headline(): Promise<string> {
  const { data, error } = await client.GET("/api/v1/site", { params: { query: { render: "html" } } });
  if (error || !data) throw new Error(error?.message ?? "no site");
  const w = data.workshops[0];
  const organizers: string[] = w.organizers.map((p) => p.name);
  return `${w.title} (${w.location}) by ${organizers.join(", ")}: ${w.abstract_html ?? w.abstract}`;
}

export async function workshop(slug: string): Promise<Workshop> {
  const { data, error, response } = await client.GET("/api/v1/workshops/{slug}", {
    params: { path: { slug }, query: { ref: "published" } },
  });
  if (error || !data) throw new Error(`${response.status}: ${error?.message}`);
  const etag: string | null = response.headers.get("ETag");
  console.log(etag, data.start, data.references_unknown_field_is_an_error);
  return data;
}
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=WORKDIR, capture_output=True, text=True, timeout=600, check=False
    )


def test_generated_client_type_checks() -> None:
    if shutil.which("npm") is None or shutil.which("npx") is None:
        if IN_CI:
            pytest.fail("npm is needed under CI for the TypeScript client check")
        pytest.skip("npm is not installed: the TypeScript client check needs it")
    WORKDIR.mkdir(parents=True, exist_ok=True)
    (WORKDIR / "package.json").write_text(
        json.dumps({"private": True, "type": "module", "devDependencies": PACKAGES}, indent=2)
    )
    installed = all(
        json.loads((WORKDIR / "node_modules" / name / "package.json").read_text())["version"] == v
        for name, v in PACKAGES.items()
        if (WORKDIR / "node_modules" / name / "package.json").exists()
    ) and all((WORKDIR / "node_modules" / name).exists() for name in PACKAGES)
    if not installed:
        done = run("npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
        assert done.returncode == 0, done.stderr
    generated = run("npx", "--no-install", "openapi-typescript", str(SPEC), "-o", "schema.d.ts")
    assert generated.returncode == 0, generated.stderr
    tsconfig = {"compilerOptions": {"strict": True, "noEmit": True, "target": "ES2022", "module": "ES2022",
                                    "moduleResolution": "bundler", "lib": ["ES2022", "DOM"], "skipLibCheck": True}}  # fmt: skip
    (WORKDIR / "tsconfig.json").write_text(json.dumps(tsconfig))
    # the client must compile; a reference to a field the spec does not have must not
    (WORKDIR / "client.ts").write_text(
        CLIENT.replace(", data.references_unknown_field_is_an_error", "")
    )
    ok = run("npx", "--no-install", "tsc", "-p", ".")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (WORKDIR / "client.ts").write_text(CLIENT)
    wrong = run("npx", "--no-install", "tsc", "-p", ".")
    assert wrong.returncode != 0 and "references_unknown_field_is_an_error" in wrong.stdout
