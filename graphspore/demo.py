"""`python -m graphspore demo`: run the two seed tutorials, then the training examples."""
from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STEPS = [
    ("Tutorial: automatic differentiation (seed 000)", "tutorial_autodiff.py", None),
    ("Tutorial: differentiating functions (seed 002)", "tutorial_function_grad.py", None),
    ("Training: MLP on the digits data set", "train_digits.py", "main"),
    ("Training: LeNet-style CNN on the digits data set", "train_lenet.py", "main"),
]


def main(argv: list[str] | None = None) -> int:
    for title, script, entry in STEPS:
        path = EXAMPLES / script
        if not path.exists():
            print(f"\n== {title}: {path} is missing, skipped ==")
            continue
        print(f"\n== {title} ({os.path.relpath(path)}) ==", flush=True)
        if entry is None:
            runpy.run_path(str(path), run_name="__main__")
        else:
            runpy.run_path(str(path), run_name="graphspore_demo")[entry]()
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
