import time, hashlib, sys
from hypothesis import given, settings, HealthCheck, strategies as st
from tests import fuzz
K=int(sys.argv[1])
seen=set(); n=[0,0]
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(fuzz.recipes(max_steps=8), st.integers(0, 2 ** 16)), min_size=K, max_size=K))
def one(batch):
    n[1]+=1
    for r,_ in batch:
        n[0]+=1; seen.add(repr(r))
t=time.time(); one(); print(K, n, len(seen), len(seen)/n[0], time.time()-t)
