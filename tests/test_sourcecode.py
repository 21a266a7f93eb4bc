"""cnnbook.show: the package's own source, headed by where it comes from."""

import inspect

from cnnbook import fft, show, signal


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
