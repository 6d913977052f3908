"""The batching file the benchmark scenarios hand to their servers is one the server accepts."""

from __future__ import annotations

import pytest

from vswin.bench.localserver import write_batching_parameters
from vswin.serving.batching import read_batching_parameters


def test_batching_parameters_pad_to_allowed_sizes(tmp_path):
    path = write_batching_parameters(tmp_path / "b.txt", max_batch_size=8, allowed_batch_sizes=[1, 2, 4, 8])
    options = read_batching_parameters(path)
    assert options.max_batch_size == 8
    assert options.allowed_batch_sizes == (1, 2, 4, 8)
    assert [options.padded_size(n) for n in (1, 3, 5, 8)] == [1, 4, 8, 8]


def test_batching_parameters_without_allowed_sizes_do_not_pad(tmp_path):
    options = read_batching_parameters(write_batching_parameters(tmp_path / "b.txt", max_batch_size=4))
    assert options.allowed_batch_sizes == ()
    assert options.padded_size(3) == 3


def test_allowed_sizes_must_end_at_max_batch_size(tmp_path):
    path = write_batching_parameters(tmp_path / "b.txt", max_batch_size=8, allowed_batch_sizes=[1, 2])
    with pytest.raises(ValueError, match="max_batch_size"):
        read_batching_parameters(path)
