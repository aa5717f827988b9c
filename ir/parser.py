"""Read the printed `gs` dialect back into a `Graph`: `parse_graph(text)` inverts `print_graph`.

Every graph the printer emits parses back to an equal graph (same ops, attributes, types,
locations, value names, weight bindings and updates), so a dumped stage can be edited and fed
to `graphspore opt FILE.mlir -p simplify,fuse`, and pass tests can be `.mlir` files.

The grammar is MLIR's generic op form, the subset the printer writes:

    func     := `func.func` @name `(` arg (`,` arg)* `)` `->` `(` types `)` `{` op* ret `}` loc
    arg      := %name `:` type (`{gs.param = "weight name"}`)?
    op       := (results `=`)? "name" `(` operands `)` regions? attrs? `:` `(` types `)` `->`
                (type | `(` types `)`) loc?
    results  := %name (`:` count)?            -- `%r:2` names a two-result op
    regions  := `(` region (`,` region)* `)`   -- region := `{` (^bb `(` args `)` `:`)? op* `}`
    ret      := `return` (%v (`,` %v)* `:` types)?
    attrs    := `{` name `=` attr (`,` name `=` attr)* `}`
    attr     := true | false | unit | N `:` i64 | F `:` f64 | dtype | tensor type | "string"
                | array<i64: N, ...> | dense<...> `:` tensor type | `[` attr, ... `]`
    loc      := loc("file":line:col) | loc(unknown)

It is a tokenizer (one regular expression) and a recursive-descent parser with one method per
rule. Ops are rebuilt through the `Builder`, so each op's type rule checks the text: a result
type that disagrees with it, an unknown op or an undefined value raises `ParseError` (a
`ValueError`) naming `file:line:col`. A region is parsed into a closed `Graph` (its `^bb0`
arguments are its inputs, its `gs.yield` operands its outputs), and a region op is rebuilt
with `Builder.add_region_op`; the results of a multi-result op `%r:2` are used as `%r#0`,
`%r#1`. `_make_op` is the one place that builds an op from the parsed parts.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import numpy as np

from .core import Builder, Graph, GraphsporeError, Loc, Value
from .types import DType, TensorType

_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<tensor>tensor<(?:\d+x)*\w+>)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<value>%[A-Za-z0-9$._-]+(?:\#\d+)?)
  | (?P<symbol>@(?:[A-Za-z_][\w$.]*|"(?:[^"\\]|\\.)*"))
  | (?P<block>\^[\w$.-]+)
  | (?P<number>-?0x[0-9A-Fa-f]+|-?\d+\.\d*(?:[eE][+-]?\d+)?|-?\d+)
  | (?P<arrow>->)
  | (?P<word>[A-Za-z_][\w$.]*)
  | (?P<punct>[(){}\[\]<>,:=])
""", re.VERBOSE)
_DTYPES = {d.mlir: d for d in DType}


class ParseError(GraphsporeError, ValueError):
    """Text that is not a graph in the printed `gs` dialect; the location is in the text."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class ParsedParameter:
    """The binding of a weight input read from text: only the Parameter's name is known."""

    name: str


def tokenize(text: str, filename: str = "<text>") -> list[Token]:
    """The tokens of `text`, with their 1-based line and 0-based column."""
    tokens, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ParseError(f"unexpected character {text[pos]!r}",
                             Loc(filename, line, pos - line_start))
        kind = match.lastgroup
        if kind != "space":
            tokens.append(Token(kind, match.group(), line, pos - line_start))
        newlines = match.group().count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + match.group().rindex("\n") + 1
        pos = match.end()
    tokens.append(Token("end", "", line, pos - line_start))
    return tokens


def parse_graph(text: str, filename: str = "<text>") -> Graph:
    """The graph of the one `func.func` in `text` (what `print_graph` wrote)."""
    return _Parser(tokenize(text, filename), filename).function()


def parse_attributes(text: str, filename: str = "<text>") -> dict:
    """An attribute dictionary `{name = value, ...}` (what `printer.print_attrs` wrote)."""
    parser = _Parser(tokenize(text, filename), filename)
    attrs = parser.attributes()
    parser.expect_kind("end", "the end of the text")
    return attrs


