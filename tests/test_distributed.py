"""Data parallelism over MPI: the communication API and auto-parallel context in one process,
the native all-reduce's shim and module text, and jobs of 2 ranks launched with mpirun.

The multi-process tests run `mpirun -n 2 python tests/distributed/<script>.py` on loopback
(UCX_NET_DEVICES=lo) with a timeout, so a hang fails instead of stalling the suite. They are
skipped when mpi4py or mpirun is missing (`pip install 'graphspore[mpi]'`; `.ci/run` installs
it).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import llvmlite.binding as llvm
import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, codegen, communication, nn, ops
from graphspore.communication import collectives
from graphspore.ir import core, ops as ir_ops
from graphspore.ir.types import DType, TensorType
from graphspore.runtime import collective

HERE = os.path.dirname(os.path.abspath(__file__))


def _mpirun():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    beside = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return beside if os.path.exists(beside) else shutil.which("mpirun")


MPIRUN = _mpirun()
needs_mpi = pytest.mark.skipif(MPIRUN is None, reason="mpi4py/mpirun not installed: "
                               "pip install 'graphspore[mpi]'")


@pytest.fixture
def stand_alone():
    yield
    ms.reset_auto_parallel_context()


# ---------------------------------------------------------------- one process

def test_before_init_a_program_is_rank_0_of_1():
    assert communication.get_rank() == 0
    assert communication.get_group_size() == 1
    assert communication.get_local_rank() == 0
    with pytest.raises(ValueError, match="group 'other' does not exist"):
        communication.get_rank("other")
    with pytest.raises(ValueError, match="over MPI"):
        communication.init("nccl")


def test_init_without_mpi4py_is_one_process_unless_mpirun_started_us(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)          # import mpi4py fails
    monkeypatch.setattr(communication.management, "_state",
                        {"comm": None, "local": None, "MPI": None})
    communication.init()
    assert (communication.get_rank(), communication.get_group_size()) == (0, 1)
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(ImportError, match=r"pip install 'graphspore\[mpi\]'"):
        communication.init()


def test_auto_parallel_context_round_trips_and_rejects_unknowns(stand_alone):
    assert ms.get_auto_parallel_context("parallel_mode") == "stand_alone"
    assert ms.get_auto_parallel_context("gradients_mean") is False
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL,
                                 gradients_mean=True)
    assert ms.get_auto_parallel_context("parallel_mode") == "data_parallel"
    assert ms.get_auto_parallel_context("gradients_mean") is True
    with pytest.raises(ValueError, match="unknown option"):
        ms.set_auto_parallel_context(gradient_mean=True)
    with pytest.raises(ValueError, match="not available on the CPU"):
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.SEMI_AUTO_PARALLEL)
    ms.reset_auto_parallel_context()
    assert ms.get_auto_parallel_context("parallel_mode") == "stand_alone"


def test_reducer_in_one_process_is_the_identity_and_mean_divides_by_degree(stand_alone):
    grads = (Tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3)),
             Tensor(np.ones(4, np.float32)))
    same = nn.DistributedGradReducer([None, None])(grads)
    for g, e in zip(same, grads):
        np.testing.assert_array_equal(g.asnumpy(), e.asnumpy())
    halved = nn.DistributedGradReducer([None, None], mean=True, degree=2)(grads)
    for g, e in zip(halved, grads):         # one rank's sum, divided by a degree of 2
        np.testing.assert_allclose(g.asnumpy(), e.asnumpy() / 2)
    with pytest.raises(ValueError, match="degree"):
        nn.DistributedGradReducer([], degree=0)


def test_gradient_buckets_split_by_dtype_and_size():
    sizes = [(40, "f32"), (8, "f64"), (40, "f32"), (40, "f32"), (100, "f32")]
    assert collectives.buckets(sizes, limit=100) == [[0, 2], [3], [4], [1]]


def test_train_one_step_cell_inserts_the_reducer_in_data_parallel_mode(stand_alone):
    net = nn.Dense(3, 2)
    opt = nn.SGD(net.trainable_params(), 0.1)
    loss = nn.WithLossCell(net, nn.MSELoss())
    assert nn.TrainOneStepCell(loss, opt).grad_reducer is None
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL)
    cell = nn.TrainOneStepCell(loss, opt)
    assert isinstance(cell.grad_reducer, nn.DistributedGradReducer)


def _graph(fn, *types):
    graph = core.Graph("g")
    with core.building(core.Builder(graph)) as b:
        inputs = [b.input(t, f"x{i}") for i, t in enumerate(types)]
        graph.outputs = [fn(*inputs)]
    return graph


def test_step_modules_declare_the_collective_and_hold_no_mpi_constant():
    graph = _graph(lambda x: ir_ops.all_reduce(ir_ops.exp(x), op="sum"),
                   TensorType((300,), DType.f32))
    text = codegen.compile_graph(graph).llvm_ir
    assert 'declare i32 @"gs_allreduce_sum_f32"(ptr' in text
    assert "MPI" not in text and "mpi" not in text


@pytest.mark.parametrize("bits,comm", [(32, 0xFFFFFFFF84000002), (64, 0x557153D4C3E0)])
def test_the_shim_for_both_handle_kinds_verifies_in_llvm(bits, comm):
    handles = {"comm": comm, "in_place": -1 if bits == 32 else 1, "f32": 0x4C00040A,
               "f64": 0x4C00080B, "sum": 0x58000003, "max": 0x58000001, "min": 0x58000002,
               "prod": 0x58000004}
    text = collective.shim_ir(handles, bits, chunk=1000)
    module = llvm.parse_assembly(text)
    module.verify()
    names = {f.name for f in module.functions if not f.is_declaration}
    assert names == set(collective.SYMBOLS)
    if bits == 32:            # a sign-extended MPICH handle is emitted as its 32-bit value
        assert str(0x84000002 - (1 << 32)) in text


def test_checkpoint_is_written_by_rank_0(tmp_path):
    path = tmp_path / "w.ckpt"
    ms.save_checkpoint({"w": Tensor(np.ones(3, np.float32))}, str(path))
    assert path.exists()          # rank 0 of 1


# ---------------------------------------------------------------- two ranks

def _launch(script, *args, env_extra=None, timeout=180):
    env = dict(os.environ, UCX_NET_DEVICES="lo", GRAPHSPORE_NUM_THREADS="1")
    env.update(env_extra or {})
    return subprocess.run([MPIRUN, "-n", "2", sys.executable,
                           os.path.join(HERE, "distributed", script), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@needs_mpi
def test_native_all_reduce_on_two_ranks_in_chunks():
    done = _launch("allreduce_shim.py", env_extra={"GRAPHSPORE_ALLREDUCE_CHUNK": "1000"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(done.stdout.split()) == sorted("OK 0 OK 1".split())


@needs_mpi
def test_two_ranks_on_half_batches_equal_one_process_on_the_whole_batch():
    done = _launch("dp_equivalence.py", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    for rank in (0, 1):
        for name in ("jit", "pynative", "train_one_step_cell"):
            assert f"OK {rank} {name}" in done.stdout, done.stdout + done.stderr


@needs_mpi
def test_a_rank_that_raises_ends_the_job_instead_of_hanging():
    done = _launch("rank_fails.py", timeout=60)
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stderr + done.stdout
    assert "was not aborted" not in done.stdout
