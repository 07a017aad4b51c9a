"""sample.py: it needs only the checkpoint, it is repeatable, and it refuses bad input clearly."""

import pickle

import pytest
import torch

import sample
import train
from conftest import TINY
from prepare import UserError


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]) == 0
    return out


def samples(capsys, argv):
    assert sample.main(argv) == 0
    return capsys.readouterr().out


def test_same_seed_same_text(run_dir, capsys):
    args = ["--out_dir", str(run_dir), "--max_new_tokens", "50", "--num_samples", "2", "--device", "cpu"]
    a, b = samples(capsys, args), samples(capsys, args)
    c = samples(capsys, args + ["--seed", "2"])
    assert a == b and a != c
    assert a.count("---------------- sample") == 2


def test_output_continues_the_prompt(run_dir, capsys):
    out = samples(capsys, ["--out_dir", str(run_dir), "--prompt", "ROMEO:", "--num_samples", "1",
                           "--max_new_tokens", "30"])
    text = out.split("----------------\n", 1)[1]
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 30 + 1  # + print's newline


def test_needs_only_the_checkpoint(run_dir, tmp_path, capsys):
    lone = tmp_path / "elsewhere.pt"
    lone.write_bytes((run_dir / "best.pt").read_bytes())
    assert "sample 1 of 1" in samples(capsys, ["--checkpoint", str(lone), "--num_samples", "1",
                                                "--max_new_tokens", "5"])


def test_empty_prompt_means_newline(run_dir, capsys):
    args = ["--out_dir", str(run_dir), "--max_new_tokens", "20"]
    assert samples(capsys, args + ["--prompt", ""]) == samples(capsys, args + ["--prompt", "\n"])


@pytest.mark.parametrize("argv, message", [
    (["--prompt", "JULIET: ¿qué?"], "'¿' 'é'"),
    (["--temperature", "0"], "must be above 0"),
    (["--top_k", "0"], "must be at least 1"),
    (["--num_samples", "0"], "--num_samples must be at least 1"),
    (["--max_new_tokens", "-1"], "--max_new_tokens at least 0"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "tpu"], "--device"),
    (["--nope"], "unknown argument --nope"),
])
def test_bad_arguments(run_dir, argv, message):
    with pytest.raises(UserError, match=message):
        sample.main(["--out_dir", str(run_dir)] + argv)


def test_no_checkpoint_says_train_first(tmp_path):
    with pytest.raises(UserError, match="no checkpoint at .*python train.py"):
        sample.main(["--out_dir", str(tmp_path)])


class Boom:
    def __reduce__(self):  # what a malicious pickle does: call something on load
        return (exec, ("raise SystemExit('pickle code ran')",))


@pytest.mark.parametrize("content", [
    b"not a checkpoint at all",
    pickle.dumps(Boom(), protocol=2),
    "torch-but-not-ours",
], ids=["garbage", "malicious-pickle", "foreign-torch-file"])
def test_refuses_files_that_are_not_our_checkpoints(tmp_path, content):
    path = tmp_path / "best.pt"
    if content == "torch-but-not-ours":
        torch.save({"model": {"w": torch.zeros(2)}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match="not a checkpoint of this project"):
        sample.main(["--out_dir", str(tmp_path)])