def parse_file(path) -> Graph:
    """`parse_graph` of a file's text; errors name the file."""
    with open(path) as handle:
        return parse_graph(handle.read(), str(path))


class _Parser:
    """Recursive descent over the tokens; `scopes` maps SSA names to values, one dict per
    region being parsed (an inner region sees the names of the regions around it)."""

    def __init__(self, tokens: list[Token], filename: str):
        self.tokens, self.pos, self.filename = tokens, 0, filename
        self.scopes: list[dict[str, Value]] = [{}]

    # -------------------------------------------------------------------- token helpers
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.pos += 1
        return token

    def at(self, text: str) -> bool:
        return self.peek().text == text and self.peek().kind != "string"

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        if not self.at(text):
            self.fail(f"expected '{text}'")
        return self.next()

    def expect_kind(self, kind: str, what: str) -> Token:
        if self.peek().kind != kind:
            self.fail(f"expected {what}")
        return self.next()

    def fail(self, message: str, token: Token | None = None):
        """Raise ParseError at `token`, or at the next token, saying what was found there."""
        if token is None:
            token = self.peek()
            message += ", found " + (repr(token.text) if token.kind != "end"
                                     else "the end of the text")
        raise ParseError(message, Loc(self.filename, token.line, token.col))

    def comma_list(self, item, close: str) -> list:
        """`item (, item)*` up to (not including) `close`; empty if `close` comes first."""
        items = []
        if not self.at(close):
            items.append(item())
            while self.accept(","):
                items.append(item())
        return items

    # -------------------------------------------------------------------------- values
    def define(self, token: Token, value: Value, suffix: str = "", hint: bool = True) -> Value:
        """Bind `%name` (`%name#k` with `suffix`) to `value`; the name becomes its hint."""
        name = token.text[1:]
        if "#" in name:
            self.fail("a result number (#k) is only allowed where a value is used", token)
        if name + suffix in self.scopes[-1]:
            self.fail(f"%{name}{suffix} is defined twice", token)
        self.scopes[-1][name + suffix] = value
        if hint:
            value.name = None if name.isdigit() else name
        return value

    def use(self) -> Value:
        token = self.expect_kind("value", "an SSA value (%name)")
        for scope in reversed(self.scopes):
            if token.text[1:] in scope:
                return scope[token.text[1:]]
        self.fail(f"{token.text} is not defined", token)

    # ------------------------------------------------------------------------ function
    def function(self) -> Graph:
        self.expect("func.func")
        graph = Graph(self.symbol())
        builder = Builder(graph)
        self.expect("(")
        self.comma_list(lambda: self.argument(builder), ")")
        self.expect(")")
        self.expect("->")
        self.expect("(")
        result_types = self.comma_list(self.type, ")")
        self.expect(")")
        self.expect("{")
        while not self.at("return"):
            self.operation(builder)
        self.next()
        if self.peek().kind == "value":
            graph.outputs = self.comma_list(self.use, ":")
            self.expect(":")
            types = self.comma_list(self.type, "}")
            if types != [v.type for v in graph.outputs] or types != result_types:
                self.fail("return types do not match the values and the function type")
        elif result_types:
            self.fail("expected the returned values")
        self.expect("}")
        graph.loc = self.location()
        self.expect_kind("end", "the end of the text")
        return graph

    def symbol(self) -> str:
        token = self.expect_kind("symbol", "a function name (@name)")
        return _unquote(token.text[2:-1]) if token.text.startswith('@"') else token.text[1:]

    def argument(self, builder: Builder) -> Value:
        token = self.expect_kind("value", "an argument (%name: type)")
        self.expect(":")
        value = builder.input(self.type())
        if self.accept("{"):
            self.expect("gs.param")
            self.expect("=")
            builder.graph.bindings[value] = ParsedParameter(self.string())
            self.expect("}")
        return self.define(token, value)

    # ---------------------------------------------------------------------- operations
    def operation(self, builder: Builder) -> list[Value]:
        """One op line; returns its results (none for `gs.assign`)."""
        results = []
        while self.peek().kind == "value":
            token = self.next()
            count = int(self.expect_kind("number", "a result count").text) \
                if self.accept(":") else 1
            results.append((token, count))
            if not self.accept(","):
                break
        if results:
            self.expect("=")
        name_token = self.expect_kind("string", 'an op name ("gs.name")')
        name = _unquote(name_token.text[1:-1])
        self.expect("(")
        operands = self.comma_list(self.use, ")")
        self.expect(")")
        regions = self.regions()
        attrs = self.attributes() if self.at("{") else {}
        self.expect(":")
        self.expect("(")
        operand_types = self.comma_list(self.type, ")")
        self.expect(")")
        self.expect("->")
        if self.accept("("):
            result_types = self.comma_list(self.type, ")")
            self.expect(")")
        else:
            result_types = [self.type()]
        loc = self.location() if self.at("loc") else None
        if operand_types != [v.type for v in operands]:
            self.fail(f"operand types of {name} do not match its operands", name_token)
        return self._make_op(builder, name_token, name, operands, regions, attrs,
                             result_types, results, loc)

    def _make_op(self, builder, token, name, operands, regions, attrs, result_types,
                 results, loc) -> list[Value]:
        if name == "gs.assign" and not results and not result_types and len(operands) == 2:
            builder.graph.updates.append((operands[0], operands[1]))
            return []
        if name == "gs.yield" and not results and not result_types:
            builder.graph.outputs = list(operands)      # a region's terminator
            return []
        count = sum(n for _, n in results)
        if len(results) > 1 or count != len(result_types) or (not regions and count != 1):
            self.fail(f"{name}: the text names {count} result(s) for {len(result_types)} "
                      f"type(s)", token)
        builder.loc = loc
        try:
            if regions:
                values = builder.add_region_op(name, operands, regions, attrs)
            else:
                values = (builder.add_op(name, operands, attrs),)
        except GraphsporeError as error:
            raise ParseError(error.message, Loc(self.filename, token.line, token.col)) from None
        if [v.type for v in values] != result_types:
            found = ", ".join(str(v.type) for v in values)
            said = ", ".join(map(str, result_types))
            self.fail(f"{name} gives {found}, but the text says {said}", token)
        head = results[0][0]
        if len(values) == 1:
            return [self.define(head, values[0])]
        self.define(head, values[0], suffix="#0")
        for k, value in enumerate(values[1:], 1):
            self.define(head, value, suffix=f"#{k}", hint=False)
        return list(values)

    def regions(self) -> list:
        """`({...}, {...})` after the operands: each region's block arguments and ops, parsed
        into a graph of their own (its inputs are the block arguments)."""
        if not (self.at("(") and self.peek(1).text == "{"):
            return []
        self.expect("(")
        regions = self.comma_list(self.region, ")")
        self.expect(")")
        return regions

    def region(self) -> Graph:
        self.expect("{")
        body = Graph("region")
        builder = Builder(body)
        self.scopes.append({})
        if self.peek().kind == "block":
            self.next()
            if self.accept("("):
                self.comma_list(lambda: self.argument(builder), ")")
                self.expect(")")
            self.expect(":")
        while not self.at("}"):
            self.operation(builder)
        self.next()
        self.scopes.pop()
        return body

    # --------------------------------------------------------------------------- types
    def type(self) -> TensorType:
        token = self.expect_kind("tensor", "a tensor type (tensor<...>)")
        *dims, dtype = token.text[len("tensor<"):-1].split("x")
        if dtype not in _DTYPES:
            self.fail(f"unknown element type {dtype!r}", token)
        return TensorType(tuple(int(d) for d in dims), _DTYPES[dtype])

    # ---------------------------------------------------------------------- attributes
    def attributes(self) -> dict:
        self.expect("{")
        attrs = {}
        for key, value in self.comma_list(self.attribute, "}"):
            attrs[key] = value
        self.expect("}")
        return attrs

    def attribute(self) -> tuple:
        token = self.next()
        if token.kind not in ("word", "string"):
            self.fail("expected an attribute name", token)
        key = _unquote(token.text[1:-1]) if token.kind == "string" else token.text
        self.expect("=")
        return key, self.attr_value()

    def attr_value(self):
        token = self.peek()
        if token.kind == "tensor":
            return self.type()
        if token.kind == "string":
            return self.string()
        if token.kind == "number":
            self.next()
            self.expect(":")
            kind = self.expect_kind("word", "i64 or f64").text
            if kind == "i64":
                return int(token.text)
            return _float(token.text, DType.f64)
        if self.accept("["):
            items = self.comma_list(self.attr_value, "]")
            self.expect("]")
            return tuple(items)
        word = self.expect_kind("word", "an attribute value").text
        if word in ("true", "false"):
            return word == "true"
        if word == "unit":
            return None
        if word in _DTYPES:
            return _DTYPES[word]
        if word == "array":
            return self.int_array()
        if word == "dense":
            return self.dense()
        self.fail("expected an attribute value", token)

    def int_array(self) -> tuple:
        self.expect("<")
        self.expect("i64")
        values = []
        if self.accept(":"):
            values = [int(t.text) for t in self.comma_list(
                lambda: self.expect_kind("number", "an integer"), ">")]
        self.expect(">")
        return tuple(values)

    def dense(self) -> np.ndarray:
        self.expect("<")
        start = self.peek()
        nested = [] if self.at(">") else self.dense_elements()
        self.expect(">")
        self.expect(":")
        ttype = self.type()
        dtype = ttype.dtype
        flat = np.array([_element(t, dtype, self) for t in _flatten(nested)], dtype=dtype.np)
        if flat.size == 1 and ttype.size != 1 and not isinstance(nested, list):
            return np.full(ttype.shape, flat[0], dtype=dtype.np)        # the splat form
        if flat.size != ttype.size:
            self.fail(f"dense literal has {flat.size} elements, its type {ttype} needs "
                      f"{ttype.size}", start)
        return flat.reshape(ttype.shape)

    def dense_elements(self):
        """A number/bool token, or a nested list of them."""
        if self.accept("["):
            items = self.comma_list(self.dense_elements, "]")
            self.expect("]")
            return items
        token = self.next()
        if token.kind != "number" and token.text not in ("true", "false"):
            self.fail("expected a dense element", token)
        return token

    def string(self) -> str:
        return _unquote(self.expect_kind("string", "a string").text[1:-1])

    def location(self) -> Loc | None:
        self.expect("loc")
        self.expect("(")
        if self.accept("unknown"):
            self.expect(")")
            return None
        file = self.string()
        self.expect(":")
        line = int(self.expect_kind("number", "a line number").text)
        self.expect(":")
        col = int(self.expect_kind("number", "a column number").text)
        self.expect(")")
        return Loc(file, line, col - 1)


