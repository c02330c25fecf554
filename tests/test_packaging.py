"""The distributions as PyPI gets them: built from this checkout (hatchling's PEP 517 hooks, no
network), each carries the LICENSE, its index page (the README) has no link that breaks off
GitHub, and the root sdist holds only the core."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = {"ratewindow": ROOT, "ratewindow_hubspot": ROOT / "adapters" / "hubspot",
            "ratewindow_salesforce": ROOT / "adapters" / "salesforce"}
#: Markdown links and images whose target is not absolute: broken on a package index page.
RELATIVE_LINK = re.compile(r"!?\[[^\]]*\]\((?!https?://|#)([^)\s]+)\)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """{project: (sdist, wheel)}, built as pip would build them (in about a second each)."""
    out = tmp_path_factory.mktemp("dist")
    hooks = ("import sys, hatchling.build as b; "
             "print(b.build_sdist(sys.argv[1])); print(b.build_wheel(sys.argv[1]))")
    found = {}
    for name, path in PROJECTS.items():
        result = subprocess.run([sys.executable, "-c", hooks, str(out)], cwd=path, capture_output=True,
                                text=True, timeout=60, check=True)
        sdist, wheel = result.stdout.split()
        found[name] = (out / sdist, out / wheel)
    return found


@pytest.mark.parametrize("name", PROJECTS)
def test_every_sdist_and_wheel_carries_the_license(built: dict[str, tuple[Path, Path]], name: str) -> None:
    sdist, wheel = built[name]
    license_text = (ROOT / "LICENSE").read_text()
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        member = archive.extractfile(f"{top}/LICENSE")
        assert member is not None and member.read().decode() == license_text
    with zipfile.ZipFile(wheel) as archive:
        licenses = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert len(licenses) == 1 and archive.read(licenses[0]).decode() == license_text
    assert (PROJECTS[name] / "LICENSE").read_text() == license_text  # the adapters' copies stay the same


@pytest.mark.parametrize("name", PROJECTS)
def test_the_index_page_has_no_relative_link(built: dict[str, tuple[Path, Path]], name: str) -> None:
    _, wheel = built[name]
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = email.message_from_bytes(archive.read(metadata))
    page = message.get_payload()
    assert isinstance(page, str) and page.startswith("# ")  # the README is the long description
    assert RELATIVE_LINK.findall(page) == []


def test_the_root_sdist_holds_the_core_only(built: dict[str, tuple[Path, Path]]) -> None:
    sdist, _ = built["ratewindow"]
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert not [n for n in names if n.startswith(("adapters/", "benchmarks/", "tests/"))]
    assert {"README.md", "CHANGELOG.md", "LICENSE", "ratewindow/__init__.py", "ratewindow/py.typed"} <= names
