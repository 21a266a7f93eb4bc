"""The training loop learns, is reproducible, times its phases; weights save and load
exactly."""

import numpy as np
import pytest

from cnnbook import layers, models
from cnnbook.diagnostics import PhaseTimer
from cnnbook.optim import SGD, cosine_lr
from cnnbook.train import (
    evaluate,
    fit,
    load_weights,
    random_shift,
    save_weights,
    train_epoch,
)


@pytest.fixture(scope="module")
def tiny():
    """32 real 8×8 digits (or random images when scikit-learn is missing)."""
    try:
        from cnnbook.data import load_sklearn_digits

        X, y = load_sklearn_digits()
        return X[:32], y[:32]
    except ImportError:
        rng = np.random.default_rng(0)
        return rng.random((32, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, 32)


def small_cnn(seed=0, filters=4, dtype=np.float32):
    return models.seed_cnn(
        filters=filters, kernel_size=3, padding=1, input_size=8, rng=seed, dtype=dtype
    )


def test_overfits_a_tiny_batch(tiny):
    X, y = tiny
    model = small_cnn()
    before = evaluate(model, X, y)[1]
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(model, X, y, optimizer=opt, epochs=60, batch_size=8, X_val=X, y_val=y)
    loss, acc = evaluate(model, X, y)
    assert before < 0.5
    assert acc == 1.0
    assert loss < 0.05 < history.train_loss[0]
    assert history.val_acc[-1] == acc and np.isclose(history.val_loss[-1], loss)


def test_history_has_one_entry_per_epoch(tiny):
    X, y = tiny
    model = small_cnn()
    history = fit(
        model, X, y, optimizer=SGD(model.parameters(), lr=0.05), epochs=3, batch_size=10
    )
    for name in (
        "train_loss",
        "train_acc",
        "forward_time",
        "backward_time",
        "update_time",
        "epoch_time",
        "lr",
    ):
        assert len(getattr(history, name)) == 3, name
    assert history.val_loss == [] and history.val_acc == []
    assert all(t > 0 for t in history.forward_time + history.backward_time)
    assert all(
        f + b <= e
        for f, b, e in zip(
            history.forward_time, history.backward_time, history.epoch_time
        )
    )
    assert history.epochs == 3 and "3 epochs" in repr(history)


def test_reproducible_with_a_seed(tiny):
    X, y = tiny

    def run(seed):
        model = small_cnn(seed=1)
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
        h = fit(
            model,
            X,
            y,
            optimizer=opt,
            epochs=4,
            batch_size=8,
            seed=seed,
            augment=lambda xb, rng: random_shift(xb, 1, rng),
        )
        return h, model.state_dict()

    h1, s1 = run(3)
    h2, s2 = run(3)
    h3, s3 = run(4)
    assert h1.train_loss == h2.train_loss
    for key in s1:
        np.testing.assert_array_equal(s1[key], s2[key])
    assert h1.train_loss != h3.train_loss
    assert any(not np.array_equal(s1[k], s3[k]) for k in s1)


def test_schedule_sets_learning_rate(tiny):
    X, y = tiny
    model = small_cnn()
    opt = SGD(model.parameters(), lr=1.0)
    h = fit(
        model,
        X,
        y,
        optimizer=opt,
        epochs=4,
        batch_size=16,
        schedule=lambda e: cosine_lr(e, 4, 0.1),
    )
    np.testing.assert_allclose(h.lr, [cosine_lr(e, 4, 0.1) for e in range(4)])
    assert opt.lr == h.lr[-1]


def test_timer_hook_sees_every_phase(tiny):
    X, y = tiny
    model = small_cnn()
    timer = PhaseTimer()
    fit(
        model,
        X,
        y,
        optimizer=SGD(model.parameters(), lr=0.05),
        epochs=2,
        batch_size=8,
        X_val=X,
        y_val=y,
        augment=lambda xb, rng: random_shift(xb, 1, rng),
        timer=timer,
    )
    # One total per phase and epoch: fit closes every epoch with timer.end_epoch().
    for phase in ("augment", "forward", "backward", "update", "evaluate"):
        assert len(timer.history[phase]) == 2, phase
        assert all(t >= 0 for t in timer.history[phase])


def test_fit_stops_on_divergence(tiny):
    X, y = tiny
    model = small_cnn()
    model[0].params["weight"][0] = np.nan  # what a far too large step leaves behind
    with pytest.raises(FloatingPointError, match="epoch 0: .*too large"):
        fit(
            model,
            X,
            y,
            optimizer=SGD(model.parameters(), lr=0.1),
            epochs=1,
            batch_size=8,
        )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(epochs=-1), ValueError, "epochs"),
        (dict(epochs=1, batch_size=0), ValueError, "batch_size"),
        (
            dict(epochs=1, X_val=np.zeros((2, 1, 8, 8), np.float32)),
            ValueError,
            "X_val and y_val",
        ),
    ],
)
def test_fit_rejects_bad_arguments(tiny, kwargs, error, match):
    X, y = tiny
    model = small_cnn()
    with pytest.raises(error, match=match):
        fit(model, X, y, optimizer=SGD(model.parameters(), lr=0.1), **kwargs)


