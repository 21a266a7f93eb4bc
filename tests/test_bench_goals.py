"""The issue-18 bench section builds its table and its PyTorch twin (no timing here:
the ratios are measurements of a machine, never asserted in a test)."""

import numpy as np
import pytest

from cnnbook.bench import goals

torch = pytest.importorskip("torch")


def test_goal_table_judges_one_thread_rows_only():
    rows = [
        ("conv A fwd+bwd", 1, 1e-3, 4e-3),
        ("conv B fwd+bwd", 1, 3e-3, 2e-3),
        ("conv A fwd+bwd", 2, 9e-3, 1e-3),
    ]
    table = goals.table(rows)
    assert [r[-1] for r in table.rows] == ["yes", "no", "-"]
    assert table.rows[0][4] == pytest.approx(0.25)
    assert all(len(line) <= 88 for line in table.format().splitlines()[4:])


def test_conv_pairs_run_and_torch_twin_equals_the_model():
    from cnnbook.bench.training import torch_twin
    from cnnbook.models import seed_cnn

    for need_dx in (True, False):
        for fn in goals.conv_pair("A", need_dx=need_dx):
            fn()
    model = seed_cnn(rng=0, filters=4, kernel_size=5, padding=2)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        theirs = torch_twin(model)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.forward(x), theirs, rtol=1e-4, atol=1e-4)


def test_other_path_rows_are_reported_not_judged_and_parts_run():
    """The path auto did not take is the other compiled one, reported without a
    goal; every part of the split table runs."""
    pytest.importorskip("numba")
    from cnnbook import functional

    for shape in ("A", "B"):
        x, w, b = goals._xwb(shape)
        auto = functional.conv_path(x, w, b)
        assert {auto, goals.other_path(shape)} == {"numba", "implicit"}
    rows = [("conv B fwd+bwd, numba", 1, 1e-3, 2e-3)]
    assert goals.table(rows).rows[0][-1] == "-"
    fns = goals.conv_parts("A")
    assert {side for _, side in fns} == {"auto", "other", "torch"}
    for fn in fns.values():
        fn()
    split = goals.split_table([("B", 1, "dx", 2e-3, 1e-3, 4e-3)])
    assert split.rows[0][-2:] == [0.5, 0.25]
    assert all(len(line) <= 88 for line in split.format().splitlines())
