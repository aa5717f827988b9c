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
