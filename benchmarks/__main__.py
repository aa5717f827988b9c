"""`python -m benchmarks [kernels|training|distributed|conv|half|control_flow|first_call]...
[--markdown]`: graphspore against numpy (and torch when installed, measured MindSpore figures),
in one process. ``--markdown`` also prints the table in Markdown under a line naming the CPU,
which is how README's benchmark table is regenerated."""
from __future__ import annotations

import sys

from .timing import Table


def cpu_description() -> str:
    """The CPU's model name, usable cores and vector extensions, from /proc/cpuinfo."""
    import os
    model, flags, family = "unknown CPU", set(), {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() in ("cpu family", "model") and key.strip() not in family:
                    family[key.strip()] = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    vector = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                          "avx512_bf16", "avx512_fp16") if f in flags]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if family:
        model += f" (family {family.get('cpu family', '?')}, model {family.get('model', '?')})"
    return f"{model}, {cores} usable cores, {' '.join(vector) or 'no AVX'}"


def main(argv: list[str]) -> int:
    markdown = "--markdown" in argv
    argv = [a for a in argv if a != "--markdown"]
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
    if markdown:
        print(f"\nMeasured on: {cpu_description()}\n")
        print(table.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
