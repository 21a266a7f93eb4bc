"""Chapter 8 checkers: each typical mistake gets its hint, correct solutions pass."""

import math
import platform
import re

import numpy as np
import pytest

from cnnbook.exercises import (
    check_conv2d_shift_add,
    check_conv_intensity,
    check_which_loops_vectorize,
)
from cnnbook.exercises.ch08 import EXERCISES, LOOPS, VECTORIZED

# ----------------------------------------------------------------------------------
# 8.1 One kernel tap at a time
# ----------------------------------------------------------------------------------


def shift_add(x, w, b, padding):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    f, c, kh, kw = w.shape
    ho, wo = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    out = np.zeros((x.shape[0], f, ho, wo)) + b[None, :, None, None]
    for i in range(kh):
        for j in range(kw):
            out += np.einsum(
                "fc,nchw->nfhw", w[:, :, i, j], xp[:, :, i : i + ho, j : j + wo]
            )
    return out


def shift_add_tensordot(x, w, b, padding):  # alternative correct solution
    xp = np.pad(x, [(0, 0), (0, 0), (padding,) * 2, (padding,) * 2])
    kh, kw = w.shape[2:]
    ho, wo = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    out = np.zeros((x.shape[0], ho, wo, w.shape[0]))
    for i in range(kh):
        for j in range(kw):
            out += np.tensordot(
                xp[:, :, i : i + ho, j : j + wo], w[:, :, i, j], axes=([1], [1])
            )
    return out.transpose(0, 3, 1, 2) + b[None, :, None, None]


def flipped_kernel(x, w, b, padding):  # true convolution instead of cross-correlation
    return shift_add(x, w[:, :, ::-1, ::-1], b, padding)


def no_bias(x, w, b, padding):
    return shift_add(x, w, np.zeros_like(b), padding)


def padding_ignored(x, w, b, padding):
    return shift_add(x, w, b, 0)


def padding_one_side(x, w, b, padding):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, 0), (padding, 0)))
    return shift_add(xp, w, b, 0)


def square_kernel_sizes(x, w, b, padding):  # Wo computed with kH
    out = shift_add(x, w, b, padding)
    kh, kw = w.shape[2:]
    if kh == kw:
        return out
    return np.zeros(out.shape[:3] + (x.shape[3] + 2 * padding - kh + 1,))


def stub(x, w, b, padding):
    raise NotImplementedError


def test_shift_add_correct_solutions_pass():
    assert check_conv2d_shift_add(shift_add)
    assert check_conv2d_shift_add(shift_add_tensordot)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (flipped_kernel, "starts at row i, column j"),
        (no_bias, "don't forget the bias"),
        (padding_ignored, "pad the input first"),
        (padding_one_side, "pad the input first"),
        (square_kernel_sizes, "kH and kW differ"),
    ],
)
def test_shift_add_mistakes_get_their_hints(wrong, hint):
    result = check_conv2d_shift_add(wrong)
    assert not result, wrong.__name__
    assert hint in result.message


def test_shift_add_stub_says_not_implemented():
    assert "not implemented yet" in repr(check_conv2d_shift_add(stub))


# ----------------------------------------------------------------------------------
# 8.2 The arithmetic intensity of a layer
# ----------------------------------------------------------------------------------


def intensity(x_shape, w_shape, padding, itemsize):
    n, c, h, wd = x_shape
    f, _, kh, kw = w_shape
    ho, wo = h + 2 * padding - kh + 1, wd + 2 * padding - kw + 1
    flops = 2 * n * f * ho * wo * c * kh * kw
    nbytes = itemsize * (n * c * h * wd + f * c * kh * kw + n * f * ho * wo)
    return flops / nbytes


def intensity_with_arrays(x_shape, w_shape, padding, itemsize):  # alternative
    dtype = {2: np.float16, 4: np.float32, 8: np.float64}[itemsize]
    x, w = np.empty(x_shape, dtype), np.empty(w_shape, dtype)
    ho = x.shape[2] + 2 * padding - w.shape[2] + 1
    wo = x.shape[3] + 2 * padding - w.shape[3] + 1
    out = np.empty((x.shape[0], w.shape[0], ho, wo), dtype)
    madds = out.size * math.prod(w.shape[1:])
    return np.float32(2 * madds / (x.nbytes + w.nbytes + out.nbytes))


