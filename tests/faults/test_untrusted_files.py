"""Untrusted files: a checkpoint that would run code when unpickled is refused and the code never runs;
config values are data, never evaluated."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch

from tests.harness import REPO, TINY, cli, refusal_line


class Payload:
    """Unpickling this calls Path.touch(marker): any loader that runs pickled code creates the marker."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_torch_file_with_a_code_running_pickle_is_refused_and_nothing_runs(tmp_path, trained_run):
    marker = tmp_path / "pwned"
    checkpoint = torch.load(trained_run / "checkpoints" / "latest.pt", weights_only=True)
    checkpoint["agent"]["actor"]["extra"] = Payload(marker)  # a valid-looking checkpoint carrying the payload
    torch.save(checkpoint, tmp_path / "crafted.pt")
    for command, args in (("sac-eval", [f"checkpoint={tmp_path / 'crafted.pt'}", "episodes=1"]),
                          ("sac-train", [*TINY, f"resume={tmp_path / 'crafted.pt'}"]),
                          ("sac-train", [*TINY, f"init_from={tmp_path / 'crafted.pt'}"]),
                          ("sac-export", [f"checkpoint={tmp_path / 'crafted.pt'}"])):
        proc = cli(command, tmp_path, *args)
        assert proc.returncode == 2, (command, proc.stderr[-2000:])
        assert refusal_line(proc) == (f"error: {tmp_path / 'crafted.pt'} contains objects other than plain tensors "
                                    "and containers and was refused unloaded (weights_only); only load checkpoints "
                                    "written by sac-train"), command
        assert not marker.exists(), f"{command} ran the pickled code"


def test_a_plain_pickle_file_is_refused_unread(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    proc = cli("sac-eval", tmp_path, f"checkpoint={tmp_path / 'model.pkl'}")
    assert proc.returncode == 2
    assert refusal_line(proc).startswith(f"error: {tmp_path / 'model.pkl'} is not a sac-runner checkpoint (not a torch archive")
    assert not marker.exists()


def test_a_crafted_replay_buffer_file_is_refused_on_resume(tmp_path, trained_run):
    """The buffer sits beside the checkpoint in its own file: it is loaded just as carefully."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, symlinks=True)
    marker = tmp_path / "pwned"
    (buffer_file,) = (run / "checkpoints").glob("*.buffer.pt")
    torch.save({"obs": Payload(marker)}, buffer_file)
    proc = cli("sac-train", tmp_path, *TINY, f"resume={run}", "schedule.total_steps=600")
    assert proc.returncode == 2
    assert "contains objects other than plain tensors and containers and was refused" in refusal_line(proc)
    assert not marker.exists()


@pytest.mark.parametrize("override", [
    "env.id=__import__('os').system('touch pwned')",
    "agent.alpha=__import__('os').system('touch pwned')",
    "env.id=${eval:__import__('os').system('touch pwned')}",  # no resolver named eval exists
])
def test_config_strings_are_data_never_evaluated(tmp_path, override):
    proc = cli("sac-train", tmp_path, *TINY, override)
    assert proc.returncode == 2
    assert refusal_line(proc).startswith("error: ")
    assert not (tmp_path / "pwned").exists()


def test_no_code_evaluates_strings_or_unpickles_outside_weights_only():
    """The package never calls eval/exec, Hydra's instantiate (which imports what a config names),
    yaml.load or pickle.load, and every torch.load is weights_only=True."""
    forbidden = re.compile(r"(?<![.\w])(eval|exec|__import__)\(|instantiate\(|yaml\.(unsafe_)?load\(|pickle\.loads?\(|"
                           r"import_module\(")
    sources = sorted((REPO / "sac_runner").rglob("*.py"))
    assert len(sources) > 20 and any(p.parent.name == "run" for p in sources)  # every layer is scanned
    for source in sources:
        code = "\n".join(line.split("#")[0] for line in source.read_text().splitlines())
        assert not forbidden.search(code), f"{source.name}: {forbidden.search(code).group(0)}"
        for call in re.findall(r"torch\.load\([^)]*\)", code):
            assert "weights_only=True" in call, f"{source.name}: {call}"
