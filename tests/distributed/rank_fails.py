"""Run under `mpirun -n 2`: rank 1 raises after one reduction while rank 0 waits in the
next one; init()'s excepthook must abort the whole job (non-zero exit), never hang."""
import numpy as np

from graphspore import Tensor, ops
from graphspore.communication import get_rank, init

init()
x = Tensor(np.ones(4, np.float32))
ops.AllReduce()(x)
if get_rank() == 1:
    raise RuntimeError("rank 1 fails on purpose")
ops.AllReduce()(x)          # rank 0 waits here for a partner that is gone
print("rank 0 was not aborted", flush=True)
