"""Chapter 10 checkers: each typical mistake gets its hint, correct solutions pass."""

import numpy as np
import pytest

from cnnbook import blas
from cnnbook.exercises import (
    check_blis_kc,
    check_choose_tile,
    check_loop_strides,
    check_tile_intensity,
)

# ----------------------------------------------------------------------------------
# 10.1 The strides of the six loop orders
# ----------------------------------------------------------------------------------


def inner_strides(order, m, k, n):  # the notebook's solution
    inner = order[-1]
    row_length = {"A": k, "B": n, "C": n}
    indices = {"A": "ik", "B": "kj", "C": "ij"}
    strides = []
    for name in "ABC":
        row, col = indices[name]
        if inner == col:
            strides.append(1)
        elif inner == row:
            strides.append(row_length[name])
        else:
            strides.append(0)
    return tuple(strides)


def strides_from_numpy(order, m, k, n):  # alternative: ask NumPy, as a list
    size = {"i": m, "k": k, "j": n}
    inner, out = order[-1], []
    for row, col in ("ik", "kj", "ij"):
        X = np.zeros((size[row], size[col]), dtype=np.float64)
        axis = (row + col).find(inner)
        out.append(0 if axis < 0 else X.strides[axis] // X.itemsize)
    return out


def outermost(order, m, k, n):  # reads the first letter as the innermost loop
    return inner_strides(order[::-1], m, k, n)


def column_major(order, m, k, n):
    inner = order[-1]
    rows = {"A": m, "B": k, "C": m}
    indices = {"A": "ik", "B": "kj", "C": "ij"}
    return tuple(
        1 if inner == indices[x][0] else rows[x] if inner == indices[x][1] else 0
        for x in "ABC"
    )


def in_bytes(order, m, k, n):
    return tuple(4 * s for s in inner_strides(order, m, k, n))


def a_rows_of_m(order, m, k, n):  # A's row length taken as m
    s_a, s_b, s_c = inner_strides(order, m, k, n)
    return (m if s_a == k else s_a), s_b, s_c


def c_rows_of_m(order, m, k, n):  # C's row length taken as m
    s_a, s_b, s_c = inner_strides(order, m, k, n)
    return s_a, s_b, (m if s_c == n else s_c)


def b_rows_of_k(order, m, k, n):  # B's row length taken as k
    s_a, s_b, s_c = inner_strides(order, m, k, n)
    return s_a, (k if s_b == n else s_b), s_c


def unused_is_one(order, m, k, n):  # an operand the loop does not index "moves" by 1
    return tuple(s or 1 for s in inner_strides(order, m, k, n))


def unit_stride_everywhere(order, m, k, n):  # only the zeros are right
    return tuple(1 if s else 0 for s in inner_strides(order, m, k, n))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (outermost, "*last* letter names the innermost loop"),
        (column_major, "column-major"),
        (in_bytes, "not bytes"),
        (a_rows_of_m, "A is m × k, stored row after row: stepping i skips a whole row"),
        (c_rows_of_m, "C is m × n, stored row after row: stepping i skips"),
        (b_rows_of_k, "B is k × n, stored row after row: stepping p skips"),
        (unused_is_one, "does not use the innermost loop's index"),
        (unit_stride_everywhere, "skips a whole row of B, n elements"),
        (lambda order, m, k, n: (1, 1), "a tuple of three integers"),
        (lambda order, m, k, n: "1, n, 0", "a tuple of three integers"),
        (lambda order, m, k, n: (1.0, float(n), 0.0), "return three integers"),
    ],
)
def test_loop_strides_mistakes_get_their_hints(wrong, hint):
    result = check_loop_strides(wrong)
    assert not result
    assert hint in result.message, result.message


def test_loop_strides_names_the_wrong_operand():
    message = check_loop_strides(a_rows_of_m).message
    assert "jki" in message and ", not m" in message, message  # first case with i inner
    assert "item 0" in message, message
    message = check_loop_strides(b_rows_of_k).message
    assert "'ijk'" in message and "item 1" in message and ", not k" in message, message


def test_loop_strides_correct_solutions_pass():
    assert check_loop_strides(inner_strides)
    assert check_loop_strides(strides_from_numpy)


def test_loop_strides_wrong_signature_and_stub():
    def three_arguments(order, k, n):
        return inner_strides(order, 0, k, n)

    def stub(order, m, k, n):
        raise NotImplementedError

    result = check_loop_strides(three_arguments)
    assert not result
    assert "must take four arguments (order, m, k, n)" in result.message
    assert "not implemented yet" in check_loop_strides(stub).message
    crash = check_loop_strides(lambda order, m, k, n: {"i": 1}[order[-1]])
    assert not crash and "raised KeyError" in crash.message


# ----------------------------------------------------------------------------------
# 10.2 Choose MR × NR for a register file
# ----------------------------------------------------------------------------------


def choose_tile(registers, lanes):  # the package's derivation
    tile = blas.register_tile(registers, lanes)
    return tile.mr, tile.nr


