"""`python -m graphspore demo`: run the two seed tutorials (the pages themselves, through
`graphspore run`'s tutorial runner, `mindspore` aliased), then the training examples."""
from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from . import cli
from .mindspore_alias import alias_mindspore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STEPS = [
    ("Tutorial: automatic differentiation (seed 000)", "seeds/000_autodiff.txt", None),
    ("Tutorial: differentiating functions (seed 002)", "seeds/002_function_grad.txt", None),
    ("Training: MLP on the digits data set", "train_digits.py", "main"),
    ("Training: LeNet-style CNN on the digits data set", "train_lenet.py", "main"),
]


def main(argv: list[str] | None = None) -> int:
    alias_mindspore()
    for title, script, entry in STEPS:
        path = EXAMPLES / script
        if not path.exists():
            print(f"\n== {title}: {path} is missing, skipped ==")
            continue
        print(f"\n== {title} ({os.path.relpath(path)}) ==", flush=True)
        if entry is None:
            cli.run_script(path, [])
        else:
            runpy.run_path(str(path), run_name="graphspore_demo")[entry]()
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