def test_fit_rejects_bad_labels(tiny):
    X, y = tiny
    model = small_cnn()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"labels must have shape \(32,\)"):
        fit(model, X, y[:-1], optimizer=opt, epochs=1)
    with pytest.raises(TypeError, match="integer"):
        fit(model, X, y.astype(float), optimizer=opt, epochs=1)


def test_fit_is_train_epoch_then_evaluate(tiny):
    """One epoch of fit equals train_epoch with fit's generator, then evaluate."""
    X, y = tiny
    a, b = small_cnn(), small_cnn()
    h = fit(
        a,
        X,
        y,
        optimizer=SGD(a.parameters(), lr=0.1),
        epochs=1,
        batch_size=8,
        seed=3,
        X_val=X,
        y_val=y,
    )
    loss, acc = train_epoch(
        b,
        X,
        y,
        SGD(b.parameters(), lr=0.1),
        layers.SoftmaxCrossEntropy(),
        np.random.default_rng(3),
        batch_size=8,
    )
    assert (h.train_loss[0], h.train_acc[0]) == (loss, acc)
    assert (h.val_loss[0], h.val_acc[0]) == evaluate(b, X, y)
    for (p, _), (q, _) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)


def test_train_epoch_rejects_bad_arguments(tiny):
    X, y = tiny
    model = small_cnn()
    opt, loss = SGD(model.parameters(), lr=0.1), layers.SoftmaxCrossEntropy()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="batch_size"):
        train_epoch(model, X, y, opt, loss, rng, batch_size=0)
    with pytest.raises(TypeError, match="step"):
        train_epoch(model, X, y, loss, loss, rng)
    with pytest.raises(ValueError, match="labels"):
        train_epoch(model, X, y[:-1], opt, loss, rng)


# --- random_shift ---------------------------------------------------------------------


def test_random_shift_moves_whole_images():
    rng = np.random.default_rng(0)
    x = np.zeros((200, 2, 9, 9), np.float32)
    x[:, 0, 4, 4] = 1.0  # one bright pixel in the middle of channel 0
    x[:, 1, 4, 4] = 2.0
    out = random_shift(x, 2, rng)
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(x[:, :, 4, 4], [[1.0, 2.0]] * 200)  # input untouched
    for img in out:
        ((r0, c0),) = np.argwhere(img[0] == 1.0)
        ((r1, c1),) = np.argwhere(img[1] == 2.0)
        assert (r0, c0) == (r1, c1)  # channels move together
        assert abs(r0 - 4) <= 2 and abs(c0 - 4) <= 2
        assert img.sum() == 3.0
    offsets = {tuple(np.argwhere(img[0])[0] - 4) for img in out}
    assert len(offsets) == 25  # all (2·2+1)² offsets occur


