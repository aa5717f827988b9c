"""FileCheck-style assertions on printed IR (the CHECK directive only)."""


def check_lines(text, *patterns):
    """FileCheck's CHECK: each pattern occurs in a line after the previous pattern's line."""
    lines = text.splitlines()
    position = 0
    for pattern in patterns:
        for k in range(position, len(lines)):
            if pattern in lines[k]:
                position = k + 1
                break
        else:
            raise AssertionError(f"CHECK not found after line {position}: {pattern!r}\n{text}")


def check_directives(text, source):
    """Check `text` against the `// CHECK...:` comment lines of `source` (a test .mlir file):
    `CHECK:` patterns in order (as `check_lines`), `CHECK-NOT:` patterns on no line of the
    text (anywhere; FileCheck's looks between its neighbouring matches), `CHECK-COUNT-N:`
    patterns on exactly N lines (FileCheck's asks for N matches in a row)."""
    ordered, count = [], 0
    for line in source.splitlines():
        directive, sep, pattern = line.strip().partition(": ")
        if not sep or not directive.startswith("// CHECK"):
            continue
        kind = directive[len("// CHECK"):]
        if kind == "":
            ordered.append(pattern)
        elif kind == "-NOT":
            found = [k + 1 for k, out in enumerate(text.splitlines()) if pattern in out]
            assert not found, f"CHECK-NOT {pattern!r} found on line {found[0]}\n{text}"
        elif kind.startswith("-COUNT-"):
            want = int(kind[len("-COUNT-"):])
            got = sum(pattern in out for out in text.splitlines())
            assert got == want, f"CHECK-COUNT-{want} {pattern!r}: on {got} lines\n{text}"
        else:
            raise ValueError(f"unknown directive {directive!r}")
        count += 1
    assert count + len(ordered), "no CHECK directives"
    check_lines(text, *ordered)
