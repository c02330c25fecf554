"""Every ```python block of README.md and of the adapters' READMEs runs as written, against the fakes.

Each README's blocks run in order, in one namespace, in a child process started in an empty
directory (``_snippets.py``), as a reader would paste them one after the other. What a block needs
and a reader has (a token, a server) comes from a hidden fixture named in an HTML comment just
before it: ``<!-- snippet fixtures="hubspot" -->``; the fixtures are described in ``_snippets.py``.
A block known to fail for a tracked reason says so in the same comment (``xfail="..."`` and the
``match="..."`` its error must match); it is reported XFAIL, and fails the run once it passes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from _redis_server import in_ci
from _snippets import FIXTURES, REDIS_ENV

ROOT = Path(__file__).resolve().parent.parent
READMES = ("README.md", "adapters/hubspot/README.md", "adapters/salesforce/README.md",
           "adapters/salesforce/ratewindow_salesforce/testing/README.md")
FENCE = re.compile(r"^```\s*(\S*)\s*$")
COMMENT = re.compile(r"^<!--\s*snippet\b(.*?)-->\s*$")
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Block:
    readme: str
    #: Line of the opening fence (1-based); the code starts on the next line.
    line: int
    code: str
    fixtures: tuple[str, ...] = ()
    xfail: str | None = None
    match: str | None = None

    @property
    def name(self) -> str:
        return f"{self.readme}:{self.line}"


class KnownFailure(Exception):
    """The block failed as its ``xfail`` says it does."""


def read_blocks(readme: str, text: str | None = None) -> list[Block]:
    """The python blocks of ``readme`` (or of ``text``, named ``readme``), each with the snippet
    comment just before it, if any.

    Raises:
        ValueError: an unclosed fence, or a snippet comment that no python block follows.
    """
    lines = ((ROOT / readme).read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    attributes: dict[str, str] | None = None
    index = 0
    while index < len(lines):
        comment = COMMENT.match(lines[index])
        fence = FENCE.match(lines[index])
        if comment:
            attributes = dict(ATTRIBUTE.findall(comment.group(1)))
        elif fence:
            end = next((j for j in range(index + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ValueError(f"{readme}:{index + 1}: unclosed code block")
            if fence.group(1) == "python":
                given = attributes or {}
                blocks.append(Block(readme, index + 1, "\n".join(lines[index + 1 : end]) + "\n",
                                    tuple(given.get("fixtures", "").split()), given.get("xfail"),
                                    given.get("match")))  # fmt: skip
            elif attributes is not None:
                raise ValueError(f"{readme}:{index + 1}: a snippet comment before a {fence.group(1)!r} block")
            attributes = None
            index = end
        elif lines[index].strip() and attributes is not None:
            raise ValueError(f"{readme}:{index + 1}: a snippet comment must come just before a python block")
        index += 1
    return blocks


BLOCKS = [block for readme in READMES for block in read_blocks(readme)]


def _param(block: Block) -> object:
    marks = [pytest.mark.xfail(reason=block.xfail, raises=KnownFailure, strict=True)] if block.xfail else []
    return pytest.param(block, id=block.name, marks=marks)


def test_every_readme_has_its_blocks_collected_and_every_comment_is_valid() -> None:
    counts = {readme: sum(1 for b in BLOCKS if b.readme == readme) for readme in READMES}
    assert all(counts.values()), counts
    for block in BLOCKS:
        assert set(block.fixtures) <= set(FIXTURES), block.name
        assert (block.xfail is None) == (block.match is None), f"{block.name}: xfail needs match, and back"


def test_the_block_parser() -> None:
    fence = "```"
    text = (f"<!-- snippet fixtures=\"hubspot\" -->\n{fence}python\nx = 1\n{fence}\n\n"
            f"{fence}sh\nmake test\n{fence}\n{fence}python\ny = x\n{fence}\n")
    assert read_blocks("X.md", text) == [Block("X.md", 2, "x = 1\n", ("hubspot",)), Block("X.md", 9, "y = x\n")]
    with pytest.raises(ValueError, match="must come just before"):
        read_blocks("X.md", f"<!-- snippet fixtures=\"hubspot\" -->\ntext\n{fence}python\nx = 1\n{fence}\n")
    with pytest.raises(ValueError, match="unclosed"):
        read_blocks("X.md", f"{fence}python\nx = 1\n")


@pytest.fixture(scope="module")
def run_readme(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Callable[[str], list[dict[str, str]]]:
    """``run_readme(readme)`` -> one result per block (``status``, ``error``); each README runs once."""
    done: dict[str, list[dict[str, str]]] = {}

    def run(readme: str) -> list[dict[str, str]]:
        if readme in done:
            return done[readme]
        blocks = [b for b in BLOCKS if b.readme == readme]
        env = {k: v for k, v in os.environ.items() if k != "RATEWINDOW_STORE"}
        if any("redis" in b.fixtures for b in blocks):
            with contextlib.suppress(pytest.skip.Exception):  # else those blocks report themselves skipped
                env[REDIS_ENV] = request.getfixturevalue("redis_url")
        directory = tmp_path_factory.mktemp("snippets")
        plan, results = directory / "plan.json", directory / "results.jsonl"
        plan.write_text(json.dumps([{"code": b.code, "fixtures": list(b.fixtures), "name": b.readme,
                                     "line": b.line} for b in blocks]))  # fmt: skip
        work = directory / "work"
        work.mkdir()
        process = subprocess.run([sys.executable, str(ROOT / "tests" / "_snippets.py"), str(plan), str(results)],
                                 cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False)
        found = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
        assert len(found) == len(blocks), f"the snippet runner stopped early:\n{process.stdout}\n{process.stderr}"
        done[readme] = found
        return found

    return run


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_readme_block_runs_as_written(block: Block, run_readme: Callable[[str], list[dict[str, str]]]) -> None:
    index = [b for b in BLOCKS if b.readme == block.readme].index(block)
    result = run_readme(block.readme)[index]
    if result["status"] == "skipped":
        if in_ci():
            pytest.fail(f"skipped under CI=true: {result['error']}", pytrace=False)
        pytest.skip(result["error"])
    if block.xfail is not None and result["status"] == "failed":
        assert block.match is not None
        if re.search(block.match, result["error"]):
            raise KnownFailure(result["error"])
        pytest.fail(f"failed, but not as its xfail says ({block.match!r}):\n{result['error']}", pytrace=False)
    if result["status"] != "ok":
        pytest.fail(f"{block.name} failed:\n{result['error']}", pytrace=False)
