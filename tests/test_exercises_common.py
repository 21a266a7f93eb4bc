"""What every checker owes the reader, whatever the chapter."""

import pytest

import cnnbook.exercises as exercises

CHECKERS = [
    getattr(exercises, name) for name in exercises.__all__ if name.startswith("check_")
]


def test_every_chapter_module_exports_its_checkers():
    assert len(CHECKERS) >= 20


@pytest.mark.parametrize("check", CHECKERS, ids=lambda c: c.__name__)
def test_stub_reports_not_implemented(check):
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = check(stub)
    assert not result
    assert "not implemented yet" in result.message


@pytest.mark.parametrize("check", CHECKERS, ids=lambda c: c.__name__)
def test_checker_refuses_something_that_is_not_a_function(check):
    with pytest.raises(TypeError, match="expects your function"):
        check(42)