def _flatten(nested):
    if isinstance(nested, list):
        for item in nested:
            yield from _flatten(item)
    else:
        yield nested


def _element(token: Token, dtype: DType, parser: _Parser):
    if token.text in ("true", "false"):
        return token.text == "true"
    if dtype.is_float:
        return _float(token.text, dtype)
    if not re.fullmatch(r"-?\d+", token.text):
        parser.fail(f"expected an integer element of {dtype.mlir}", token)
    return int(token.text)


def _float(text: str, dtype: DType):
    """A float literal, or MLIR's hexadecimal bit form, in `dtype`'s precision."""
    if text.lstrip("-").startswith("0x"):
        bits = int(text, 16)
        if dtype in (DType.f16, DType.bf16):
            return np.array(bits, np.uint16).view(dtype.np)[()]
        if dtype is DType.f32:
            return np.frombuffer(struct.pack("<I", bits), np.float32)[0]
        return struct.unpack("<d", struct.pack("<Q", bits))[0]
    return np.float32(text) if dtype is DType.f32 else float(text)


def _unquote(body: str) -> str:
    """An MLIR string literal's body: `\\"`, `\\\\` and `\\XX` hex escapes decoded."""
    out, k = bytearray(), 0
    while k < len(body):
        ch = body[k]
        if ch == "\\" and k + 1 < len(body) and body[k + 1] in '"\\':
            out += body[k + 1].encode()
            k += 2
        elif ch == "\\" and re.fullmatch(r"[0-9A-Fa-f]{2}", body[k + 1:k + 3]):
            out.append(int(body[k + 1:k + 3], 16))
            k += 3
        else:
            out += ch.encode("utf-8")
            k += 1
    return out.decode("utf-8", errors="replace")


__all__ = ["ParseError", "ParsedParameter", "parse_attributes", "parse_file", "parse_graph",
           "tokenize"]
