"""Shape-dependent pieces of the backbone, checked against hand-worked cases."""

from __future__ import annotations

import numpy as np
from keras import ops

from vswin.model.layers import (
    effective_window,
    relative_position_index,
    shifted_window_regions,
    window_merge,
    window_partition,
)


def test_window_is_clamped_and_shift_turned_off_on_small_axes():
    assert effective_window((8, 2, 2), (8, 7, 7), (4, 3, 3)) == ((8, 2, 2), (0, 0, 0))
    assert effective_window((16, 14, 14), (8, 7, 7), (4, 3, 3)) == ((8, 7, 7), (4, 3, 3))
    assert effective_window((16, 7, 9), (8, 7, 7), (4, 3, 3)) == ((8, 7, 7), (4, 0, 3))


def test_relative_position_index_of_a_2x2x2_window():
    index = ops.convert_to_numpy(relative_position_index((2, 2, 2)))
    assert index.shape == (8, 8)
    # Table of 3*3*3 offsets; the centre (offset 0,0,0) is entry 13 and sits on the diagonal.
    assert (np.diag(index) == 13).all()
    # Token 0 = (0,0,0), token 7 = (1,1,1): offset (-1,-1,-1) -> (0,0,0) -> entry 0; reversed -> (2,2,2) -> 26.
    assert index[0, 7] == 0 and index[7, 0] == 26
    assert index.max() == 26 and index.min() == 0


def test_shifted_regions_separate_wrapped_tokens():
    # One axis of 4 tokens, window 2, shift 1: after the roll the last window mixes token 3 with token 0.
    regions = shifted_window_regions((1, 1, 4), (1, 1, 2), (0, 0, 1))
    assert regions.shape == (2, 2)
    assert regions[0, 0] == regions[0, 1]
    assert regions[1, 0] != regions[1, 1]


def test_unshifted_axes_have_a_single_region():
    regions = shifted_window_regions((2, 2, 2), (2, 2, 2), (0, 0, 0))
    assert np.unique(regions).size == 1


def test_window_partition_round_trips():
    x = np.arange(2 * 4 * 6 * 6 * 3, dtype="float32").reshape(2, 4, 6, 6, 3)
    windows = window_partition(ops.convert_to_tensor(x), (2, 3, 3))
    assert tuple(windows.shape) == (2 * 2 * 2 * 2, 18, 3)
    back = window_merge(windows, (2, 3, 3), (4, 6, 6))
    np.testing.assert_array_equal(np.asarray(back), x)
