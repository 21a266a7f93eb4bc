"""Chapter 10 checkers accept correct solutions and reject typical wrong ones."""

import numpy as np

from cnnbook.exercises import check_gemm_flops, check_matmul_ikj, check_tile_intensity


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
    for wrong in (ijk, ikj_overwrites, ikj_new_array, vectorized_rows):
        assert not check_matmul_ikj(wrong), wrong.__name__
    result = check_matmul_ikj(ijk)
    assert "B read down its columns" in result.message
    assert "not implemented yet" in check_matmul_ikj(stub).message


def test_gemm_flops():
    assert check_gemm_flops(lambda m, n, k: 2 * m * n * k)
    for wrong in (
        lambda m, n, k: m * n * k,
        lambda m, n, k: m * n * (2 * k - 1),
        lambda m, n, k: 2 * m**3,
        lambda m, n, k: 2.0 * m * n * k + m * n,
    ):
        assert not check_gemm_flops(wrong)


def test_tile_intensity():
    assert check_tile_intensity(lambda mr, nr: 2 * mr * nr / (mr + nr))
    for wrong in (
        lambda mr, nr: mr * nr / (mr + nr),
        lambda mr, nr: 2.0,
        lambda mr, nr: 2 * mr * nr / (mr * nr + mr + nr),
    ):
        assert not check_tile_intensity(wrong)
