"""Pass tests written as files: each tests/mlir/*.mlir is a printed graph whose comments say
which stages to run (`// RUN: simplify,fuse`, as `graphspore opt FILE -p simplify,fuse`) and
what the output must hold (`// CHECK: ...`, see filecheck.check_directives). The graph the
stages leave computes exactly what the input computes on the reference interpreter."""
from pathlib import Path

import numpy as np
import pytest

from graphspore import cli, pipeline
from graphspore.ir.interpreter import run as interpret
from graphspore.ir.parser import parse_file

from filecheck import check_directives

FILES = sorted((Path(__file__).parent / "mlir").glob("*.mlir"))


def run_line(text: str) -> list[str]:
    lines = [line.split(":", 1)[1] for line in text.splitlines()
             if line.startswith("// RUN:")]
    assert len(lines) == 1, "one // RUN: line expected"
    return [name.strip() for name in lines[0].split(",")]


def test_there_are_files():
    assert len(FILES) >= 5


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_mlir_file(path, rng):
    text = path.read_text()
    graph = parse_file(path)
    c, output = pipeline.run_on_graph(graph, run_line(text))
    check_directives(output, text)
    arrays = [rng.uniform(-2, 2, v.shape).astype(v.dtype.np) for v in graph.inputs]
    for want, got in zip(interpret(graph, arrays), interpret(c.graph, arrays)):
        np.testing.assert_array_equal(got, want)


def test_graphspore_opt_prints_the_same(capsys):
    path = next(p for p in FILES if p.stem == "simplify_cse")
    assert cli.main(["opt", str(path), "-p", "opt"]) == 0       # opt: simplify's old name
    _, expected = pipeline.run_on_graph(parse_file(path), ["simplify"])
    assert capsys.readouterr().out == expected


def test_graphspore_opt_errors_are_one_line(tmp_path, capsys):
    path = next(p for p in FILES if p.stem == "simplify_cse")
    assert cli.main(["opt", str(path), "-p", "loops"]) == 1
    assert "stage 'loops' needs the plan that 'memory_plan' makes" in capsys.readouterr().err
    (tmp_path / "bad.mlir").write_text("func.func @f(%x: tensor<3xf32>) -> () {\n  return %y\n")
    assert cli.main(["opt", str(tmp_path / "bad.mlir"), "-p", "simplify"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.mlir'}:2: " in err and "Error: %y is not defined" in err, err
