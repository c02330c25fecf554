"""Run every benchmark script, then refresh the README's tables from benchmarks/results/*.md.

`make bench` runs this in `.venv-bench` (the peers and matplotlib live only there). The README
holds each result between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; this script replaces
that span with the result file's body, so every number in the README comes from a committed run.

Usage: python benchmarks/run.py [--only NAME ...] [--readme-only]
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
README = ROOT / "README.md"


def scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "run.py")


def refresh_readme() -> list[str]:
    text = README.read_text()
    refreshed = []
    for result in sorted((HERE / "results").glob("*.md")):
        name = result.stem
        tag = re.escape(name)
        pattern = re.compile(rf"(<!-- bench:{tag} -->\n)(.*?)(<!-- /bench:{tag} -->)", re.S)
        if not pattern.search(text):
            continue
        body = result.read_text().split("\n", 1)[1].strip()  # drop the file's own title
        body = body.replace("\n## ", "\n#### ")
        # The README is also the package's index page, where relative links break: a chart is named
        # by its path in the repository instead of embedded.
        body = re.sub(r"!\[([^\]]*)\]\((?!https?:)(?:benchmarks/results/)?([^)]+\.png)\)",
                      r"Chart (\1): `benchmarks/results/\2` in the repository.", body)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(3), text)
        refreshed.append(name)
    README.write_text(text)
    return refreshed


def main(argv: list[str]) -> int:
    only = {a for a in argv if not a.startswith("--")}
    failures = []
    if "--readme-only" not in argv:
        for script in scripts():
            if only and script.stem not in only:
                continue
            print(f"== {script.name}", flush=True)
            started = time.monotonic()
            code = subprocess.call([sys.executable, str(script)], cwd=ROOT)
            print(f"== {script.name}: exit {code} in {time.monotonic() - started:.1f} s", flush=True)
            if code:
                failures.append(script.name)
    print("README tables refreshed:", ", ".join(refresh_readme()) or "none")
    if failures:
        print("failed:", ", ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
