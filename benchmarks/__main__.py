"""`python -m benchmarks [kernels|training|distributed|conv|half|control_flow|first_call]...`:
graphspore against numpy (and torch when installed, measured MindSpore figures), in one process."""
from __future__ import annotations

import sys

from .timing import Table


def main(argv: list[str]) -> int:
    chosen = argv or ["kernels", "training", "distributed", "conv", "half", "control_flow",
                      "first_call"]
    table = Table("graphspore vs numpy (same process; ratio > 1 means graphspore is faster "
                  "for throughput rows, slower for time rows)")
    if "kernels" in chosen:
        from . import kernels
        kernels.run(table)
    if "training" in chosen:
        try:
            from . import training
        except ImportError as exc:
            print(f"training benchmarks unavailable: {exc}")
        else:
            training.run(table)
    if "distributed" in chosen:
        from . import distributed
        distributed.run(table)
    if "conv" in chosen:
        from . import conv
        conv.run(table)
    if "half" in chosen:
        from . import half
        half.run(table)
    if "control_flow" in chosen:
        from . import control_flow
        control_flow.run(table)
    if "first_call" in chosen:
        from . import first_call
        first_call.run(table)
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
