"""The pytest plugin as another team uses it: docs/testing.md's example suite, copied into a
temporary directory outside the repository and run there by ``pytest`` with the installed
plugin (its ``pytest11`` entry point), nothing of this repository on the path."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).parents[2]
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```", re.S)


def test_the_plugin_is_registered_as_klevu_storefront():
    [plugin] = [e for e in entry_points(group="pytest11") if e.name == "klevu_storefront"]
    assert plugin.value == "storefront.pytest_plugin"


def run_suite(directory: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_documented_example_suite_passes_from_outside_the_repository(tmp_path):
    [(name, code)] = EXAMPLE.findall((ROOT / "docs/testing.md").read_text(encoding="utf-8"))
    suite = tmp_path / "qa-suite"
    suite.mkdir()
    (suite / name).write_text(code, encoding="utf-8")
    assert not suite.resolve().is_relative_to(ROOT.resolve())

    done = run_suite(suite)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout


def test_wait_for_fails_with_what_did_arrive(tmp_path):
    (tmp_path / "test_waiting.py").write_text(
        "def test_nothing_arrives(storefront, klevu_events):\n"
        "    klevu_events.wait_for(event='select_recs_list', count=2, timeout=1)\n"
        "\n"
        "def test_an_unknown_pack(scenario):\n"
        "    scenario('no-such-pack')\n"
        "\n"
        "def test_an_unknown_persona(persona):\n"
        "    import requests\n"
        "    persona(requests.Session(), 'nobody')\n",
        encoding="utf-8",
    )
    done = run_suite(tmp_path)
    assert done.returncode == 1
    assert "3 failed" in done.stdout
    assert (
        "expected 2 x select_recs_list at Klevu's collector within 1 s, got 0; "
        "it received: nothing" in done.stdout
    )
    assert "no scenario pack 'no-such-pack'; packs are" in done.stdout
    assert "no demo persona 'nobody'; personas are anonymous, maya" in done.stdout
