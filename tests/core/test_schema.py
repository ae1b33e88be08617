"""The measurement table schema and its CSV/JSON round trip (core/schema.py, io/table.py)."""

import json
import math
from pathlib import Path

import pytest

from vertebrafat.core.errors import InputError
from vertebrafat.core.schema import COLUMNS, KEY_COLUMNS, LevelMeasurement
from vertebrafat.io.table import load_table, save_table, table_to_csv

DESIGN_HEADER = (
    "subject,scan,level,label,n_voxels,n_slices,volume_ml,ff_mean,ff_median,ff_sd,ff_p05,"
    "ff_p95,erosion_mm,slices,flags"
)


def _row(level: str = "L3", label: int = 22, ff: float = 34.25) -> LevelMeasurement:
    return LevelMeasurement(
        subject="S01", scan="1", level=level, label=label, n_voxels=1200, n_slices=5,
        volume_ml=9.6, ff_mean=ff, ff_median=34.0, ff_sd=3.5, ff_p05=28.0, ff_p95=40.5,
        erosion_mm=1.0, slices="mid5", flags=("partial_fov", "low_volume"),
    )


def test_columns_are_the_design_schema() -> None:
    assert ",".join(COLUMNS) == DESIGN_HEADER


def test_csv_text_is_exact() -> None:
    text = table_to_csv([_row()])
    assert text == (
        DESIGN_HEADER + "\n"
        "S01,1,L3,22,1200,5,9.6,34.25,34.0,3.5,28.0,40.5,1.0,mid5,partial_fov;low_volume\n"
    )


def test_csv_round_trip_keeps_values_and_nan(tmp_path: Path) -> None:
    rows = [_row(), _row(level="L4", label=23, ff=math.nan)]
    save_table(rows, tmp_path / "bmf.csv")
    back = load_table(tmp_path / "bmf.csv")
    assert back[0] == rows[0]
    assert math.isnan(back[1].ff_mean)
    assert back[1].level == "L4" and back[1].flags == ("partial_fov", "low_volume")


def test_json_has_null_for_nan_and_flag_list(tmp_path: Path) -> None:
    save_table([_row(ff=math.nan)], tmp_path / "bmf.json")
    data = json.loads((tmp_path / "bmf.json").read_text())
    assert data[0]["ff_mean"] is None
    assert data[0]["flags"] == ["partial_fov", "low_volume"]
    assert list(data[0]) == list(COLUMNS)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("a,b\n1,2\n", "missing columns 'subject', 'scan'", id="wrong-header"),
        pytest.param(
            DESIGN_HEADER + "\nS,1,L1,20,x,1,1,1,1,1,1,1,1,all,\n", "line 2", id="bad-int"
        ),
    ],
)
def test_load_table_rejects_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_table(path)
    assert str(path) in str(info.value)


def test_load_table_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_table(tmp_path / "absent.csv")


MINIMAL = (*KEY_COLUMNS, "ff_mean")


def test_load_table_reads_a_hand_made_table_of_the_four_columns(tmp_path: Path) -> None:
    path = tmp_path / "manual.csv"
    path.write_text("subject,scan,level,ff_mean\nS01,2,L3,34.2\nS01,2,X9,\n")
    first, second = load_table(path, required=MINIMAL)
    assert (first.subject, first.scan, first.level) == ("S01", "2", "L3")
    assert (first.label, first.n_voxels, first.n_slices, first.ff_mean) == (22, 0, 0, 34.2)
    assert all(math.isnan(v) for v in (first.volume_ml, first.ff_median, first.erosion_mm))
    assert first.slices == "" and first.flags == ()
    assert (second.label, math.isnan(second.ff_mean)) == (0, True)  # unknown level, no value


def test_load_table_names_the_file_and_the_missing_required_column(tmp_path: Path) -> None:
    path = tmp_path / "manual.csv"
    path.write_text("subject,scan,level,ff_median\nS01,1,L3,34.2\n")
    with pytest.raises(InputError) as info:
        load_table(path, required=MINIMAL)
    assert str(info.value) == (f"{path}: missing column 'ff_mean' (this table needs subject, "
                               f"scan, level, ff_mean)")
    with pytest.raises(InputError, match="missing columns 'label', 'n_voxels'"):
        load_table(path)  # the whole schema by default
