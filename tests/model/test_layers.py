"""Shape-dependent pieces of the backbone, checked against hand-worked cases."""

from __future__ import annotations

import numpy as np
from keras import ops

from vswin.model.layers import (
    bias_index,
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


def test_image_rule_clamps_to_the_short_side_and_drops_the_whole_shift():
    # The 2D original: min(H, W) <= window -> one window of min(H, W), no shift on either axis.
    assert effective_window((1, 7, 14), (1, 7, 7), (0, 3, 3), "image") == ((1, 7, 7), (0, 0, 0))
    assert effective_window((1, 5, 9), (1, 7, 7), (0, 3, 3), "image") == ((1, 5, 5), (0, 0, 0))
    assert effective_window((1, 8, 14), (1, 7, 7), (0, 3, 3), "image") == ((1, 7, 7), (0, 3, 3))
    # Video Swin clamps axis by axis and keeps the shift where the axis is large enough.
    assert effective_window((1, 7, 14), (1, 7, 7), (0, 3, 3), "video") == ((1, 7, 7), (0, 0, 3))


def test_a_smaller_window_indexes_the_table_by_offset_in_images_and_top_left_in_video():
    table = (1, 3, 3)  # 5 x 5 offsets; the centre (0, 0) is entry 12
    image = ops.convert_to_numpy(bias_index((1, 2, 2), table, "image"))
    # Tokens (0,0),(0,1),(1,0),(1,1): token 0 -> token 3 is offset (-1,-1) -> (1,1) -> entry 6.
    assert (np.diag(image) == 12).all() and image[0, 3] == 6 and image[3, 0] == 18
    video = ops.convert_to_numpy(bias_index((1, 2, 2), table, "video"))
    full = ops.convert_to_numpy(relative_position_index(table))
    np.testing.assert_array_equal(video, full[:4, :4])  # SwinTransformer3D: relative_position_index[:N, :N]
    # A 2D window in the one-frame layout indexes exactly as the 2D original's (2w-1)-stride formula.
    w = 3
    coords = np.stack(np.meshgrid(np.arange(w), np.arange(w), indexing="ij")).reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :] + (w - 1)
    np.testing.assert_array_equal(full, rel[0] * (2 * w - 1) + rel[1])


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
