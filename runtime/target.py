"""The host target: one LLVM TargetMachine for this process, plus the function attributes
every kernel gets.

Why a single cached object: creating a TargetMachine costs a few milliseconds and llvmlite needs
the native target and asm printer registered exactly once (``llvm.initialize()`` is deprecated in
llvmlite 0.50 and raises, so it is never called).

Function attributes. For this CPU class LLVM prefers 256-bit vectors even when AVX-512 exists;
``"prefer-vector-width"="512"`` on a function makes the vectoriser use zmm registers.
``llvmlite.ir`` cannot spell key=value string attributes, so codegen does nothing about them:
the runtime calls :func:`add_function_attributes` on every module's text before compiling, which
appends one ``attributes #N = { ... }`` group and references it from every ``define`` line.
"""

import os
import re
import threading

import llvmlite.binding as llvm

from .fork_guard import guard

_LOCK = guard(threading.Lock(), hold=False)  # a leaf lock, taken under LLVM_LOCK
_HOST = None


class HostTarget:
    """The process' host target machine and what it reports about the CPU."""

    __slots__ = ("_target", "target_machine", "triple", "data_layout", "cpu", "features",
                 "has_avx512", "has_avx2", "vector_width_bits")

    def __init__(self):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.triple = llvm.get_process_triple()
        self.cpu = llvm.get_host_cpu_name()
        try:
            self.features = llvm.get_host_cpu_features().flatten()
        except RuntimeError:  # some hosts cannot report features; LLVM then uses the cpu name
            self.features = ""
        self._target = llvm.Target.from_triple(self.triple)
        self.target_machine = self.create_target_machine()
        self.data_layout = str(self.target_machine.target_data)
        enabled = set(f[1:] for f in self.features.split(",") if f.startswith("+"))
        self.has_avx512 = "avx512f" in enabled
        self.has_avx2 = "avx2" in enabled
        if self.has_avx512:
            self.vector_width_bits = 512
        elif self.has_avx2:
            self.vector_width_bits = 256
        else:
            self.vector_width_bits = 128

    def create_target_machine(self):
        """A new host TargetMachine (opt=3, JIT code model), about 0.2 ms.

        Every MCJIT engine needs its own: llvmlite's ``create_mcjit_compiler`` transfers
        ownership of the TargetMachine to the engine, which destroys it when disposed. The
        shared ``target_machine`` attribute is for pass builders and assembly output only and
        must never be handed to an engine.
        """
        return self._target.create_target_machine(
            cpu=self.cpu, features=self.features, opt=3, jit=True)

    def __repr__(self):
        return (f"HostTarget(triple={self.triple!r}, cpu={self.cpu!r}, "
                f"vector_width_bits={self.vector_width_bits})")


def usable_cpus():
    """How many CPUs this process may run on: ``os.sched_getaffinity`` (which respects
    ``taskset``, cgroups' cpusets and containers), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def requested_threads(variable, default):
    """The thread count the environment variable `variable` asks for, at most the usable CPUs
    (a process pinned to one core must not run two threads on it); `default` when it is unset
    or not an integer."""
    requested = os.environ.get(variable)
    if requested:
        try:
            return max(1, min(int(requested), usable_cpus()))
        except ValueError:
            pass
    return default


def host():
    """Return the cached :class:`HostTarget`, creating it (and initialising LLVM) on first use."""
    global _HOST
    if _HOST is None:
        with _LOCK:
            if _HOST is None:
                _HOST = HostTarget()
    return _HOST


def function_attributes():
    """String attributes every kernel should carry, in LLVM text form.

    ``['"prefer-vector-width"="512"']`` on AVX-512 hosts, otherwise empty.
    """
    if host().has_avx512:
        return ['"prefer-vector-width"="512"']
    return []


# "{" ends the define line, or stands alone on the next line (llvmlite.ir's layout).
_DEFINE = re.compile(r"^(define\b[^\n]*?)([ \t]*\n?\{)[ \t]*$", re.MULTILINE)
_GROUP = re.compile(r"^attributes\s+#(\d+)\s*=", re.MULTILINE)


def add_function_attributes(ir_text, attributes=None):
    """Return ``ir_text`` with ``attributes`` (default :func:`function_attributes`) added to every
    function definition, as one new attribute group.

    Definitions whose line already mentions ``prefer-vector-width`` are left alone, and text
    that already holds the group is returned unchanged, so applying this twice is harmless.
    The group number is one above the largest in the text. A ``define`` may reference several
    groups (``#0 #1``); LLVM merges them.
    """
    attrs = function_attributes() if attributes is None else list(attributes)
    body = " ".join(attrs)
    if not attrs or f"= {{ {body} }}" in ir_text:  # empty, or already applied by us
        return ir_text
    numbers = [int(n) for n in _GROUP.findall(ir_text)]
    group = max(numbers) + 1 if numbers else 0
    used = []

    def tag(match):
        head = match.group(1)
        if "prefer-vector-width" in head:
            return match.group(0)
        used.append(True)
        return f"{head} #{group}{match.group(2)}"

    text = _DEFINE.sub(tag, ir_text)
    if not used:
        return ir_text
    return f"{text.rstrip()}\n\nattributes #{group} = {{ {body} }}\n"
