"""The `graphspore` command line (`python -m graphspore`): dump, run, compile, demo.

    graphspore dump SCRIPT.py [--stage STAGE[,STAGE]] [--out DIR] [-- SCRIPT ARGS]
    graphspore run SCRIPT.py|TUTORIAL.md [--shadow-mindspore] [-- SCRIPT ARGS]
    graphspore SCRIPT.py [-- SCRIPT ARGS]        (the same as `run`)
    graphspore compile MODULE:FUNCTION --arg x=f32[5] ... [--grad 0,1] -o out.so
    graphspore opt FILE.mlir -p simplify,fuse
    graphspore demo

`dump` is the one debug switch of STYLE.md item 13: it turns on `ir.dump` for the stages asked
for, runs the script as `__main__`, and prints one summary row per compiled function from
`compiler.STATS`. `GRAPHSPORE_DUMP` and `set_context(save_graphs=True)` reach the same module.

Errors are one line on stderr. Usage errors (what argparse detects: an unknown stage, a
malformed --arg) exit 2 without repeating the usage text; every other failure (a missing file,
a script that raises, a link error) exits 1. A script that raises is reported as
`error: <script>:<line>: <ExcType>: <message>`, the line being the script's own frame nearest
the failure, followed by a GraphsporeError's source line, caret and hint. `--traceback`
(before the subcommand) shows the full traceback instead.

`run` turns on the `mindspore` alias (graphspore.mindspore_alias), so MindSpore scripts run
unchanged; a `.md`/`.txt` file runs its ```python blocks (graphspore.tutorial_script).
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
from pathlib import Path

from . import pipeline
from .ir import dump as ir_dump
from .ir.dump import DEFAULT_DIR as DEFAULT_DUMP_DIR



class CommandError(Exception):
    """A failure to report as one line (`error: ...`) with exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: `prog: error: msg (see 'prog --help')`, exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def parse_stages(text: str) -> tuple[str, ...]:
    """`simplify`, `parse,llvm`, an alias (`opt`) or `all` -> stage names, in pipeline
    order."""
    try:
        chosen = pipeline.resolve_stages(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not chosen:
        raise argparse.ArgumentTypeError("empty stage list")
    return chosen


def _stage_list(text: str) -> list[str]:
    """`simplify,fuse` -> stage names in the order given (aliases resolved)."""
    try:
        names = pipeline.resolve_stages_in_order([n.strip() for n in text.split(",")
                                                  if n.strip()])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not names:
        raise argparse.ArgumentTypeError("empty stage list")
    return names


def _arg_spec(text: str):
    from .aot import parse_arg_spec
    try:
        return parse_arg_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positions(text: str):
    from .aot import parse_positions
    try:
        return parse_positions(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphspore", description="graphspore: MindSpore-style static "
                     "graphs compiled to native code through LLVM.",
                     epilog="Arguments after '--' are passed to the script (dump, run).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--traceback", action="store_true",
                        help="show full Python tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    dump = commands.add_parser(
        "dump", help="run a script and dump the IR of every function it compiles",
        description="Run SCRIPT as __main__ with IR dumping on. Every compiled function writes "
        "NN_<function>_<stage>.<ext> (NN = compile order; .mlir for graph stages, with a "
        "Graphviz .dot after parse and autodiff) into DIR; then a summary table is printed.")
    dump.add_argument("script", metavar="SCRIPT.py", help="the Python script to run")
    dump.add_argument("--stage", action="append", type=parse_stages, metavar="STAGE",
                      help=f"stage(s) to dump: {', '.join(pipeline.stage_names())} or all "
                      "(graph, grad, opt and asm name parse, autodiff, simplify and object); "
                      "repeat or give a comma-separated list (default: all)")
    dump.add_argument("--out", metavar="DIR", default=DEFAULT_DUMP_DIR,
                      help=f"directory for the dump files (default: ./{DEFAULT_DUMP_DIR})")

    run = commands.add_parser(
        "run", help="run a (MindSpore) script with `import mindspore` meaning graphspore",
        description="Run SCRIPT as __main__ with `mindspore` aliased to graphspore; an "
        "exception is reported as one line naming the script line (plus caret and hint). "
        "A .md/.txt tutorial runs its ```python code blocks, notebook-style.")
    run.add_argument("script", metavar="SCRIPT.py", help="the Python script or tutorial to run")
    run.add_argument("--shadow-mindspore", action="store_true",
                     help="alias `mindspore` to graphspore even when a real MindSpore is "
                     "installed")

    compile_ = commands.add_parser(
        "compile", help="compile a function ahead of time to a shared library and C header",
        description="Compile FUNCTION for fixed argument types into a shared library "
        "exporting void gs_<name>(void **buffers), and a C header describing the buffers.")
    compile_.add_argument("target", metavar="MODULE:FUNCTION",
                          help="a dotted module (importable from the current directory) or a "
                          "FILE.py, then ':' and the function")
    compile_.add_argument("--arg", action="append", type=_arg_spec, default=[],
                          metavar="NAME=DTYPE[DIMS]",
                          help="one per parameter, e.g. x=f32[5] w=f32[5,3] s=f32 (a scalar "
                          "tensor) or n=3 (a constant); dtypes f32 f64 i32 i64 bool")
    compile_.add_argument("--grad", type=_positions, metavar="POSITIONS",
                          help="compile grad(FUNCTION, POSITIONS) instead, e.g. --grad 0,1")
    compile_.add_argument("--value-and-grad", action="store_true",
                          help="with --grad: compile value_and_grad (outputs the value too)")
    compile_.add_argument("--name", help="graph name; the symbol is gs_<name> (default: the "
                          "function's name, grad_<name> with --grad)")
    compile_.add_argument("-o", "--output", required=True, metavar="OUT.so",
                          help="the shared library to write (OUT.o: the object file only); "
                          "the header is written beside it as OUT.h")
    compile_.add_argument("--no-header", action="store_true", help="do not write OUT.h")
    compile_.add_argument("--max-loop-iterations", type=int, metavar="N",
                          help="rows of the gradient tape of each while loop whose condition "
                          "is a tensor (default 131072); a longer run reports it through the "
                          "index-check output")

    opt = commands.add_parser(
        "opt", help="run pipeline stages on a printed graph and print the result",
        description="Read FILE.mlir (a graph as graphspore prints it, e.g. a dump), run the "
        "stages given with -p in that order, and print the last stage's result (MLIR for "
        "graph stages, the kernels, the plan, loops, LLVM IR or assembly).")
    opt.add_argument("file", metavar="FILE.mlir", help="the graph to read")
    opt.add_argument("-p", "--passes", required=True, type=_stage_list, metavar="STAGES",
                     help="comma-separated stages, e.g. simplify,fuse (names as for dump)")

    commands.add_parser("demo", help="run the two tutorials and the training examples",
                        description="Run the seed tutorials, then the digits training "
                        "examples (graphspore.demo).")
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("graphspore")
    except Exception:  # not installed as a distribution (source checkout)
        return "0.1.0"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `graphspore` and `python -m graphspore`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    script_argv: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, script_argv = argv[:split], argv[split + 1:]
    parser = build_parser()
    if argv and argv[0] not in _COMMANDS and not argv[0].startswith("-") and (
            argv[0].endswith(".py") or os.path.isfile(argv[0])):
        argv.insert(0, "run")             # `python -m graphspore SCRIPT.py`
    show_traceback = "--traceback" in argv
    try:
        args = parser.parse_args(argv)
        if script_argv and args.command not in ("dump", "run"):
            parser.error("arguments after '--' are only accepted by dump and run")
        return _COMMANDS[args.command](args, script_argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # every failure becomes one line, unless --traceback
        if show_traceback:
            traceback.print_exc()
        else:
            print(f"error: {_one_line(error)}", file=sys.stderr)
        return 1


def _one_line(error: BaseException) -> str:
    if isinstance(error, CommandError):
        return str(error)
    message = _first_line(getattr(error, "message", None) or str(error))
    loc = getattr(error, "loc", None)
    where = f"{loc.file}:{loc.line}: " if loc is not None and hasattr(loc, "line") else ""
    return f"{where}{error_kind(error)}: {message}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


# ----------------------------------------------------------------------------- commands

def cmd_dump(args, script_argv: list[str]) -> int:
    names = pipeline.stage_names()
    stages = tuple(s for s in names if any(s in group for group in args.stage)) \
        if args.stage else names
    out = Path(args.out)
    script = _check_script(args.script)
    from . import compiler
    ir_dump.configure(stages, str(out))  # this process only: a child would restart at NN 00
    first = compiler.compile_count()
    try:
        status = run_script(script, script_argv, args.traceback)
    finally:
        ir_dump.configure(None)
    stats = compiler.stats_since(first)
    files = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    print(summary_table(stats))
    print(f"{len(files)} dump files ({', '.join(stages)}) in {out}/", flush=True)
    return status


def cmd_run(args, script_argv: list[str]) -> int:
    from .mindspore_alias import alias_mindspore
    script = _check_script(args.script)
    alias_mindspore(shadow=args.shadow_mindspore)
    return run_script(script, script_argv, args.traceback)


def cmd_compile(args, _script_argv) -> int:
    from . import aot
    if args.value_and_grad and args.grad is None:
        raise CommandError("--value-and-grad needs --grad POSITIONS")
    if args.max_loop_iterations is not None:
        if args.max_loop_iterations < 1:
            raise CommandError("--max-loop-iterations needs a positive number")
        from .context import set_context
        set_context(max_loop_iterations=args.max_loop_iterations)
    try:
        fn = aot.load_function(args.target)
        abstract_args = aot.order_arguments(fn, args.arg)
        result = aot.export(fn, abstract_args, args.output, grad_positions=args.grad,
                            with_value=args.value_and_grad, name=args.name,
                            header=not args.no_header, source=args.target)
    except aot.AotError as error:
        raise CommandError(str(error)) from None
    written = str(result.library) + (f" and {result.header}" if result.header else "")
    print(f"wrote {written}: void {result.entry}(void **buffers), "
          f"{len(result.buffers)} buffers, workspace {result.workspace_bytes} bytes"
          + (", links scipy-openblas" if result.uses_blas else ""))
    return 0


def cmd_opt(args, _script_argv) -> int:
    from .ir.parser import parse_file
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"cannot open {args.file!r}: no such file")
    _, text = pipeline.run_on_graph(parse_file(path), args.passes)
    sys.stdout.write(text)
    return 0


def cmd_demo(args, _script_argv) -> int:
    from . import demo
    return int(demo.main() or 0)


_COMMANDS = {"dump": cmd_dump, "run": cmd_run, "compile": cmd_compile, "opt": cmd_opt,
             "demo": cmd_demo}


# ----------------------------------------------------------------------------- helpers

def _check_script(path: str) -> Path:
    script = Path(path)
    if not script.is_file():
        reason = "is a directory" if script.is_dir() else "no such file"
        raise CommandError(f"cannot open script {path!r}: {reason}")
    return script


def run_script(script: Path, script_argv: list[str], show_traceback: bool = False) -> int:
    """Run `script` as `__main__` (sys.argv and sys.path[0] as `python SCRIPT` sets them);
    return its exit status. An exception becomes one line naming the script's line."""
    from . import tutorial_script
    resolved = str(script.resolve())
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script)] + list(script_argv)
    sys.path.insert(0, str(script.resolve().parent))
    try:
        if tutorial_script.is_tutorial(script):
            return tutorial_script.run_tutorial(script, report=lambda error, number, block: (
                traceback.print_exception(error) if show_traceback else print(
                    f"error: {script_error(error, resolved, str(script))}", file=sys.stderr)))
        runpy.run_path(str(script), run_name="__main__")
        return 0
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        if show_traceback:
            traceback.print_exc()
        else:
            print(f"error: {script_error(error, resolved, str(script))}", file=sys.stderr)
        return 1
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        sys.stdout.flush()


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def script_error(error: BaseException, resolved: str, shown: str) -> str:
    """`<script>:<line>: <ExcType>: <message>`: the line is the script's frame nearest the
    failure (the error's own source location for a GraphsporeError located in the script)."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if os.path.realpath(frame.filename) == os.path.realpath(resolved):
            line = frame.lineno
    loc = getattr(error, "loc", None)
    if loc is not None and os.path.realpath(str(getattr(loc, "file", ""))) == \
            os.path.realpath(resolved):
        line = loc.line
    message = _first_line(getattr(error, "message", None) or str(error))
    where = f"{shown}:{line}" if line is not None else shown
    return f"{where}: {error_kind(error)}: {message}{_caret_and_hint(error)}"


def error_kind(error: BaseException) -> str:
    """The exception class a user knows: `NameError` for graphspore's GraphsporeNameError
    (its Python base), the class's own name otherwise."""
    from .ir.core import GraphsporeError
    for cls in type(error).__mro__:
        if cls in (Exception, BaseException):
            break
        if not issubclass(cls, GraphsporeError):
            return cls.__name__
    return type(error).__name__


def _caret_and_hint(error: BaseException) -> str:
    """A GraphsporeError's source line, caret and hint lines (its message without the first
    line), so `graphspore run` shows what plain `python` shows."""
    if getattr(error, "loc", None) is None and getattr(error, "hint", None) is None:
        return ""
    rest = str(error).splitlines()[1:]
    return "".join(f"\n{line}" for line in rest)


def summary_table(stats) -> str:
    """One row per compiled function: what the passes and codegen did, and the time taken."""
    header = ("#", "function", "signature", "ops", "simplified", "kernels", "workspace B",
              "compile ms")
    rows = [header]
    for i, s in enumerate(stats):
        ms = f"{s.compile_ms:.1f}" + (" (cached)" if getattr(s, "cache_hit", False) else "")
        rows.append((str(i), s.name, f"({s.signature})", str(s.ops_before), str(s.ops_after),
                     str(s.kernels), str(s.workspace_bytes), ms))
    if len(rows) == 1:
        return "no functions were compiled"
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    numeric = {0, 3, 4, 5, 6}
    lines = []
    for r in rows:
        cells = [r[c].rjust(widths[c]) if c in numeric else r[c].ljust(widths[c])
                 for c in range(len(header))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
