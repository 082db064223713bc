"""The PyTorch programs people learn from, unmodified (../shared/clients: nanoGPT, minGPT),
run through `tinygradattn run` for a few iterations each (issue 15).

Each program is copied to a temporary folder (they write next to themselves) and run in a
fresh interpreter without the CUDA simulator, as a user would. Skipped, with the reason, where
../shared is absent.
"""
import math
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
CLIENTS = os.path.join(SHARED, "clients")
TEXT = os.path.join(SHARED, "data", "tinyshakespeare.txt")

pytestmark = pytest.mark.skipif(not os.path.isdir(CLIENTS),
                                reason="../shared/clients (nanoGPT, minGPT) is not beside the "
                                       "repository")


def tga_run(cwd, *args, pythonpath=(), timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, *pythonpath]))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    p = subprocess.run([sys.executable, "-m", "tinygradattn", "run", *args], cwd=cwd,
                       capture_output=True, text=True, env=env, timeout=timeout)
    assert p.returncode == 0, f"{args[0]} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


@pytest.fixture(scope="module")
def nanogpt(tmp_path_factory):
    """A copy of nanoGPT with shakespeare_char prepared by its own prepare.py."""
    root = tmp_path_factory.mktemp("nanogpt") / "nanoGPT"
    shutil.copytree(os.path.join(CLIENTS, "nanoGPT"), root)
    data = root / "data" / "shakespeare_char"
    shutil.copy(TEXT, data / "input.txt")          # prepare.py downloads only without it
    out = tga_run(root, "data/shakespeare_char/prepare.py")
    assert "vocab size: 65" in out and "train has 1,003,854 tokens" in out
    assert (data / "train.bin").stat().st_size == 2 * 1_003_854
    return root


TRAIN_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
              "--dtype=float32", "--eval_iters=2", "--log_interval=5", "--block_size=32",
              "--batch_size=8", "--n_layer=2", "--n_head=2", "--n_embd=32", "--max_iters=30",
              "--eval_interval=15", "--lr_decay_iters=30", "--warmup_iters=5",
              "--learning_rate=3e-3", "--dropout=0.1"]


def test_nanogpt_train_writes_a_checkpoint_and_sample_reads_it(nanogpt):
    out = tga_run(nanogpt, "train.py", *TRAIN_ARGS, "--out_dir=out")
    steps = {int(m.group(1)): (float(m.group(2)), float(m.group(3))) for m in
             re.finditer(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", out)}
    assert sorted(steps) == [0, 15, 30], out
    assert abs(steps[0][0] - math.log(65)) < 0.15, steps      # untrained: ~uniform over 65
    assert steps[30][1] < steps[0][1] - 0.3, steps             # it learns
    assert "saving checkpoint to out" in out
    import tinygradattn as tga
    ckpt = tga.load(nanogpt / "out" / "ckpt.pt")
    assert ckpt["iter_num"] in (15, 30) and ckpt["config"]["dtype"] == "float32"
    assert ckpt["model_args"]["n_layer"] == 2 and ckpt["model_args"]["vocab_size"] == 65
    assert ckpt["best_val_loss"].shape == () and ckpt["best_val_loss"].item() < steps[0][1]
    assert "lm_head.weight" in ckpt["model"] and "state" in ckpt["optimizer"]

    sample = tga_run(nanogpt, "sample.py", "--out_dir=out", "--device=cpu", "--num_samples=2",
                     "--max_new_tokens=40", "--start=ROMEO:", "--compile=False")
    body = sample.split("Loading meta from data/shakespeare_char/meta.pkl...\n", 1)[1]
    texts = [t.strip("\n") for t in body.split("---------------") if t.strip()]
    assert len(texts) == 2 and all(t.startswith("ROMEO:") for t in texts), sample
    assert all(len(t) == len("ROMEO:") + 40 for t in texts), texts       # 40 new characters

    resumed = tga_run(nanogpt, "train.py", *TRAIN_ARGS[:-6], "--max_iters=35",
                      "--eval_interval=35", "--lr_decay_iters=35", "--warmup_iters=5",
                      "--learning_rate=3e-3", "--dropout=0.1", "--init_from=resume",
                      "--out_dir=out")
    assert "Resuming training from out" in resumed and "step 35: train loss" in resumed


@pytest.fixture(scope="module")
def mingpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("mingpt") / "minGPT"
    shutil.copytree(os.path.join(CLIENTS, "minGPT"), root)
    return root


def test_mingpt_adder_trains_and_evaluates(mingpt):
    work = mingpt / "projects" / "adder"
    out = tga_run(work, "adder.py", "--trainer.max_iters=21", pythonpath=[str(mingpt)])
    losses = [float(x) for x in re.findall(r"iter \d+: train loss ([\d.]+)", out)]
    assert len(losses) == 3 and losses[-1] < losses[0], out
    assert re.search(r"test final score: \d+/500 = [\d.]+% correct", out), out
    saved = work / "out" / "adder"                   # its default work_dir, under the cwd
    assert (saved / "model.pt").exists() and (saved / "config.json").exists()


def test_mingpt_chargpt_trains_and_generates(mingpt):
    work = mingpt / "projects" / "chargpt"
    with open(TEXT) as f:
        (work / "input.txt").write_text(f.read()[:20000])
    out = tga_run(work, "chargpt.py", "--trainer.max_iters=3", "--trainer.batch_size=4",
                  "--model.model_type='gpt-nano'", "--data.block_size=32",
                  pythonpath=[str(mingpt)])
    assert "iter 0: train loss" in out and "saving model" in out
    after = out.split("iter 0: train loss", 1)[1].split("\n", 1)[1]
    completion = after.split("\nsaving model", 1)[0]          # generate(x, 500): 500 new chars
    assert completion.startswith("O God, O God!") and len(completion) == 13 + 500, out


def test_mingpt_generate_samples_and_argmaxes(mingpt):
    """GPT.generate as its demo notebooks call it: greedy and top-k sampling, seeded."""
    code = (
        "import torch\n"
        "from mingpt.model import GPT\n"
        "c = GPT.get_default_config()\n"
        "c.model_type = 'gpt-nano'; c.vocab_size = 11; c.block_size = 8\n"
        "torch.manual_seed(0)\n"
        "m = GPT(c); m.eval()\n"
        "x = torch.tensor([[1, 2, 3]], dtype=torch.long)\n"
        "g1 = m.generate(x, 10, do_sample=False)\n"
        "g2 = m.generate(x, 10, do_sample=False)\n"
        "torch.manual_seed(1); s1 = m.generate(x, 10, do_sample=True, top_k=3)\n"
        "torch.manual_seed(1); s2 = m.generate(x, 10, do_sample=True, top_k=3)\n"
        "assert g1.tolist() == g2.tolist() and s1.tolist() == s2.tolist()\n"
        "assert g1.shape == (1, 13) and g1[0, :3].tolist() == [1, 2, 3]\n"
        "assert all(0 <= t < 11 for t in s1[0].tolist())\n"
        "print('generated', g1.tolist(), s1.tolist())\n")
    (mingpt / "gen.py").write_text(code)
    out = tga_run(mingpt, "gen.py", pythonpath=[str(mingpt)])
    assert out.splitlines()[-1].startswith("generated [[1, 2, 3, "), out
