"""The documented jobs of ``configs/``: every one is a valid job; the local ones run on the
sample data, and write a run summary whose figures add up; a typo in any key is exit 2
naming its path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import yaml

from normcore.cli import main
from normcore.config import build_job, read_config_file
from normcore.sample import write_sample

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ALL = sorted(p.name for p in CONFIGS.glob("*.yaml"))
RUNNABLE = ["local.yaml", "beam_local.yaml", "spark_local.yaml"]
TEMPLATES = ["dataflow.yaml", "spark_cluster.yaml", "spark_connect.yaml"]
#: Keys inside sections that are typed models (a typo there is caught too).
NESTED = re.compile(r"^(\s+)(master|remote|runner|report|batch_size|mostly):", re.MULTILINE)


def test_the_documented_configs_are_all_there() -> None:
    assert set(RUNNABLE + TEMPLATES) <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_config_is_a_valid_job(name: str) -> None:
    job = build_job(read_config_file(str(CONFIGS / name)), name)
    assert job.input and job.artifact and job.output and job.summary
    if name in TEMPLATES:
        assert "<" in (CONFIGS / name).read_text(), "a template shows its placeholders"


@pytest.mark.parametrize("name", RUNNABLE)
def test_a_local_config_runs_on_the_sample_data(name: str, tmp_path: Path, monkeypatch, capsys, request) -> None:
    """``normcore run --config configs/NAME`` in a directory holding the sample data (as
    ``make sample`` writes it): exit 0, and the summary's rows are the output's rows."""
    if "spark" in name:
        request.getfixturevalue("spark")  # the test session's Spark, not a second one
    monkeypatch.chdir(tmp_path)
    write_sample(tmp_path / "data" / "sample", rows=20_000, files=4, seed=3)
    assert main(["run", "--config", str(CONFIGS / name)]) == 0
    job = build_job(read_config_file(str(CONFIGS / name)), name)
    summary = json.loads((tmp_path / job.summary).read_text())
    out = capsys.readouterr().out
    assert f"(KPIs in {job.summary})" in out
    rows = ds.dataset(tmp_path / job.output).count_rows()
    assert summary["rows"] == rows == 20_000
    assert summary["rows_per_s"] * summary["wall_s"] == pytest.approx(rows, rel=1e-12)
    assert summary["cpu_s"] > 0 and summary["cpu_s_per_million_rows"] > 0
    assert summary["conformity_pct"] == pytest.approx(100.0)
    assert (summary["artifact"], summary["output"]) == (job.artifact, job.output)
    assert summary["report"] == job.validation.report
    if "spark" in name:
        assert summary["executor_task_s"] > 0, "the executors' task time is counted"
        expected = (summary["cpu_s"] + summary["executor_task_s"]) * 1e6 / rows
        assert summary["cpu_s_per_million_rows"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_a_typo_in_a_config_is_exit_2_naming_the_key_path(name: str, tmp_path: Path, capsys) -> None:
    text = (CONFIGS / name).read_text()
    typos = [(f"{key}x", re.sub(rf"^{re.escape(key)}:", f"{key}x:", text, count=1, flags=re.MULTILINE))
             for key in yaml.safe_load(text)]  # fmt: skip
    nested = NESTED.search(text)
    assert nested, f"{name} has no typed nested key to misspell"
    section = next(line for line in reversed(text[: nested.start()].splitlines()) if re.match(r"^\w+:", line))
    typos.append((f"{section.split(':')[0]}.{nested.group(2)}x", NESTED.sub(r"\1\2x:", text, count=1)))
    for path, typo in typos:
        config = tmp_path / name
        config.write_text(typo)
        assert main(["run", "--config", str(config)]) == 2
        assert capsys.readouterr().err.strip() == f"error: {config}: {path}: unknown key"
        assert sorted(p.name for p in tmp_path.iterdir()) == [name], "nothing is written"
