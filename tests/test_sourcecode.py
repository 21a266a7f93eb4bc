"""cnnbook.show: the package's own source, headed by where it comes from."""

import inspect
import re

import pytest

from cnnbook import fft, show, signal
from cnnbook.sourcecode import Source, diff, excerpt


def test_show_prints_the_source_under_its_origin():
    text = repr(show(signal.conv1d))
    header, code = text.split("\n", 1)
    assert header.startswith("# cnnbook/signal.py, lines ")
    assert code == inspect.getsource(signal.conv1d).rstrip("\n")


def test_a_long_header_gets_one_line_per_origin_within_the_column():
    source = show(signal.conv1d, fft.fft_conv1d, fft.frequency_response)
    header = repr(source).splitlines()[:3]
    assert [line.split(",")[0] for line in header] == [
        "# cnnbook/signal.py",
        "# cnnbook/fft.py",
        "# cnnbook/fft.py",
    ]
    assert all(len(line) <= 88 for line in header)
    markdown_header = source._repr_markdown_().split("\n\n", 1)[0].splitlines()
    assert len(markdown_header) == 3 and all(
        len(line) <= 88 for line in markdown_header
    )


# show(..., docstrings=False), excerpt and diff. The functions under test are defined
# here, so the tests do not depend on how the package's own code reads today.


def _scaled(x, k=2):
    """Multiply x by k.

    A docstring over several lines, left out with docstrings=False.
    """
    y = x * k  # "a string" in a comment stays
    return y


def _shifted(x, k=2):
    """Add k to x."""
    y = x + k  # "a string" in a comment stays
    return y


# fmt: off
def _inline(x):
    """A docstring with code on its line."""; return x  # noqa: E702
# fmt: on


class _Counter:
    """A class whose docstring goes, with its method's."""

    def step(self):
        """Count one."""
        return 1


def _first_line(obj):
    return inspect.getsourcelines(obj)[1]


def test_show_without_docstrings_keeps_the_code_and_the_line_numbers():
    source = show(_scaled, docstrings=False)
    full = inspect.getsource(_scaled).rstrip("\n").split("\n")
    assert source.code.split("\n") == [full[0]] + full[5:]  # the 4 docstring lines
    assert '"""' not in source.code and "Multiply" not in source.code
    assert '"a string"' in source.code  # not a docstring
    first = _first_line(_scaled)
    assert source.origin == f"tests/test_sourcecode.py, lines {first}–{first + 6}"
    assert repr(source).split("\n")[0] == f"# {source.origin}"


def test_show_with_docstrings_is_the_full_source():
    assert show(_scaled, docstrings=True).code == show(_scaled).code
    assert show(_scaled).code == inspect.getsource(_scaled).rstrip("\n")


def test_show_without_docstrings_of_several_functions_and_of_a_class():
    source = show(_scaled, _shifted, docstrings=False)
    a, b = source.code.split("\n\n\n")
    assert a == show(_scaled, docstrings=False).code
    assert b.split("\n") == [
        "def _shifted(x, k=2):",
        '    y = x + k  # "a string" in a comment stays',
        "    return y",
    ]
    first = _first_line(_shifted)
    assert source.origin.endswith(
        f"; tests/test_sourcecode.py, lines {first}–{first + 3}"
    )
    counter = show(_Counter, docstrings=False).code
    assert '"""' not in counter and "def step(self):" in counter
    assert "return 1" in counter


def test_a_docstring_sharing_its_line_with_code_stays():
    assert show(_inline, docstrings=False).code == show(_inline).code


def test_excerpt_starts_at_the_line_and_is_dedented():
    source = excerpt(_scaled, "return")
    line = _first_line(_scaled) + 6
    assert source.code == "return y"
    assert source.origin == f"tests/test_sourcecode.py, lines {line}–{line} (_scaled)"
    two = excerpt(_scaled, "y = x")
    assert two.code.split("\n") == [
        'y = x * k  # "a string" in a comment stays',
        "return y",
    ]
    assert two.origin.endswith(f"lines {line - 1}–{line} (_scaled)")


def test_excerpt_needs_a_line_that_starts_with_first():
    # "x * k" is inside a line, "Multiply" only in the docstring (left out)
    for missing in ("x * k", "Multiply", "while"):
        with pytest.raises(
            ValueError, match=rf"_scaled .*starts with '{re.escape(missing)}'"
        ):
            excerpt(_scaled, missing)
    with pytest.raises(TypeError, match="first"):
        excerpt(_scaled, "")


def test_diff_marks_the_changed_lines():
    source = diff(_scaled, _shifted)
    assert isinstance(source, Source)
    first = _first_line(_shifted)
    assert source.code.split("\n") == [
        f"@@ line {first} @@",
        "-def _scaled(x, k=2):",
        '-    y = x * k  # "a string" in a comment stays',
        "+def _shifted(x, k=2):",
        '+    y = x + k  # "a string" in a comment stays',
        "     return y",
    ]
    assert source.origin == "tests/test_sourcecode.py: _shifted, changes to _scaled"


def test_diff_renders_as_a_diff_block_and_show_as_python():
    markdown = diff(_scaled, _shifted)._repr_markdown_()
    header, block = markdown.split("\n\n", 1)
    assert header == "*tests/test_sourcecode.py: _shifted, changes to _scaled*"
    assert block.startswith("```diff\n@@ line ") and block.endswith("\n```\n")
    assert show(_scaled)._repr_markdown_().split("\n\n", 1)[1].startswith("```python\n")
    text = repr(diff(_scaled, _shifted)).split("\n")
    assert text[0] == "# tests/test_sourcecode.py: _shifted, changes to _scaled"
    assert text[1].startswith("@@ line ")


def test_diff_of_the_same_code_is_an_error():
    with pytest.raises(ValueError, match="_scaled and _scaled have the same source"):
        diff(_scaled, _scaled)


@pytest.mark.parametrize("call", [show, excerpt, diff])
def test_objects_without_source_are_refused(call):
    args = {show: (42,), excerpt: (len, "x"), diff: (_scaled, len)}[call]
    with pytest.raises(TypeError, match="cannot show the source of"):
        call(*args)
    with pytest.raises(TypeError, match="at least one"):
        show(docstrings=False)
