"""The Chapter 8 checker accepts a correct answer and rejects the usual wrong ones."""

import numpy as np

from cnnbook.exercises import check_conv2d_shift_add


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


def flipped_kernel(x, w, b, padding):  # true convolution instead of cross-correlation
    return shift_add(x, w[:, :, ::-1, ::-1], b, padding)


def no_bias(x, w, b, padding):
    return shift_add(x, w, np.zeros_like(b), padding)


def padding_ignored(x, w, b, padding):
    return shift_add(x, w, b, 0)


def stub(x, w, b, padding):
    raise NotImplementedError


def test_accepts_correct_solution():
    assert check_conv2d_shift_add(shift_add)


def test_rejects_wrong_answers():
    for wrong in (flipped_kernel, no_bias, padding_ignored):
        result = check_conv2d_shift_add(wrong)
        assert not result, wrong.__name__
        assert "✗" in repr(result)


def test_stub_says_not_implemented():
    assert "not implemented yet" in repr(check_conv2d_shift_add(stub))