def test_random_shift_fills_with_zeros_and_matches_definition():
    x = np.arange(2 * 1 * 4 * 5, dtype=np.float64).reshape(2, 1, 4, 5) + 1
    rng = np.random.default_rng(5)
    out = random_shift(x, (1, 2), rng)
    g = np.random.default_rng(5)  # random_shift draws all dy first, then all dx
    dy, dx = g.integers(-1, 2, size=2), g.integers(-2, 3, size=2)
    for n in range(2):
        expect = np.zeros((4, 5))
        for i in range(4):
            for j in range(5):
                if 0 <= i - dy[n] < 4 and 0 <= j - dx[n] < 5:
                    expect[i, j] = x[n, 0, i - dy[n], j - dx[n]]
        np.testing.assert_array_equal(out[n, 0], expect)


def test_random_shift_zero_and_errors():
    x = np.ones((3, 1, 5, 5), np.float32)
    rng = np.random.default_rng(0)
    out = random_shift(x, 0, rng)
    np.testing.assert_array_equal(out, x)
    assert out is not x
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(x, 5, rng)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_shift(x[0], 1, rng)
    with pytest.raises(TypeError, match="Generator"):
        random_shift(x, 1, 0)


# --- save / load ----------------------------------------------------------------------


def test_save_load_round_trips_bit_exactly(tmp_path, tiny):
    X, y = tiny
    model = small_cnn(seed=0)
    fit(
        model,
        X,
        y,
        optimizer=SGD(model.parameters(), lr=0.05, momentum=0.9),
        epochs=2,
        batch_size=8,
    )
    path = save_weights(model, tmp_path / "weights")
    assert path.name == "weights.npz" and path.exists()
    with np.load(path, allow_pickle=False) as archive:  # plain arrays, no pickles
        assert sorted(archive.files) == sorted(model.state_dict())
    other = small_cnn(seed=1)
    params_before = [p for p, _ in other.parameters()]
    load_weights(other, path)
    for key, value in model.state_dict().items():
        got = other.state_dict()[key]
        assert got.dtype == value.dtype
        np.testing.assert_array_equal(got, value)
    # Loaded in place: the optimizer's references stay valid.
    assert all(a is b for a, (b, _) in zip(params_before, other.parameters()))
    np.testing.assert_array_equal(model.forward(X), other.forward(X))


def test_load_rejects_wrong_shapes(tmp_path):
    path = save_weights(small_cnn(filters=4), tmp_path / "four.npz")
    model = small_cnn(filters=6)
    before = model.state_dict()
    with pytest.raises(
        ValueError, match=r"four.npz: '0.weight' has shape \(4, 1, 3, 3\)"
    ):
        load_weights(model, path)
    for key, value in model.state_dict().items():  # nothing changed
        np.testing.assert_array_equal(value, before[key])


def test_load_rejects_wrong_keys(tmp_path):
    deeper = layers.Sequential(
        layers.Flatten(),
        layers.Linear(64, 10, rng=0),
        layers.ReLU(),
        layers.Linear(10, 10, rng=1),
    )
    path = save_weights(deeper, tmp_path / "mlp.npz")
    with pytest.raises(ValueError, match="missing keys.*unexpected keys"):
        load_weights(small_cnn(), path)


def test_load_rejects_wrong_dtype(tmp_path):
    path = save_weights(small_cnn(dtype=np.float64), tmp_path / "f64.npz")
    with pytest.raises(ValueError, match="float64"):
        load_weights(small_cnn(dtype=np.float32), path)


def test_load_refuses_pickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"0.weight": np.array([object()], dtype=object)})
    with pytest.raises(ValueError):
        load_weights(small_cnn(), path)


def test_progress_bar_is_optional(tiny, capsys):
    pytest.importorskip("tqdm")
    X, y = tiny
    model = small_cnn()
    fit(
        model,
        X,
        y,
        optimizer=SGD(model.parameters(), lr=0.05),
        epochs=2,
        batch_size=16,
        progress=True,
    )
    assert "training" in capsys.readouterr().err
    fit(
        model, X, y, optimizer=SGD(model.parameters(), lr=0.05), epochs=2, batch_size=16
    )
    assert capsys.readouterr().err == ""  # off by default
