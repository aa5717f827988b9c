"""frontend.source finds a function's AST from its own lines: for every shape of def below
(decorators over several lines, a signature closed at the def's indentation, bodies without
bytecode at their end, methods, nested defs, one-liners) the node, positions included, is the
one a parse of the whole file gives; a def whose lines do not parse alone falls back to it."""
import ast
import importlib.util
import textwrap

from graphspore.frontend import source

MODULE = textwrap.dedent('''
    import functools


    def plain(x):
        return x + 1


    @functools.lru_cache(
        maxsize=None,
    )
    def decorated(x):
        return x * 2


    def signature_over_lines(
        a,
        b=3,
    ) -> int:
        """Docstring."""
        return a - b
    # a comment at the def's indentation, after the body


    def ends_without_bytecode(x):
        if x:
            return 1
        else:
            pass
        # deeper comment

        """a trailing string statement
    compiles to nothing, and its continuation is shallower than the body"""


    def docstring_only():
        """Nothing but
            a docstring."""


    class Holder:
        @staticmethod
        def method(x):
            def nested(y):
                return y * y
            return nested(x)

        def one_liner(self): return 7


    def tail_string(x):
        y = x
        """trailing
    string"""


    def dead_tail(x):
        return x
        z = (x,
    x)
''')


def _load(tmp_path):
    path = tmp_path / "shapes_of_defs.py"
    path.write_text(MODULE)
    spec = importlib.util.spec_from_file_location("shapes_of_defs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, ast.parse(MODULE)


def _whole_file_node(tree, fn):
    code = fn.__code__
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == code.co_name and \
                min([node.lineno] + [d.lineno for d in node.decorator_list]) == \
                code.co_firstlineno:
            return node
    raise AssertionError(f"{code.co_name} not in the file")


def test_each_def_is_the_whole_file_parse_of_it(tmp_path):
    module, tree = _load(tmp_path)
    nested = module.Holder.method.__code__.co_consts
    inner = next(c for c in nested if getattr(c, "co_name", "") == "nested")
    functions = [module.plain, module.decorated.__wrapped__, module.signature_over_lines,
                 module.ends_without_bytecode, module.docstring_only, module.Holder.method,
                 module.Holder.one_liner, module.tail_string, module.dead_tail]
    for fn in functions:
        got = source.function_source(fn).node
        assert ast.dump(got, include_attributes=True) == \
            ast.dump(_whole_file_node(tree, fn), include_attributes=True), fn.__name__
    [node] = source._def_from_its_lines(inner)
    assert (node.name, node.lineno, node.col_offset) == ("nested", inner.co_firstlineno, 8)


def test_lines_that_do_not_parse_alone_fall_back_to_the_file(tmp_path):
    module, tree = _load(tmp_path)
    # Unreachable code has no bytecode: the cut after `return x` leaves `(x,` open.
    assert source._def_from_its_lines(module.dead_tail.__code__) == []
    assert source._def_from_its_lines(module.ends_without_bytecode.__code__) != []
    got = source.function_source(module.dead_tail).node
    assert ast.dump(got, include_attributes=True) == \
        ast.dump(_whole_file_node(tree, module.dead_tail), include_attributes=True)