def _wrong_intensity(**mistake):
    def fn(x_shape, w_shape, padding, itemsize):
        n, c, h, wd = x_shape
        f, _, kh, kw = w_shape
        p_h = mistake.get("pad", 2 * padding)
        ho = h + p_h - kh + 1
        wo = wd + p_h - (kh if mistake.get("square") else kw) + 1
        flops = mistake.get("per_madd", 2) * n * f * ho * wo * c * kh * kw
        if mistake.get("padded_x"):
            elements = n * c * (h + 2 * padding) * (wd + 2 * padding)
        else:
            elements = n * c * h * wd
        elements += f * c * kh * kw
        if not mistake.get("no_out"):
            elements += n * f * ho * wo
        return flops / (mistake.get("size", itemsize) * elements)

    return fn


def predictions(peak, bandwidth):
    i_a = intensity((64, 1, 28, 28), (8, 1, 3, 3), 1, 4)
    i_b = [intensity((32, 16, 32, 32), (32, 16, 3, 3), 1, s) for s in (2, 4)]
    return {
        "A memory-bound": i_a < peak / bandwidth,
        "A best GFLOP/s": min(peak, i_a * bandwidth),
        "B float16 / float32": i_b[0] / i_b[1],
    }


def predictions_rounded(peak, bandwidth):  # alternative: A's intensity taken as 4
    ridge = np.float64(peak) / bandwidth
    return dict(
        [
            ("A memory-bound", np.bool_(4 < ridge)),
            ("A best GFLOP/s", np.float32(min(peak, 4 * bandwidth))),
            ("B float16 / float32", 2),
        ]
    )


def _wrong_predictions(**change):
    def fn(peak, bandwidth):
        i_a = 47.9 if change.get("b_for_a") else 4.0
        bound = i_a < peak / bandwidth
        best = min(peak, i_a * bandwidth)
        if change.get("inverted"):
            bound = not bound
        best = change.get("best", lambda p, b, i: best)(peak, bandwidth, i_a)
        return {
            "A memory-bound": bound,
            "A best GFLOP/s": best,
            "B float16 / float32": change.get("factor", 2.0),
        }

    return fn


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_wrong_intensity(per_madd=1), "a multiply-add is two FLOPs"),
        (_wrong_intensity(no_out=True), "count its bytes as well"),
        (_wrong_intensity(size=1), "bytes, not numbers"),
        (_wrong_intensity(size=4), "bytes, not numbers"),
        (_wrong_intensity(pad=0), "padding p on every side"),
        (_wrong_intensity(padded_x=True), "count x itself"),
        (lambda *a: float("nan"), "FLOPs = 2"),
        (_wrong_intensity(square=True), "kH and kW differ"),
    ],
)
def test_intensity_mistakes_get_their_hints(wrong, hint):
    result = check_conv_intensity(wrong, predictions)
    assert not result
    assert hint in result.message


def test_intensity_correct_solutions_pass():
    for fn in (intensity, intensity_with_arrays):
        for predict in (predictions, predictions_rounded):
            result = check_conv_intensity(fn, predict)
            assert result, result.message
            assert "machines predicted right" in result.message


def test_intensity_survives_bad_output_and_stub():
    assert "expected a number" in check_conv_intensity(lambda *a: "four").message
    assert "raised ZeroDivisionError" in check_conv_intensity(lambda *a: 1 / 0).message
    assert "not implemented yet" in repr(check_conv_intensity(stub, stub))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_wrong_predictions(inverted=True), "that side is memory-bound"),
        (_wrong_predictions(b_for_a=True), "about 4 FLOP per byte"),
        (_wrong_predictions(best=lambda p, b, i: p), "the memory roof caps"),
        (_wrong_predictions(best=lambda p, b, i: i * b), "faster than the peak"),
        (_wrong_predictions(best=lambda p, b, i: p / b), "not a rate"),
        (_wrong_predictions(factor=0.5), "FLOPs per byte go up"),
        (_wrong_predictions(factor=1), "a float16 number has 2"),
        (_wrong_predictions(best=lambda p, b, i: 2 * p), "draw the two roofs"),
    ],
)
def test_prediction_mistakes_get_their_hints(wrong, hint):
    result = check_conv_intensity(intensity, wrong)
    assert not result
    assert hint in result.message, result.message


def roofline_predictions(peak, bandwidth):  # the notebook's stub
    raise NotImplementedError


