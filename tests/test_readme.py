"""The README's code is the tested examples' code, and its two commands exist."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks() -> list[tuple[str, str]]:
    """Each python block with the example file named in the line before it."""
    found = []
    for m in re.finditer(r"`(examples/[\w.]+)`[^\n]*\n+```python\n(.*?)```", README, re.S):
        found.append((m.group(1), m.group(2)))
    for m in re.finditer(r"```python\n(.*?)```", README, re.S):
        if not any(m.group(1) == code for _, code in found):
            found.append(("", m.group(1)))
    return found


def test_every_python_block_is_an_excerpt_of_a_tested_example() -> None:
    """Each python block in the README appears verbatim in one of examples/ (which tests run)."""
    examples = {p.name: p.read_text() for p in (ROOT / "examples").glob("*.py")}
    blocks = _blocks()
    assert len(blocks) >= 4
    for named, code in blocks:
        if named:
            assert code in (ROOT / named).read_text(), f"README block differs from {named}"
        else:
            assert any(code in text for text in examples.values()), code[:80]


def test_the_two_commands_come_first_and_are_executable() -> None:
    """The README opens with ./scripts/demo then ./scripts/test, and both scripts exist."""
    first = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first is not None
    lines = [ln.split("#")[0].strip() for ln in first.group(1).splitlines() if ln.strip()]
    assert lines == ["./scripts/demo", "./scripts/test"]
    for cmd in lines:
        assert os.access(ROOT / cmd, os.X_OK)
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()
