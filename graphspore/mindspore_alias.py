"""The `mindspore` name: an import hook that resolves `mindspore` and `mindspore.*` to graphspore.

`alias_mindspore()` puts a meta-path finder in front of `sys.meta_path`; `import mindspore.nn`
then binds the very module object `graphspore.nn` (no copy, so `mindspore.nn.Cell is
graphspore.nn.Cell`). MindSpore module paths that graphspore spells differently are listed in
`MODULE_PATHS` (each with candidates, the first importable one wins); every other
`mindspore.X.Y` is `graphspore.X.Y`. A real MindSpore install is never shadowed unless
`shadow=True` is asked for (`graphspore run --shadow-mindspore`).

Importing `mindspore.A.B` sets attribute `B` of the module `mindspore.A` resolves to; the
table never maps a child onto a name its graphspore parent already uses for something else.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings

ALIAS = "mindspore"

# mindspore module path -> graphspore module paths to try, in order
MODULE_PATHS: dict[str, tuple[str, ...]] = {
    "mindspore": ("graphspore",),
    "mindspore.common": ("graphspore.common",),
    "mindspore.common.dtype": ("graphspore.dtype",),
    "mindspore.common.tensor": ("graphspore.tensor_type",),
    "mindspore.common.parameter": ("graphspore.tensor_type",),
    "mindspore.common.initializer": ("graphspore.nn.init",),
    "mindspore.common.api": ("graphspore.api",),
    "mindspore.common.seed": ("graphspore.random",),
    "mindspore.ops.operations": ("graphspore.ops.operations", "graphspore.ops"),
    "mindspore.ops.composite": ("graphspore.ops.composite", "graphspore.ops"),
    "mindspore.ops.functional": ("graphspore.ops.functional", "graphspore.ops"),
    "mindspore.ops.function": ("graphspore.ops.function", "graphspore.ops"),
    "mindspore.nn.optim": ("graphspore.nn.optim",),
    "mindspore.nn.loss": ("graphspore.nn.loss",),
    "mindspore.nn.layer": ("graphspore.nn",),
    "mindspore.train.serialization": ("graphspore.train.serialization",),
    "mindspore.dataset.vision.transforms": ("graphspore.dataset.vision",),
    "mindspore.dataset.vision.c_transforms": ("graphspore.dataset.vision",),
    "mindspore.dataset.vision.py_transforms": ("graphspore.dataset.vision",),
    "mindspore.dataset.transforms.transforms": ("graphspore.dataset.transforms",),
    "mindspore.dataset.transforms.c_transforms": ("graphspore.dataset.transforms",),
    "mindspore.dataset.transforms.py_transforms": ("graphspore.dataset.transforms",),
    "mindspore.dataset.engine": ("graphspore.dataset.engine",),
}


def graphspore_name(fullname: str) -> tuple[str, ...]:
    """The graphspore module paths `fullname` (a `mindspore...` path) may resolve to."""
    if fullname in MODULE_PATHS:
        return MODULE_PATHS[fullname]
    return ("graphspore" + fullname[len(ALIAS):],)


def _importable(name: str) -> bool:
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):        # a parent that is not a package
        return False


class _AliasLoader(importlib.abc.Loader):
    """Hands back the graphspore module itself; importlib's bookkeeping overwrites the module's
    `__spec__` with the alias spec, so `exec_module` puts the original back."""

    def __init__(self, target: str):
        self.target = target
        self._spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        _bind_children(spec.name, module)
        return module

    def exec_module(self, module):
        module.__spec__ = self._spec


def _bind_children(fullname: str, module) -> None:
    """MindSpore packages that are single graphspore modules (`mindspore.ops` is
    graphspore/ops.py, `mindspore.ops.operations` the same module): give the module the
    child attributes and an empty `__path__`, so `from mindspore.ops import operations` and
    `import mindspore.ops.operations` work as with MindSpore's packages."""
    prefix = fullname + "."
    children = {name[len(prefix):] for name in MODULE_PATHS
                if name.startswith(prefix) and "." not in name[len(prefix):]}
    if not children:
        return
    if not hasattr(module, "__path__"):
        module.__path__ = []
    for child in children:
        if not hasattr(module, child):
            for candidate in graphspore_name(prefix + child):
                if _importable(candidate):
                    setattr(module, child, importlib.import_module(candidate))
                    break


class MindsporeFinder(importlib.abc.MetaPathFinder):
    """Finds `mindspore` and `mindspore.*` among graphspore's modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        for candidate in graphspore_name(fullname):
            if _importable(candidate):
                module = importlib.import_module(candidate)
                return importlib.util.spec_from_loader(
                    fullname, _AliasLoader(candidate),
                    is_package=hasattr(module, "__path__"))
        raise ModuleNotFoundError(
            f"No module named {fullname!r}: graphspore has no counterpart "
            f"({' or '.join(graphspore_name(fullname))})", name=fullname)


_FINDER = MindsporeFinder()


def real_mindspore_installed() -> bool:
    """Whether an actual MindSpore distribution is importable (graphspore's finder aside)."""
    module = sys.modules.get(ALIAS)
    if module is not None:
        return not module.__name__.startswith("graphspore")
    return importlib.machinery.PathFinder.find_spec(ALIAS) is not None


def alias_mindspore(shadow: bool = False) -> bool:
    """Make `import mindspore` (and every `mindspore.*`) import graphspore, in this process.

    When a real MindSpore is installed it keeps the name unless `shadow=True`; then a warning
    says so and False is returned. Returns True when `mindspore` now means graphspore."""
    if real_mindspore_installed():
        if not shadow:
            warnings.warn("a real MindSpore is installed: `import mindspore` keeps importing "
                          "it (alias_mindspore(shadow=True) or `graphspore run "
                          "--shadow-mindspore` makes it graphspore)", stacklevel=2)
            return False
        for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
            del sys.modules[name]
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return True


def unalias_mindspore() -> None:
    """Undo `alias_mindspore()`: remove the finder and the `mindspore*` entries it bound."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        if getattr(sys.modules[name], "__name__", "").startswith("graphspore"):
            del sys.modules[name]
