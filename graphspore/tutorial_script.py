"""Run a Markdown tutorial (a `.md`/`.txt` page of ```python blocks) as a notebook would.

The blocks run verbatim, in order, in one `__main__` namespace, each compiled with the
tutorial's own file name and line numbers (so tracebacks and graphspore's error carets point
into the tutorial). Before the first block the namespace holds MindSpore's tutorial setup cell
(`SETUP`: numpy as np, mindspore, nn, ops, Tensor, Parameter), which tutorial excerpts leave
out. A block that raises is reported, notebook-style, and the run goes on with the next
block; the exit status says whether every block ran.
"""
from __future__ import annotations

import linecache
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".md", ".markdown", ".txt")
SETUP = ("import numpy as np\nimport mindspore\n"
         "from mindspore import nn, ops, Tensor, Parameter\n")

_FENCE = re.compile(r"^(\s*)```+\s*(\w*)\s*$")


@dataclass(frozen=True)
class CodeBlock:
    """One ```python block: its code and the tutorial line its first code line is on."""
    line: int
    code: str


def code_blocks(text: str) -> list[CodeBlock]:
    """The ```python (or ```py) blocks of a Markdown text, in order."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, language = len(match.group(1)), match.group(2).lower()
        start, i = i + 1, i + 1
        while i < len(lines) and not lines[i].strip().startswith("```"):
            i += 1
        if language in ("python", "py", "python3"):
            body = [line[indent:] if line[:indent].isspace() else line
                    for line in lines[start:i]]
            blocks.append(CodeBlock(start + 1, "\n".join(body) + "\n"))
        i += 1
    return blocks


def python_view(text: str, blocks: list[CodeBlock]) -> str:
    """The page with every line outside the code blocks blanked: a Python file with the
    page's line numbers, which tracebacks and graphspore's source parser read."""
    lines = [""] * len(text.splitlines())
    for block in blocks:
        for offset, line in enumerate(block.code.splitlines()):
            lines[block.line - 1 + offset] = line
    return "\n".join(lines) + "\n"


def is_tutorial(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def run_tutorial(path: Path, report=None) -> int:
    """Run the code blocks of the tutorial at `path`; 0 if all ran, else 1.
    `report(error, block)` prints a failed block's error (default: a short traceback)."""
    text = path.read_text(encoding="utf-8")
    blocks = code_blocks(text)
    if not blocks:
        print(f"error: {path}: no ```python code blocks", file=sys.stderr)
        return 1
    filename = str(path.resolve())
    view = python_view(text, blocks)
    linecache.cache[filename] = (len(view), None, view.splitlines(True), filename)
    namespace = {"__name__": "__main__", "__file__": filename, "__builtins__": __builtins__}
    exec(compile(SETUP, "<tutorial setup>", "exec"), namespace)
    failed = 0
    for number, block in enumerate(blocks, 1):
        code = compile("\n" * (block.line - 1) + block.code, filename, "exec")
        try:
            exec(code, namespace)
        except SystemExit:
            raise
        except KeyboardInterrupt:
            raise
        except BaseException as error:      # a notebook reports the cell and goes on
            failed += 1
            sys.stdout.flush()
            (report or _report)(error, number, block)
        sys.stdout.flush()
    return 1 if failed else 0


def _report(error: BaseException, number: int, block: CodeBlock) -> None:
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if f.filename != __file__]
    where = f" (line {frames[-1].lineno})" if frames else ""
    print(f"error in code block {number}{where}: {type(error).__name__}: {error}",
          file=sys.stderr)
