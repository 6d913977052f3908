"""Per-stage cases of `vswin bench model`: the stage list, case labels, and the table of gains per stage."""

from __future__ import annotations

import pytest

from vswin.bench.case import Case
from vswin.bench.model import gains, stage_list


def test_stages_are_indices_of_the_arch_and_all_means_every_stage_then_the_model(micro_arch):
    assert stage_list("model", str(micro_arch)) == [None]
    assert stage_list("0,3,model", str(micro_arch)) == [0, 3, None]
    assert stage_list("all", str(micro_arch)) == [0, 1, 2, 3, None]


@pytest.mark.parametrize("text, message", [("4", "'4' is not a stage"), ("first", "'first' is not a stage"),
                                           ("1,1", "repeats")])  # fmt: skip
def test_a_stage_the_arch_lacks_is_a_clear_error(micro_arch, text, message):
    with pytest.raises(ValueError, match=message):
        stage_list(text, str(micro_arch))


def test_a_stage_case_is_labelled_and_a_whole_model_case_reads_as_before():
    case = Case("swin_t", 32, 224, 1, "w.pth", stage=0)
    assert case.label == "swin_t@1x32x224x224:stage0"
    assert Case.from_dict(case.to_dict()) == case
    whole = Case("swin_t", 32, 224, 1, "w.pth")
    assert "stage" not in whole.to_dict()  # workers of revisions without stages read it
    with pytest.raises(ValueError, match="stage must be >= 0"):
        Case("swin_t", 32, 224, 1, "w.pth", stage=-1)


def _case(stage, batch, gain):
    entry = {"status": "ok", "speedup_vs_baseline": {"median": gain, "min": gain - 0.1, "max": gain + 0.1}}
    return {"status": "ok", "label": "x", "case": {"stage": stage, "batch": batch},
            "arms": {"tf": entry, "tf@main": {"status": "ok"}}}  # fmt: skip


def test_gains_table_has_a_column_per_stage_and_a_row_per_arm_with_a_baseline():
    table = gains([_case(0, 1, 1.5), _case(None, 1, 1.2)])
    header, row = table.splitlines()[1:]
    assert header.split() == ["arm", "stage0", "model"]
    assert row.split() == ["tf", "1.50x", "[1.40-1.60]", "1.20x", "[1.10-1.30]"]
    assert "b2" in gains([_case(0, 1, 1.5), _case(0, 2, 1.4)]).splitlines()[1]
    assert gains([{"status": "ok", "label": "x", "case": {"batch": 1}, "arms": {"tf": {"status": "ok"}}}]) == ""
