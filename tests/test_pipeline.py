"""The compile pipeline as one list of stages: its order, the verifier after each graph stage,
dumps keyed by stage name (old names as aliases), and a new stage dumpable with no other
change; the dump switch's file numbering and configuration."""
import os
import re

import numpy as np
import pytest

from graphspore import Tensor, jit, ops, pipeline
from graphspore.ir import Builder, DType, Graph, Loc, TensorType, building
from graphspore.ir import dump as ir_dump
from graphspore.ir import ops as ir_ops
from graphspore.ir.printer import print_graph
from graphspore.ir.verify import VerifyError

F32 = DType.f32


def graph_source(body, *types, name="f"):
    """A `pipeline.Source` whose parse stage builds `body(*inputs) -> outputs`."""
    def parse(_args, _kwargs):
        graph = Graph(name, loc=Loc("model.py", 1, 0))
        with building(Builder(graph)) as b:
            graph.outputs = list(body(*[b.input(TensorType(s, F32), f"x{i}")
                                        for i, s in enumerate(types)]))
        return graph, 0
    return pipeline.Source(name, parse)


def scaled_exp(x):
    return ops.exp(x) * 3.0 + 0.0


@pytest.fixture
def dump_dir(tmp_path):
    yield tmp_path
    ir_dump.configure(None)


def test_one_list_in_order():
    assert pipeline.stage_names() == ("parse", "autodiff", "index_checks", "simplify",
                                      "fuse", "memory_plan", "loops", "llvm",
                                      "object")
    assert pipeline.resolve_stages("asm, opt,graph,grad") == ("parse", "autodiff", "simplify",
                                                              "object")
    assert pipeline.resolve_stages("all") == pipeline.stage_names()
    with pytest.raises(ValueError, match="'grpah'.*parse, autodiff.*graph=parse"):
        pipeline.resolve_stages("grpah")


def test_graph_stages_run_in_order_and_fill_the_compilation():
    source = graph_source(lambda x: [ir_ops.mul(ir_ops.exp(x), 1.0)], (4,))
    c = pipeline.run(pipeline.Compilation(source), ("parse", "simplify", "fuse",
                                                    "memory_plan", "loops", "llvm"))
    assert c.ops_before == 3 and [op.name for op in c.graph.ops] == ["gs.exp"]
    assert len(c.program.kernels) == 1 and "define void @\"gs_f\"" in c.llvm_ir
    assert c.native is None                                 # the object stage did not run


def test_the_verifier_names_the_stage_that_broke_the_graph(monkeypatch):
    def breaks(graph):
        graph.ops.reverse()
        return graph
    stages = list(pipeline.STAGES)
    stages.insert(stages.index(next(s for s in stages if s.name == "simplify")) + 1,
                  pipeline.graph_stage("broken", breaks))
    monkeypatch.setattr(pipeline, "STAGES", stages)
    source = graph_source(lambda x: [ir_ops.tanh(ir_ops.exp(x))], (3,))
    with pytest.raises(VerifyError) as info:
        pipeline.run(pipeline.Compilation(source))
    assert "'broken' stage" in "\n".join(getattr(info.value, "__notes__", []))


def test_a_stage_added_to_the_list_is_dumpable_with_no_other_change(monkeypatch, dump_dir):
    seen = []

    def count_ops(graph):
        seen.append(len(graph.ops))
        return graph
    stages = list(pipeline.STAGES)
    stages.insert(4, pipeline.graph_stage("count_ops", count_ops))    # after simplify
    monkeypatch.setattr(pipeline, "STAGES", stages)
    ir_dump.configure("count_ops,opt", str(dump_dir))
    x = np.linspace(-1, 1, 6, dtype=np.float32)
    out = jit(scaled_exp)(Tensor(x))
    np.testing.assert_allclose(out.asnumpy(), np.exp(x) * 3.0, rtol=1e-6)
    names = sorted(os.listdir(dump_dir))
    assert [re.sub(r"^\d\d_", "", n) for n in names] == ["scaled_exp_count_ops.mlir",
                                                          "scaled_exp_simplify.mlir"], names
    texts = [(dump_dir / n).read_text() for n in names]
    assert texts[0] == texts[1] and seen == [texts[0].count(' = "gs.')]


def test_each_dump_is_the_stages_product(dump_dir):
    ir_dump.configure("all", str(dump_dir))
    program = jit(scaled_exp).program_for(Tensor(np.ones((4, 3), np.float32)))
    files = {re.sub(r"^\d\d_scaled_exp_", "", n): (dump_dir / n).read_text()
             for n in os.listdir(dump_dir)}
    assert sorted(files) == ["fuse.fuse", "index_checks.mlir", "llvm.ll", "loops.loops",
                             "memory_plan.plan", "object.s", "parse.dot", "parse.mlir",
                             "simplify.mlir"]                    # no autodiff: not a grad
    assert files["simplify.mlir"] == print_graph(program.graph)
    assert files["llvm.ll"] == program.module.llvm_ir          # exactly the compiled text
    assert "gs.add" in files["parse.mlir"] and "gs.add" not in files["simplify.mlir"]
    assert files["fuse.fuse"].startswith("fused_0: elementwise")
    assert files["memory_plan.plan"].startswith("// workspace 0 bytes")


def test_a_misspelt_dump_stage_fails_the_compile(monkeypatch):
    monkeypatch.setenv("GRAPHSPORE_DUMP", "parse,grpah")
    source = graph_source(lambda x: [ir_ops.exp(x)], (3,))
    with pytest.raises(ValueError, match="'grpah'"):
        pipeline.run(pipeline.Compilation(source), ("parse",))


def test_dump_numbers_files_per_compiled_function(dump_dir):
    graph = graph_source(lambda x: [ir_ops.exp(x)], (3,)).parse((), {})[0]
    ir_dump.configure(("parse", "simplify"), str(dump_dir))
    ir_dump.dump_graph("f", "parse", graph, dot=True)
    ir_dump.dump_graph("f", "simplify", graph)
    ir_dump.dump_text("f", "loops", "not dumped", "loops")
    ir_dump.dump_graph("g", "parse", graph, dot=True)
    ir_dump.dump_graph("f", "parse", graph)                    # f compiled again
    names = sorted(p.name for p in dump_dir.iterdir())
    numbers = {n: int(n[:2]) for n in names}
    pattern = re.compile(r"^\d\d_[fg]_(parse|simplify)\.(mlir|dot)$")
    assert all(pattern.match(n) for n in names) and len(names) == 6, names
    first = [n for n in names if n[3:].startswith("f_")]
    assert len({numbers[n] for n in first}) == 2
    first_graph = min(n for n in names if n.endswith("_f_parse.mlir"))
    assert (dump_dir / first_graph).read_text() == print_graph(graph)
    dot = next(dump_dir.glob("*_g_parse.dot")).read_text()
    assert dot.startswith('digraph "f"') and "in0 -> op0;" in dot and dot.endswith("}\n")


def test_dump_config_from_environment(monkeypatch):
    monkeypatch.setenv("GRAPHSPORE_DUMP", "all")
    monkeypatch.delenv("GRAPHSPORE_DUMP_DIR", raising=False)
    config = ir_dump.config()
    assert ir_dump.wants("fuse") and config.directory == "graphspore_dump"
    monkeypatch.setenv("GRAPHSPORE_DUMP", "llvm, asm")
    assert ir_dump.wants("asm") and ir_dump.wants("llvm") and not ir_dump.wants("parse")
