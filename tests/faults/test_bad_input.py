"""Bad input: exactly one line on stderr saying what is wrong and how to fix it, exit code 2, no traceback,
and no run started."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from tests.harness import TINY, cli, group_options, refusal_line

ENV_GROUP = ", ".join(group_options("env"))
LAUNCHERS = ", ".join(group_options("hydra/launcher"))  # the launcher plugins installed here


@pytest.mark.parametrize("args, message", [
    # environments
    (["env.id=HalfCheeta-v5"], "unknown environment id 'HalfCheeta-v5'; did you mean HalfCheetah-v5, HalfCheetah-v4, "
                               "HalfCheetah-v3? (env.id=...)"),
    (["env.id=tests.toy_envs:BrokenInit-v0"], "environment 'tests.toy_envs:BrokenInit-v0' could not be built: "
     "FileNotFoundError: model file robot.xml not found; check env.kwargs and that its package is installed"),
    (["env.id=tests.toy_envs:MultiDiscreteActions-v0"], "environment 'tests.toy_envs:MultiDiscreteActions-v0' has a "
     "MultiDiscrete action space; sac-runner supports Box (continuous SAC) and Discrete (discrete SAC) actions"),
    (["env.id=tests.toy_envs:TextObs-v0"], "environment 'tests.toy_envs:TextObs-v0' has observation space Text(1, 5, "
     "charset=0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz), which sac-runner cannot flatten; supported: "
     "Box, Discrete, MultiBinary, MultiDiscrete and Dict/Tuple of those"),
    # values out of range, of the wrong type, unknown keys, misspelled options, bad syntax
    (["agent.gamma=1.5"], "agent.gamma must be in (0, 1], got 1.5; set agent.gamma=0.99 or another value in (0, 1]"),
    (["schedule.total_steps=-5"], "schedule.total_steps must be positive, got -5; set schedule.total_steps to a "
                                  "positive integer"),
    (["agent.gamma=abc"], "agent.gamma: Value 'abc' of type 'str' could not be converted to Float; give e.g. "
                          "agent.gamma=0.99 (its default)"),
    (["seed=1.5"], "seed: Value '1.5' of type 'float' could not be converted to Integer; give e.g. seed=0 (its default)"),
    (["seed=-1"], "seed must be in 0 .. 4294967295 (2**32 - 1), got -1; set seed=0 or another non-negative integer"),
    (["seed=4294967296"], "seed must be in 0 .. 4294967295 (2**32 - 1), got 4294967296; set seed=0 or another "
                          "non-negative integer"),
    (["agent.gamm=0.9"], "unknown key agent.gamm; did you mean agent.gamma? `sac-train --cfg job` prints every key "
                         "and its value"),
    (["+agent.foo=1"], "unknown key agent.foo: sac-runner has no such setting (added with +?); `sac-train --cfg job` "
                       "prints every key and its value"),
    (["env.kwargs.reward_scale=2"], "unknown key env.kwargs.reward_scale; add a new key with "
                                    "+env.kwargs.reward_scale=<value>"),
    # keys that moved to the group that owns them (sac-runner 0.2)
    (["schedule.policy_update_every=2"], "schedule.policy_update_every is now agent.policy_update_every (moved in "
                                         "sac-runner 0.2); write agent.policy_update_every=<value> instead"),
    (["agent.nan_guard=false"], "agent.nan_guard is now nan_guard (moved in sac-runner 0.2); write "
                                "nan_guard=<value> instead"),
    (["+agent.init_from=run"], "agent.init_from is now init_from (moved in sac-runner 0.2); write init_from=<value> "
                               "instead"),
    (["env=halfchetah"], f"env=halfchetah: no such option in group 'env'; did you mean halfcheetah? available: {ENV_GROUP}"),
    (["hydra/launcher=joblibb"], "hydra/launcher=joblibb: no such option in group 'hydra/launcher'; did you mean "
     f"joblib? available: {LAUNCHERS}"),
    (["agent.hidden_sizes=[256,"], "cannot parse the override: no viable alternative at input '[256,'; overrides are "
     "key=value, e.g. agent.alpha=0.2 or agent.hidden_sizes=[256,256]"),
])
def test_bad_training_input_is_one_line_and_exit_2(tmp_path, args, message):
    proc = cli("sac-train", tmp_path, *TINY, *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert refusal_line(proc) == f"error: {message}"
    assert not list(tmp_path.glob("outputs/runs/*/checkpoints")), "a run started"
    assert not (tmp_path / "outputs").exists(), "a refused command left files behind"


@pytest.fixture
def run_dir(trained_run):
    return trained_run


def largest_tensor_record(path) -> zipfile.ZipInfo:
    with zipfile.ZipFile(path) as archive:
        return max((info for info in archive.infolist() if "/data/" in info.filename), key=lambda info: info.file_size)


def flip_one_byte_of_tensor_data(source, target):
    """Change one byte inside the largest tensor's data, leaving the zip readable (torch.load alone would
    return the changed weight without a word)."""
    data = bytearray(source.read_bytes())
    record = largest_tensor_record(source)
    data[record.header_offset + 30 + len(record.filename.encode()) + 64 + record.file_size // 2] ^= 0x01
    target.write_bytes(bytes(data))


def other_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")


CHECKPOINT_CASES = {
    "missing": (lambda d, run: d / "missing.pt", "checkpoint not found: {path}; pass checkpoint=<run dir or .pt file "
                "written by sac-train>"),
    "no checkpoint in dir": (lambda d, run: d, "no checkpoint in directory {path}; pass a .pt file or a run directory "
                             "that contains checkpoints/latest.pt"),
    "truncated": (lambda d, run: (d / "cut.pt").write_bytes((run / "checkpoints" / "latest.pt").read_bytes()[:5000])
                  and d / "cut.pt", "{path} is not a sac-runner checkpoint (not a torch archive; truncated, corrupted "
                  "or from another program); pass a file written by sac-train"),
    "one byte flipped": (lambda d, run: flip_one_byte_of_tensor_data(run / "checkpoints" / "latest.pt", d / "flip.pt")
                         or d / "flip.pt", "{path} is corrupted: its record {record} fails its CRC-32 "
                         "checksum; use an earlier checkpoints/step_*.pt, or copy the file again"),
    "numpy file": (lambda d, run: np.save(d / "weights.npy", np.zeros(3)) or d / "weights.npy",
                   "{path} is not a sac-runner checkpoint (not a torch archive; truncated, corrupted or from another "
                   "program); pass a file written by sac-train"),
    "another zip": (lambda d, run: other_zip(d / "model.pt") or d / "model.pt", "{path} is not a sac-runner checkpoint "
                    "(a zip archive, but not one torch.save wrote); pass a file written by sac-train"),
    "another program's torch file": (lambda d, run: torch.save({"state_dict": {}}, d / "sb3.pt") or d / "sb3.pt",
                                     "{path} is not a sac-runner checkpoint; pass a file written by sac-train"),
}


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_a_bad_checkpoint_is_one_line_and_exit_2(tmp_path, run_dir, case):
    make, message = CHECKPOINT_CASES[case]
    path = make(tmp_path, run_dir)
    if case == "one byte flipped":
        message = message.replace("{record}", largest_tensor_record(path).filename)
    for command, args in (("sac-eval", [f"checkpoint={path}"]), ("sac-train", [*TINY, f"resume={path}"])):
        proc = cli(command, tmp_path, *args)
        assert proc.returncode == 2, (command, proc.stderr[-2000:])
        assert refusal_line(proc) == "error: " + message.format(path=path), command


def test_a_checkpoint_for_other_spaces_is_refused(tmp_path, run_dir):
    proc = cli("sac-eval", tmp_path, f"checkpoint={run_dir}", "env_id=InvertedPendulum-v5")
    assert proc.returncode == 2
    assert refusal_line(proc) == (f"error: {run_dir / 'checkpoints' / 'latest.pt'} was trained with observation size 3 "
                                "and action size 1, but InvertedPendulum-v5 has 4 and 1; evaluate it on an environment "
                                "with the same spaces (or leave env_id unset)")
    proc = cli("sac-train", tmp_path, *TINY, "env=cartpole", f"init_from={run_dir}")
    assert proc.returncode == 2
    assert refusal_line(proc) == (f"error: init_from={run_dir} was trained with observation size 3 and action "
                                "size 1, but this environment has 4 and 2; warm-start from a run on the same spaces")


def test_resume_into_another_environment_is_refused(tmp_path, run_dir):
    proc = cli("sac-train", tmp_path, *TINY, f"resume={run_dir}", "env.id=CartPole-v1", "schedule.total_steps=600")
    assert proc.returncode == 2
    assert refusal_line(proc) == ("error: resume: env.id would change the experiment (env.id: Pendulum-v1 -> CartPole-v1; "
                                f"the run is {run_dir / 'checkpoints' / 'latest.pt'}); drop that override, or start a "
                                "new run without resume=")


def test_a_missing_mandatory_value_is_one_line(tmp_path):
    proc = cli("sac-eval", tmp_path)
    assert proc.returncode == 2
    assert refusal_line(proc) == "error: checkpoint is required; give checkpoint=<value> (`sac-eval --help` says what it takes)"
    assert not (tmp_path / "outputs").exists()  # Hydra's eval directory, created before the refusal, is gone


def test_a_new_run_never_writes_over_an_existing_one(tmp_path, trained_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, symlinks=True)
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").glob("step_*")}
    metrics = (run / "metrics.jsonl").read_bytes()
    hydra_record = {p.name: p.read_bytes() for p in (run / ".hydra").glob("*.yaml")}
    proc = cli("sac-train", tmp_path, *TINY, f"hydra.run.dir={run}")
    assert proc.returncode == 2
    assert refusal_line(proc) == (f"error: {run} already holds a run (its checkpoints/latest.pt); continue it with: "
                                f"sac-train resume={run}, or start this run in another directory (hydra.run.dir=...)")
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").glob("step_*")} == before
    assert (run / "metrics.jsonl").read_bytes() == metrics
    assert {p.name: p.read_bytes() for p in (run / ".hydra").glob("*.yaml")} == hydra_record  # Hydra's record too


def test_hydra_full_error_still_shows_the_whole_traceback(tmp_path):
    from tests.harness import cli_env

    proc = cli("sac-train", tmp_path, "env=halfchetah", env=cli_env(HYDRA_FULL_ERROR="1"), timeout=120)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "MissingConfigException: In 'config': Could not find 'env/halfchetah'" \
        in proc.stderr


def test_a_buffer_that_cannot_fit_in_memory_is_refused_before_allocating(tmp_path):
    import re

    proc = cli("sac-train", tmp_path, *TINY, "buffer.capacity=1_000_000_000_000")
    assert proc.returncode == 2
    match = re.fullmatch(r"error: buffer\.capacity=1_000_000_000_000 needs 20\.9 TiB \(23 bytes per transition\) but "
                         r"[\d.]+ [KMGT]iB of memory is available; buffer\.capacity=([\d_]+) would fit", refusal_line(proc))
    assert match, refusal_line(proc)
    from sac_runner.run.hardware import available_memory
    assert 0 < int(match.group(1).replace("_", "")) * 23 <= available_memory()
    assert not (tmp_path / "outputs").exists()


def test_eval_seed_out_of_range_is_one_line_and_leaves_nothing(tmp_path, run_dir):
    proc = cli("sac-eval", tmp_path, f"checkpoint={run_dir}", "seed=-5")
    assert proc.returncode == 2
    assert refusal_line(proc) == ("error: seed must be in 0 .. 4294967295 (2**32 - 1), got -5; set seed=0 or another "
                                "non-negative integer")
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("fmt, kind, how", [("torchscript", "TorchScript", "torch.jit.load"),
                                            ("onnx", "ONNX", "onnxruntime.InferenceSession")])
def test_an_exported_policy_given_as_a_checkpoint_says_what_it_is(tmp_path, run_dir, fmt, kind, how):
    exported = tmp_path / f"policy.{'pt' if fmt == 'torchscript' else 'onnx'}"
    proc = cli("sac-export", tmp_path, f"checkpoint={run_dir}", f"format={fmt}", f"output={exported}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for command, args in (("sac-eval", [f"checkpoint={exported}"]), ("sac-train", [*TINY, f"resume={exported}"])):
        proc = cli(command, tmp_path, *args)
        assert proc.returncode == 2, (command, proc.stderr[-2000:])
        assert refusal_line(proc) == (f"error: {exported} is a policy exported by sac-export ({kind}), not a checkpoint: "
                                    f"run it with {how} (docs/runs-and-faults.md, Export), or give the run it came from "
                                    "(checkpoint=<run dir>)")
        assert "weights_only" not in proc.stderr


def test_a_refused_resume_leaves_the_run_exactly_as_it_was(tmp_path, trained_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, symlinks=True)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = cli("sac-train", tmp_path, *TINY, f"resume={run}", "env=halfcheetah")
    assert proc.returncode == 2
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in (run / ".hydra").iterdir()) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
