"""The results page's claims tables, generated from a scorecard.json fixture (the format every view reads)."""

from __future__ import annotations

import json
from pathlib import Path

from common.claims import format_table
from common.report.markdown import claims_markdown

FIXTURE = Path(__file__).parent / "fixtures" / "scorecard.json"

EXPECTED = """\
#### Paper claims

| claim | source | paper | expected | measured ± SE | 95 % interval | n | status |
|---|---|---|---|---|---|---|---|
| **gap_shrinks**: The gap shrinks with width | Table 1 (33 -> 7 points) | >= 0.15 | >= 0.15 [paper] | - | - | — \
| not run |
| **retraining_helps**: Retraining the head recovers part of the gap | Table 1, last row (+4 to +12 points) | — \
| > 0 | 0.007 ± 0.0051 | [-0.015, 0.029] | 3 seeds; min over 3 widths | inconclusive |

#### Controls (ours)

| claim | source | paper | expected | measured ± SE | 95 % interval | n | status |
|---|---|---|---|---|---|---|---|
| **noalign_collapses**: No alignment \\| collapses | ours | — | <= 0.2 | 0.1432 ± 0.016 | [0.1125, 0.1739] \
| 500 test examples | reproduced (one training run: the SE is the test set's alone, a lower bound that ignores \
training noise) |

#### Checks

| claim | source | paper | expected | measured ± SE | 95 % interval | n | status |
|---|---|---|---|---|---|---|---|
| **nets_train**: The nets trained | ours | — | >= 0.9 | 0.958 ± 0 | [0.958, 0.958] | 1 run | reproduced |"""


def test_claims_markdown_from_a_scorecard_fixture() -> None:
    rows = json.loads(FIXTURE.read_text())
    assert claims_markdown(rows, {"gap_shrinks": ">= 0.15"}) == EXPECTED


def test_terminal_table_from_the_same_fixture() -> None:
    table = format_table(json.loads(FIXTURE.read_text()))
    assert "0.007 ± 0.0051  [-0.015, 0.029]" in table
    assert table.splitlines()[-1] == ("0 of 2 paper claims reproduced (1 inconclusive, 1 not run); 1 of 1 controls "
                                      "reproduced; 1 of 1 checks passed")