def choose_tile_brute_force(registers, lanes):  # alternative correct solution
    best = None
    for v in range(1, registers):
        for mr in range(1, registers):
            acc = mr * v
            if acc + v + 1 > registers or acc < 10 or mr + v > acc:
                continue
            key = (mr * v * lanes / (mr + v * lanes), -v)
            if best is None or key > best[0]:
                best = (key, (mr, v * lanes))
    return best[1]


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda R, L: (6, 12), "whole number"),
        (lambda R, L: (R, L * 2), "accumulators alone"),
        (lambda R, L: ((R - 1) // 2, 2 * L), "count every register"),
        (lambda R, L: (4, 2 * L), "independent accumulators"),
        (lambda R, L: (R - 2, L), "load ports"),
        (lambda R, L: (5, 2 * L), "another that fits"),
        (lambda R, L: "6x16", "two positive integers"),
    ],
)
def test_choose_tile_mistakes_get_their_hints(wrong, hint):
    result = check_choose_tile(wrong)
    assert not result
    assert hint in result.message, result.message


def test_choose_tile_correct_solutions_pass():
    assert check_choose_tile(choose_tile)
    assert check_choose_tile(choose_tile_brute_force)


def test_choose_tile_stub_and_crash():
    def stub(R, L):
        raise NotImplementedError

    assert "not implemented yet" in check_choose_tile(stub).message
    assert "raised ZeroDivisionError" in check_choose_tile(lambda R, L: 1 / 0).message


# ----------------------------------------------------------------------------------
# 10.3 The arithmetic intensity of a register tile
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda mr, nr: mr * nr / (mr + nr) / 4, "2 flops"),
        (lambda mr, nr: 2 * mr * nr / (mr + nr), "4 bytes"),
        (lambda mr, nr: 2 * mr * nr / (4 * (mr * nr + mr + nr)), "stays in registers"),
        (lambda mr, nr: 0.5, "mr + nr floats"),
        (lambda mr, nr: 3.0, "(mr + nr) · 4 bytes"),
    ],
)
def test_tile_intensity_mistakes_get_their_hints(wrong, hint):
    result = check_tile_intensity(wrong)
    assert not result
    assert hint in result.message, result.message


def test_tile_intensity_correct_solutions_pass():
    assert check_tile_intensity(lambda mr, nr: mr * nr / (2 * (mr + nr)))
    assert check_tile_intensity(
        lambda mr, nr: np.float32(2 * mr * nr) / np.float32(4 * (mr + nr))
    )  # float32 is fine
    assert check_tile_intensity(lambda mr, nr: 1 / (2 / nr + 2 / mr))


def test_tile_intensity_stub_and_bad_types():
    def stub(mr, nr):
        raise NotImplementedError

    assert "not implemented yet" in check_tile_intensity(stub).message
    assert not check_tile_intensity(lambda mr, nr: "much")
    assert not check_tile_intensity(lambda mr, nr: float("nan"))


# ----------------------------------------------------------------------------------
# 10.4 kc for another cache and another precision
# ----------------------------------------------------------------------------------


def blis_kc(l1_bytes, ways, mr, nr, element_bytes):
    ways_a = int((ways - 1) / (1 + nr / mr))
    return ways_a * (l1_bytes // ways) // (mr * element_bytes)


def blis_kc_sets(l1_bytes, ways, mr, nr, element_bytes, line=64):  # via sets × line
    sets = l1_bytes // (ways * line)
    ways_a = (ways - 1) * mr // (mr + nr)
    return ways_a * sets * line // mr // element_bytes


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda c, w, mr, nr, e: (w * mr // (mr + nr)) * (c // w) // (mr * e), "w − 1"),
        (
            lambda c, w, mr, nr, e: ((w - 1) * nr // (mr + nr)) * (c // w) // (mr * e),
            "is the small one",
        ),
        (
            lambda c, w, mr, nr, e: int((w - 1) * mr / (mr + nr) * (c // w) / (mr * e)),
            "whole ways",
        ),
        (lambda c, w, mr, nr, e: blis_kc(c, w, mr, nr, 4), "8 bytes"),
        (lambda c, w, mr, nr, e: blis_kc(c, w, mr, nr, e) * e, "not bytes"),
        (lambda c, w, mr, nr, e: 256, "kc = ⌊(W − 1)"),
    ],
)
def test_blis_kc_mistakes_get_their_hints(wrong, hint):
    result = check_blis_kc(wrong)
    assert not result
    assert hint.replace("w − 1", "ways − 1") in result.message, result.message


def test_blis_kc_correct_solutions_pass():
    assert check_blis_kc(blis_kc)
    assert check_blis_kc(blis_kc_sets)


def test_blis_kc_stub():
    def stub(*args):
        raise NotImplementedError

    assert "not implemented yet" in check_blis_kc(stub).message
    assert not check_blis_kc(lambda *args: 170.5)
