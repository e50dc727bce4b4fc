"""Pipeline options reach the pipeline: config section, --runner and pass-through Beam options."""

from __future__ import annotations

import os
from pathlib import Path

import apache_beam as beam
import beam_support
import pytest
from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that

import pipelines.beam.engine as beam_engine
from normcore.cli import main
from normcore.config import JobConfig
from normcore.errors import ConfigError
from pipelines.beam.options import create_pipeline, pipeline_options, results_are_local

# Fixtures shared by the Beam test modules (defined in beam_support).
table, data_dir = beam_support.table, beam_support.data_dir


def test_config_runner_and_argv_merge_with_argv_last() -> None:
    job = JobConfig(engine="beam", beam={"runner": "DirectRunner",
                                         "options": {"direct_num_workers": 3, "experiments": ["a", "b"]}})
    options = pipeline_options(job, ["--direct_num_workers=2", "--temp_location=/tmp/x"])
    assert options.view_as(DirectOptions).direct_num_workers == 2
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    assert options.view_as(GoogleCloudOptions).temp_location == "/tmp/x"
    assert options.get_all_options()["experiments"] == ["a", "b"]


def test_unknown_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--direct_num_wokers"):
        pipeline_options(JobConfig(engine="beam"), ["--direct_num_wokers=2"])


def test_local_default_is_fn_api_runner_and_remote_runners_pass_through() -> None:
    local = create_pipeline(pipeline_options(JobConfig(engine="beam"), ["--direct_running_mode=multi_threading"]))
    assert isinstance(local.runner, FnApiRunner)
    assert local.options.view_as(DirectOptions).direct_running_mode == "multi_threading"
    flink = pipeline_options(JobConfig(engine="beam", beam={"runner": "FlinkRunner"}),
                             ["--flink_master=localhost:8081", "--environment_type=LOOPBACK"])
    remote = create_pipeline(flink)
    assert type(remote.runner).__name__ == "FlinkRunner"
    assert remote.options.get_all_options()["flink_master"] == "localhost:8081"
    assert results_are_local(flink)  # LOOPBACK: the Python workers run in this process


def test_cli_options_reach_the_engine_pipeline(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    seen = []

    def recording_create_pipeline(options):
        seen.append(options.get_all_options())
        return create_pipeline(options)

    monkeypatch.setattr(beam_engine, "create_pipeline", recording_create_pipeline)
    config = tmp_path / "job.yaml"
    config.write_text("beam:\n  options: {direct_running_mode: multi_threading, direct_num_workers: 3}\n")
    code = main(["fit", str(data_dir), "--artifact", str(tmp_path / "a.json"), "--engine", "beam",
                 "--config", str(config), "--runner", "DirectRunner", "--direct_num_workers=2",
                 "--features", "offset"])
    assert code == 0
    (options,) = seen
    assert options["runner"] == "DirectRunner"
    assert options["direct_running_mode"] == "multi_threading"
    assert options["direct_num_workers"] == 2


def test_multi_processing_options_run_workers_in_other_processes() -> None:
    driver = os.getpid()
    job = JobConfig(engine="beam")
    pipeline = create_pipeline(
        pipeline_options(job, ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    )
    pids = pipeline | "Create" >> beam.Create(range(8)) | "Pid" >> beam.Map(lambda _: os.getpid())

    def check(values):
        assert len(values) == 8 and driver not in values

    assert_that(pids, check)
    pipeline.run().wait_until_finish()


def test_remote_runner_without_temp_location_is_exit_2(data_dir: Path, tmp_path: Path, capsys) -> None:
    code = main(["fit", str(data_dir), "--artifact", str(tmp_path / "a.json"), "--engine", "beam",
                 "--runner", "DataflowRunner"])
    assert code == 2
    assert "--temp_location" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_temp_location_carries_results_and_is_cleaned(data_dir: Path, tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    code = main(["fit", str(data_dir), "--artifact", str(tmp_path / "a.json"), "--engine", "beam",
                 "--features", "offset", f"--temp_location={temp}"])
    assert code == 0 and (tmp_path / "a.json").exists()
    assert [p for p in temp.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Traceback ...\n  raise InputError(\nnormcore.errors.InputError: column 'v' has no finite value "
         "[while running 'ComputeStats/BuildArtifact']\n", ("InputError", "column 'v' has no finite value")),
        ("RuntimeError: Pipeline failed\nnormcore.errors.ArtifactError: batch lacks key column 'k'",
         ("ArtifactError", "batch lacks key column 'k'")),
        ("ValueError: something else entirely", None),
        ("normcore.errors.CheckFailed: not a usage error", None),
    ],
)
def test_worker_tracebacks_map_back_to_normcore_errors(text: str, expected) -> None:
    from normcore.errors import error_from_traceback
    from pipelines.beam.engine import _first_line

    error = error_from_traceback(text)
    if expected is None:
        assert error is None
    else:
        assert (type(error).__name__, _first_line(str(error))) == expected


@pytest.mark.parametrize(
    "runner",
    [
        "FnApiRunner",
        "fnapirunner",
        "DirectRunner",
        "direct",
        "apache_beam.runners.portability.fn_api_runner.FnApiRunner",
    ],
)
def test_every_name_beam_gives_a_local_runner_runs_in_process(data_dir: Path, tmp_path: Path, runner: str) -> None:
    """Beam's own dotted name of the FnApiRunner is as local as ``FnApiRunner`` (no --temp_location)."""
    options = pipeline_options(JobConfig(engine="beam", beam={"runner": runner}))
    assert isinstance(create_pipeline(options).runner, FnApiRunner)
    code = main(["fit", str(data_dir), "--artifact", str(tmp_path / "a.json"), "--engine", "beam",
                 "--runner", runner, "--features", "offset"])
    assert code == 0


@pytest.mark.parametrize(
    "runner, message",
    [
        ("NoSuchRunner", "unknown Beam runner 'NoSuchRunner'; expected one of"),
        ("apache_beam.runners.nowhere.Runner", "runner 'apache_beam.runners.nowhere.Runner' cannot be imported"),
        ("apache_beam.runners.runner.NoRunner", "module 'apache_beam.runners.runner' has no runner 'NoRunner'"),
    ],
)
def test_an_unknown_runner_is_named_before_any_data_is_read(
    data_dir: Path, tmp_path: Path, capsys, runner: str, message: str
) -> None:
    code = main(["fit", str(data_dir), "--artifact", str(tmp_path / "a.json"), "--engine", "beam", "--runner", runner])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert "--temp_location" not in err[0]
    assert list(tmp_path.iterdir()) == []
