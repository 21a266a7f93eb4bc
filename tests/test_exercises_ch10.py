"""Chapter 10 checkers: each typical mistake gets its hint, correct solutions pass."""

import numpy as np
import pytest

from cnnbook import blas
from cnnbook.exercises import (
    check_blis_kc,
    check_choose_tile,
    check_matmul_ikj,
    check_tile_intensity,
)

# ----------------------------------------------------------------------------------
# 10.1 The i-k-j loop order
# ----------------------------------------------------------------------------------


def ikj(A, B, C):
    m, k = A.shape
    n = B.shape[1]
    for i in range(m):
        for p in range(k):
            a = A[i, p]
            for j in range(n):
                C[i, j] += a * B[p, j]


def kij_chained(A, B, C):  # also innermost over j, with chained indexing
    for p in range(A.shape[1]):
        for i in range(A.shape[0]):
            for j in range(B.shape[1]):
                C[i][j] += A[i][p] * B[p][j]


def ijk(A, B, C):  # right values, wrong loop order
    m, k = A.shape
    n = B.shape[1]
    for i in range(m):
        for j in range(n):
            for p in range(k):
                C[i, j] += A[i, p] * B[p, j]


def ikj_overwrites(A, B, C):
    m, k = A.shape
    n = B.shape[1]
    for i in range(m):
        for p in range(k):
            for j in range(n):
                C[i, j] = A[i, p] * B[p, j]


def ikj_new_array(A, B, C):  # ignores the in-place contract
    out = np.zeros(C.shape)
    for i in range(A.shape[0]):
        for p in range(A.shape[1]):
            for j in range(B.shape[1]):
                out[i, j] += A[i, p] * B[p, j]
    return out


def vectorized_rows(A, B, C):
    for i in range(A.shape[0]):
        for p in range(A.shape[1]):
            C[i, :] += A[i, p] * B[p, :]


def stub(A, B, C):
    raise NotImplementedError


def test_matmul_ikj():
    assert check_matmul_ikj(ikj)
    assert check_matmul_ikj(kij_chained)
    for wrong in (ijk, ikj_overwrites, ikj_new_array):
        result = check_matmul_ikj(wrong)
        assert not result, wrong.__name__
        assert "in place" in result.message
    assert "B read down its columns" in check_matmul_ikj(ijk).message
    assert "one element at a time" in check_matmul_ikj(vectorized_rows).message
    assert "not implemented yet" in check_matmul_ikj(stub).message


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
