"""Regression guard for Chapter 9: training must not keep something every step.

The guard counts traced memory and live objects after every step, never seconds, so a
noisy machine cannot fail it. A planted never-cleared cache in a real layer (a ReLU
that keeps every input and walks them all in backward, the chapter's culprit) must
fail it, so it is not a test that cannot fail.
"""

import numpy as np

from cnnbook.diagnostics import PhaseTimer, diagnose
from cnnbook.layers import ReLU
from cnnbook.models import seed_cnn
from cnnbook.optim import SGD
from cnnbook.train import fit


class NeverClearedReLU(ReLU):
    """A real layer with the bug: every input kept, all of them walked in backward."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x)
        return super().forward(x)

    def backward(self, dout):
        assert all(np.isfinite(x).all() for x in self.seen)
        return super().backward(dout)


def _memory_diagnosis(plant=None, epochs=4):
    rng = np.random.default_rng(0)
    X = rng.random((256, 1, 12, 12), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    model = seed_cnn(input_size=12, rng=0)
    if plant is not None:
        model.layers[2] = plant()
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    timer = PhaseTimer(track_memory=True, per_step=True)
    try:
        fit(model, X, y, optimizer=optimizer, epochs=epochs, batch_size=32, timer=timer)
    finally:
        timer.close()
    first = timer.epoch_ends[0]  # epoch 1 is warm-up
    series = {key: timer.steps[key][first:] for key in ("traced_mb", "objects")}
    # diagnose needs a phase; memory is judged without looking at the times
    series["backward"] = np.ones(len(series["objects"]))
    return diagnose(series), timer


def test_training_keeps_memory_and_live_objects_flat_per_step():
    diagnosis, timer = _memory_diagnosis()
    assert not diagnosis.memory_grows, timer.steps["traced_mb"]
    assert len(timer.steps["traced_mb"]) == 4 * 8


def test_a_never_cleared_cache_in_a_real_layer_is_caught():
    diagnosis, timer = _memory_diagnosis(NeverClearedReLU)
    assert diagnosis.memory_grows
    kept = np.diff(timer.steps["traced_mb"])[8:]  # one pooled map per step
    np.testing.assert_allclose(np.median(kept) * 2**20, 32 * 8 * 6 * 6 * 4, rtol=0.05)
