"""bench.py train in smoke mode: a tiny model, a few steps. It prints numbers; nothing here
asserts how fast anything is."""

import re

import pytest
import torch

import bench
from conftest import TINY
from prepare import UserError


def test_train_benchmark_reports_its_numbers(data_dir, tmp_path, capsys):
    argv = ["train", "--data_dir", str(data_dir), "--out_dir", str(tmp_path / "unused"), *TINY,
            "--steps", "3", "--warmup", "1"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"step time: [\d.]+ ms \(median of 3", out)
    assert re.search(r"throughput: [\d,]+ tokens/s, [\d.,]+ GFLOP/s achieved", out)
    assert re.search(r"memory: [\d,]+ MB, peak resident memory", out)
    assert "128 tokens per step" in out  # 8 x 16 x 1
    assert not (tmp_path / "unused").exists()  # a benchmark writes nothing
    assert bench.main(argv + ["--nan_check", "false"]) == 0  # without the per-step wait for the device
    assert re.search(r"step time: [\d.]+ ms", capsys.readouterr().out)


def test_time_to_target(data_dir, capsys):
    argv = ["train", "--data_dir", str(data_dir), *TINY, "--warmup", "1", "--optimizer", "muon"]
    assert bench.main(argv + ["--target", "9.0"]) == 0  # reached at the first evaluation
    assert re.search(r"reached val loss [\d.]+ <= 9.0 at iteration 4: [\d.]+ s of training", capsys.readouterr().out)
    assert bench.main(argv + ["--target", "0.1"]) == 1
    out = capsys.readouterr().out
    assert out.count("training time") == 3 and "did not reach val loss 0.1 in 12 iterations" in out


def test_flops_per_token_counts_weights_and_attention():
    from model import GPT, GPTConfig
    model = GPT(GPTConfig(block_size=256, vocab_size=65, n_layer=6, n_head=6, n_embd=384))
    assert bench.flops_per_token(model) == 6 * 10_646_784 + 12 * 6 * 256 * 384  # about 71 MFLOP, as the guide says
    assert round(bench.flops_per_token(model) / 1e6) == 71


def test_bad_benchmark_flags():
    with pytest.raises(UserError, match="--steps 0 must be at least 1"):
        bench.main(["train", "--steps", "0"])
    with pytest.raises(UserError, match="did you mean --target"):
        bench.main(["train", "--targt", "1.5"])


def test_suite_runs_its_jobs_and_keeps_their_logs(data_dir, tmp_path, capsys):
    """The GPU measurement set, in smoke mode on the CPU: each job a process, each log kept."""
    out = tmp_path / "bench"
    argv = ["suite", "--device", "cpu", "--smoke", "--data_dir", str(data_dir), "--out_dir", str(out)]
    assert bench.main(argv + ["--jobs", "classic-step,classic-train,sample"]) == 0
    assert {p.name for p in out.iterdir()} == {"classic-step.log", "classic-train.log", "sample.log", "classic",
                                               "summary.txt"}
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("machine: ") and "torch " + torch.__version__ in summary
    for job, number in (("classic-step", "step time: "), ("classic-train", "best val loss "),
                        ("sample", "speed-up of the cache: ")):
        assert re.search(rf"== {job} \(exit 0, \d+ s\): python .*\n(   .*\n)*   {number}", summary)
    assert (out / "classic" / "best.pt").is_file()  # the sample job timed the classic job's model
    capsys.readouterr()
    assert bench.main(argv + ["--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in listed] == list(bench.suite_jobs(out, 1.47))
    assert all("--device cpu" in line for line in listed if "pytest" not in line)


def test_suite_refuses_what_it_cannot_do_before_it_starts(tmp_path):
    with pytest.raises(UserError, match="unknown job 'speed' — choose from cuda-tests, classic-step"):
        bench.main(["suite", "--jobs", "classic-step,speed", "--list"])
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write in .*file/bench .* — choose another --out_dir"):
        bench.main(["suite", "--device", "cpu", "--out_dir", str(tmp_path / "file" / "bench")])
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="--device cuda, but PyTorch sees no CUDA GPU"):
            bench.main(["suite", "--out_dir", str(tmp_path / "bench")])  # cuda is the suite's default
        assert not (tmp_path / "bench").exists()