@pytest.mark.parametrize(
    "predict, message",
    [
        (roofline_predictions, "roofline_predictions: not implemented yet"),
        (lambda p, b: [True, 80.0, 2.0], "expected a dict with the keys"),
        (lambda p, b: {"A memory-bound": True}, "expected a dict with the keys"),
        (lambda p, b: 1 / 0, "raised ZeroDivisionError"),
        (
            lambda p, b: {**predictions(p, b), "A memory-bound": "yes"},
            "is True or False",
        ),
        (
            lambda p, b: {**predictions(p, b), "A best GFLOP/s": "80"},
            "is a number",
        ),
        (
            lambda p, b: {**predictions(p, b), "B float16 / float32": float("nan")},
            "expected 2.0",
        ),
        (None, "the predictions are missing"),
    ],
)
def test_bad_predictions_are_explained(predict, message):
    result = check_conv_intensity(intensity, predict)
    assert not result and message in result.message, result.message


# ----------------------------------------------------------------------------------
# 8.3 Which loops vectorize?
# ----------------------------------------------------------------------------------


def test_vectorize_correct_answers_pass():
    assert check_which_loops_vectorize(lambda: {1, 2, 4})
    assert check_which_loops_vectorize(lambda: [4, 2, 1])
    assert check_which_loops_vectorize(lambda: np.array([1, 2, 4]))


@pytest.mark.parametrize(
    "answer, hint",
    [
        ({2, 4}, "loop 1 is the ideal case"),
        ({1, 4}, "test the whole range once"),
        ({1, 2, 3, 4}, "float addition is not associative"),
        ({1, 2}, "reassoc is exactly the permission"),
        ({1, 2, 4, 5}, "the raise keeps it scalar"),
        ({1, 2, 4, 6}, "a true dependence"),
    ],
)
def test_vectorize_mistakes_get_their_hints(answer, hint):
    result = check_which_loops_vectorize(lambda: answer)
    assert not result
    assert hint in result.message


@pytest.mark.parametrize(
    "answer, message",
    [
        ("124", "expected a set of loop numbers"),
        (3, "expected a set of loop numbers"),
        ({1, 7}, "numbered 1 to 6"),
        ({1.0, 2.0}, "numbered 1 to 6"),
        ({True}, "numbered 1 to 6"),
    ],
)
def test_vectorize_bad_answers_are_explained(answer, message):
    result = check_which_loops_vectorize(lambda: answer)
    assert not result and message in result.message


def test_vectorize_stub_and_raising_function():
    def broken():
        raise RuntimeError("oops")

    assert "not implemented yet" in repr(
        check_which_loops_vectorize(lambda: stub(0, 0, 0, 0))
    )
    assert "raised RuntimeError: oops" in check_which_loops_vectorize(broken).message


def _packed_multiplies(fn, sig) -> int:
    """Packed (ps) multiply instructions of any width in fn's own code: the vector
    loop's body; scalar remainders use the ss forms."""
    fn.compile(sig)
    asm = "\n".join(fn.inspect_asm().values())
    return sum(
        1 for line in asm.splitlines() if re.match(r"\s*v(mul|fmadd\d*)ps\b", line)
    )


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 assembly"
)
def test_vectorize_answers_match_the_compiler():
    """The checker's answers are what numba's LLVM does with the loops on this host."""
    numba = pytest.importorskip("numba")

    def loop1(y, x, s, limit):
        for i in range(y.shape[0]):
            y[i] += s * x[i]

    def loop3(y, x, s, limit):
        t = np.float32(0)
        for i in range(y.shape[0]):
            t += x[i] * y[i]
        y[0] = t

    def loop5(y, x, s, limit):
        for i in range(y.shape[0]):
            if x[i] > limit:
                raise ValueError("x too large")
            y[i] += s * x[i]

    def loop6(y, x, s, limit):
        for i in range(1, y.shape[0]):
            y[i] = y[i - 1] + s * x[i]

    compiled = {
        1: numba.njit(loop1),
        2: numba.njit(boundscheck=True)(loop1),
        3: numba.njit(loop3),
        4: numba.njit(fastmath={"reassoc"})(loop3),
        5: numba.njit(loop5),
        6: numba.njit(loop6),
    }
    f32 = numba.float32[::1]
    sig = (f32, f32, numba.float32, numba.float32)
    vectorized = {k for k, fn in compiled.items() if _packed_multiplies(fn, sig) >= 2}
    assert set(LOOPS) == set(compiled)
    assert vectorized == VECTORIZED


# ----------------------------------------------------------------------------------
# the registry
# ----------------------------------------------------------------------------------


def test_registry_lists_three_exercises_two_needing_thought():
    assert [e.number for e in EXERCISES] == ["8.1", "8.2", "8.3"]
    assert sum(e.needs_thought for e in EXERCISES) >= 2
