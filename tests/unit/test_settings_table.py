"""Every setting ``storefront/config.py`` reads is in the README's one table, with a default.

The names are read from the source, so a new setting without its row fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from storefront.config import PAGE_TYPES, from_env
from storefront.simulator.account import shop_environment

ROOT = Path(__file__).resolve().parents[2]
READ = re.compile(
    r'(?:env\.get|_int|_bool|_url|_choice)\(\s*(?:env,\s*)?"([A-Z_]+)"'
    r'|name: str = "([A-Z_]+)"'
)


def settings_read() -> set[str]:
    source = (ROOT / "storefront/config.py").read_text(encoding="utf-8")
    names = {direct or default for direct, default in READ.findall(source)}
    assert 'f"KLEVU_RECS_{page}"' in source  # the one name built at run time
    return names | {f"KLEVU_RECS_{page}" for page in PAGE_TYPES}


def table_rows() -> dict[str, list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            for name in re.findall(r"`([A-Z_]+)`", cells[0]):
                rows[name] = cells
    return rows


def test_every_setting_read_is_in_the_readme_table_with_a_default():
    names, rows = settings_read(), table_rows()
    assert len(names) > 25
    assert sorted(names - set(rows)) == []
    assert all(rows[name][1] for name in names), "a row without a default"


def test_the_table_lists_nothing_that_is_not_read():
    assert sorted(set(table_rows()) - settings_read()) == []


def test_print_env_gives_the_settings_make_run_gives():
    result = subprocess.run(
        [sys.executable, "-m", "storefront.simulator", "--port", "5999", "--print-env"],
        capture_output=True,
        text=True,
        check=True,
    )
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines()
    )
    assert exported == shop_environment("http://127.0.0.1:5999")
    assert from_env(exported)["KLEVU"].offline
