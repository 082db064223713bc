"""The `tinygradattn` command (also `python -m tinygradattn`).

    tinygradattn train                       # the main job: digits -> English words, ~2 min
    tinygradattn train --task charlm --data input.txt --preset nano
    tinygradattn train --task reverse|sort|copy|moons
    tinygradattn train --resume [--name NAME]
    mpiexec -n 2 tinygradattn train          # data parallel over 2 processes (any task)
    tinygradattn translate --ckpt runs/numwords 40512 7
    tinygradattn sample --ckpt runs/charlm --prompt "ROMEO:" --max-new-tokens 200
    tinygradattn run train.py --device=cpu   # an unmodified PyTorch script, on tinygradattn
    tinygradattn run --check path/to/code    # the torch names it uses that tinygradattn lacks
    tinygradattn bench

Importing this module is cheap: the tensor library, the task and matplotlib are imported only
when a command runs. Bad arguments (an unknown task, a missing file, a bad number, a
checkpoint of another model or a damaged one, an --out that is a file or not writable, a
--batch-size whose estimated memory exceeds the machine's) give one line on stderr and exit
code 2, never a traceback. `train --resume` of a run that already reached its last step says
the run is complete (with its last evaluation) and exits 0 without training. Ctrl-C during training saves a checkpoint and exits with code 130.

`train` under mpiexec (Open MPI's OMPI_COMM_WORLD_SIZE or MPICH's PMI_SIZE > 1 in the
environment, or --distributed) joins the MPI job (tga.distributed.init) and trains data
parallel: --batch-size is the global batch, split evenly over the ranks (see train/trainer.py);
rank 0 alone prints, writes and evaluates. Without those, nothing imports mpi4py. With
--device cuda each rank takes cuda:(local rank % GPUs) (see _select_gpu); the collectives are
host-staged.
"""
import argparse
import math
import os
import sys

_RANK = 0                 # this process's rank once train joined an MPI job (rank 0 prints)

TASKS = ("numwords", "charlm", "reverse", "sort", "copy", "moons")
PRESETS = ("nano", "small", "base")


class UsageError(Exception):
    """A bad argument found after parsing (a missing file, a checkpoint that does not fit)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive(kind):
    """An argparse type: a number of `kind` (int or float) that is > 0."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a{'n integer' if kind is int else ' number'}, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(
                f"must be {'an integer' if kind is int else 'a finite number'} > 0, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _non_negative_int(text):
    """An argparse type: an integer >= 0 (a count of steps that may be zero)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def build_parser():
    parser = _Parser(prog="tinygradattn",
                     description="tinygradattn: a from-scratch autograd library. Commands "
                                 "train small models (translation, character-level GPT) on "
                                 "the CPU, sample from them and benchmark the kernels.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_train(sub)
    s = sub.add_parser("sample", help="generate text from a charlm checkpoint",
                       description="Generate text from a trained charlm run.")
    s.add_argument("--ckpt", required=True, help="run directory (runs/NAME) or checkpoint file")
    s.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    s.add_argument("--max-new-tokens", type=_positive(int), default=300,
                   help="characters to generate (default: %(default)s)")
    s.add_argument("--temperature", type=_positive(float), default=1.0,
                   help="softmax temperature (default: %(default)s)")
    s.add_argument("--top-k", type=_positive(int), default=None,
                   help="sample among the k most likely characters only")
    s.add_argument("--seed", type=_integer, default=0, help="sampling seed (default: 0)")
    t = sub.add_parser("translate", help="translate numbers with a trained numwords run",
                       description="Translate integers to English words with a trained "
                                   "numwords (or reverse/sort/copy) run; greedy decoding.")
    t.add_argument("--ckpt", default=os.path.join("runs", "numwords"),
                   help="run directory or checkpoint file (default: %(default)s)")
    t.add_argument("--beam", type=_positive(int), default=1,
                   help="beam size (default: 1 = greedy)")
    t.add_argument("numbers", nargs="+", metavar="NUMBER", help="integers in 0..999,999,999")
    r = sub.add_parser("run", help="run an unmodified PyTorch script on tinygradattn",
                       description="Run SCRIPT as `python SCRIPT ARGS...` would, with `torch` "
                                   "and every torch.* module resolved to tinygradattn. A name "
                                   "tinygradattn lacks is reported in one line. With --check, "
                                   "nothing runs: the torch names SCRIPT (or every .py file "
                                   "under a folder) uses are listed, the missing ones first.")
    r.add_argument("--check", action="store_true",
                   help="list the torch names used and which ones tinygradattn lacks")
    r.add_argument("script", metavar="SCRIPT", help="a .py file (a folder with --check)")
    r.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments passed to the script")
    sub.add_parser("bench", help="run the benchmark report (ours vs PyTorch)",
                   description="Run `python -m benchmarks.report` (needs the repository's "
                               "benchmarks/ folder and PyTorch); extra arguments are passed on.",
                   add_help=True)
    return parser


def _add_train(sub):
    train = sub.add_parser(
        "train", help="train a model on a built-in task (default: numwords)",
        description="Train a model on a built-in task. Without arguments: a 2+2-layer "
                    "Transformer learns to write numbers in English words (about two minutes "
                    "on a laptop CPU), writing runs/numwords/ (checkpoints, metrics, loss "
                    "curve, samples, attention maps).")
    train.add_argument("--task", default="numwords", choices=TASKS,
                       help="numwords (default) = integers -> English words; charlm = a GPT on "
                            "the characters of --data FILE; reverse / sort / copy = digit "
                            "strings; moons = an MLP on a 2-D toy set")
    train.add_argument("--data", help="text file for --task charlm")
    train.add_argument("--preset", choices=PRESETS, default="nano",
                       help="charlm model size (default: nano = nanoGPT's CPU configuration)")
    train.add_argument("--n-layer", type=_positive(int), help="layers (seq2seq: encoder and "
                                                              "decoder each)")
    train.add_argument("--n-head", type=_positive(int), help="attention heads")
    train.add_argument("--d-model", "--n-embd", dest="d_model", type=_positive(int),
                       help="model width")
    train.add_argument("--dropout", type=_probability, help="dropout probability")
    train.add_argument("--lr", type=_positive(float), help="peak learning rate")
    train.add_argument("--steps", type=_positive(int), help="optimizer steps")
    train.add_argument("--batch-size", type=_positive(int), help="examples per step")
    train.add_argument("--warmup", type=_non_negative_int,
                       help="linear warm-up steps (>= 0) before the cosine decay")
    train.add_argument("--eval-interval", type=_positive(int), help="steps between evaluations")
    train.add_argument("--log-interval", type=_positive(int),
                       help="steps between lines of metrics.jsonl (default: the task's)")
    train.add_argument("--distributed", action="store_true",
                       help="join an MPI job (tga.distributed) even where the environment "
                            "does not show mpiexec; under mpiexec -n N with N > 1 this is "
                            "automatic. --batch-size is then the global batch, split evenly "
                            "over the ranks")
    train.add_argument("--ckpt-interval", type=_positive(int), default=500,
                       help="steps between checkpoints (default: %(default)s; one is always "
                            "written at the end and on Ctrl-C)")
    train.add_argument("--hidden", type=_positive(int), default=32,
                       help="moons only: width of each hidden layer (default: %(default)s)")
    train.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                       help="where to train (default: %(default)s)")
    train.add_argument("--grad-checkpoint", action="store_true",
                       help="recompute each transformer layer's activations in backward "
                            "instead of keeping them (less memory, about one more forward pass "
                            "of time; not for --task moons)")
    train.add_argument("--out", default="runs", help="folder of the runs (default: %(default)s)")
    train.add_argument("--name", help="run name: the run is written to OUT/NAME (default: the "
                                      "task's name, numbered if taken)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run OUT/NAME from its newest checkpoint (a run that "
                            "already reached --steps: says so and exits 0, training nothing)")
    train.add_argument("--seed", type=_integer, default=0,
                       help="seed of the data and the initial weights (default: %(default)s)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--profile", nargs="?", type=_positive(int), const=5, default=0,
                       metavar="N", help="profile N training steps (default N: 5) after a "
                                         "warm-up step: the table of time per op is printed "
                                         "at the end, profile.json (a Chrome trace) written "
                                         "into the run's folder")


# ---- train ----------------------------------------------------------------------------------------
def _run_dir(args):
    """OUT/NAME for this run; a fresh run never writes over another run's checkpoints."""
    from .train.checkpoint import list_checkpoints
    base = args.name or args.task
    path = os.path.join(args.out, base)
    if args.resume:
        if not list_checkpoints(os.path.join(path, "ckpt")):
            raise UsageError(f"--resume: no checkpoint in {os.path.join(path, 'ckpt')}")
        return path
    if not list_checkpoints(os.path.join(path, "ckpt")):
        return path
    if args.name:
        raise UsageError(f"{path} already holds a run: pass --resume to continue it, or "
                         f"another --name")
    n = 2
    while list_checkpoints(os.path.join(args.out, f"{base}-{n}", "ckpt")):
        n += 1
    return os.path.join(args.out, f"{base}-{n}")


def _launched_by_mpi():
    """The world size mpiexec announces in the environment (Open MPI, MPICH / Hydra), or 1."""
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"):
        try:
            return int(os.environ[name])
        except (KeyError, ValueError):
            continue
    return 1


def _init_distributed(args):
    """Join the MPI job when launched by mpiexec with N > 1 (or --distributed); returns
    (rank, world size). A single process without either imports nothing of MPI."""
    global _RANK
    if not (args.distributed or _launched_by_mpi() > 1):
        return 0, 1
    from . import distributed as dist
    if not dist.is_initialized():
        if not dist.is_available():
            raise UsageError("--distributed / mpiexec: mpi4py is not installed (pip install "
                             "'tinygradattn[mpi]')")
        dist.init()
    _RANK = dist.get_rank()
    return _RANK, dist.get_world_size()


def _local_rank(rank):
    """This process's rank among the ranks on its node (Open MPI, MPICH / Hydra, PMIx), else
    its world rank."""
    for name in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK"):
        try:
            return int(os.environ[name])
        except (KeyError, ValueError):
            continue
    return rank


def _select_gpu(rank):
    """One GPU per rank: cuda:(local rank % device_count). tinygradattn drives cuda:0 only
    (tga.cuda.set_device refuses others), so where a rank sees several GPUs and its turn is
    not cuda:0, it shares cuda:0 (correct, not faster) and says so: give each rank its own GPU
    with CUDA_VISIBLE_DEVICES=<local rank> (each then sees it as cuda:0)."""
    from . import cuda
    index = _local_rank(rank) % max(cuda.device_count(), 1)
    try:
        cuda.set_device(index)
    except ValueError:
        cuda.set_device(0)
        print(f"rank {rank}: tinygradattn drives cuda:0 only, so this rank shares it; set "
              "CUDA_VISIBLE_DEVICES per rank for one GPU each", file=sys.stderr)


def _on_rank0(fn, rank, world):
    """fn() as rank 0 computes it, on every rank (a run directory every rank must agree on);
    a UsageError of rank 0's is raised on every rank, so that none waits for the others."""
    if world == 1:
        return fn()
    from . import distributed as dist
    box = [None, None]
    if rank == 0:
        try:
            box[0] = fn()
        except UsageError as e:
            box[1] = str(e)
    dist.broadcast_object_list(box, src=0)
    if box[1] is not None:
        raise UsageError(box[1])
    return box[0]


def _check_device(device):
    from .backend import get_backend
    try:
        get_backend(device)
    except RuntimeError as e:
        raise UsageError(f"--device {device}: {e}") from None


def _train(args):
    _check_device(args.device)
    rank, world = _init_distributed(args)
    if world > 1 and args.device == "cuda":
        _select_gpu(rank)
    if args.task == "moons":
        if args.profile:
            raise UsageError("--profile is for the Trainer's tasks, not --task moons")
        if rank > 0:             # full batch of 1,000 points: rank 0 trains it alone
            return 0
        return _train_moons(args)
    if args.task == "charlm":
        if not args.data:
            raise UsageError("--task charlm needs --data FILE.txt (a text file to learn from)")
        if not os.path.isfile(args.data):
            raise UsageError(f"--data {args.data}: no such file")
    elif args.data:
        raise UsageError(f"--data is for --task charlm, not --task {args.task}")
    _check_out(args.out)
    from .creation import manual_seed
    from .optim import AdamW
    from .optim.lr_scheduler import warmup_cosine
    from .tasks import DEFAULTS, make_task
    from .train.trainer import TrainConfig, Trainer, TrainingDiverged

    manual_seed(args.seed)
    model_args = dict(n_layer=args.n_layer, dropout=args.dropout)
    if args.task == "charlm":
        model_args.update(n_head=args.n_head, n_embd=args.d_model)
    else:
        model_args.update(nhead=args.n_head, d_model=args.d_model)
    try:
        task = make_task(args.task, args.batch_size, args.seed, model_args, data=args.data,
                         preset=args.preset)
        task.device = args.device
        model = task.build_model().to(args.device)
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(str(e)) from None
    if task.batch_size % world:
        raise UsageError(f"--batch-size {task.batch_size}: the global batch must split evenly "
                         f"over the {world} ranks (a multiple of {world})")
    if args.grad_checkpoint:
        if not hasattr(model, "gradient_checkpointing_enable"):
            raise UsageError(f"--grad-checkpoint is for the transformer tasks, not --task "
                             f"{args.task}")
        model.gradient_checkpointing_enable()
    _check_memory(args, task, model)
    d = {**DEFAULTS[args.task], **(task.preset if args.task == "charlm" else {})}
    steps = args.steps or d["steps"]
    lr = args.lr or d["lr"]
    warmup = min(d["warmup"] if args.warmup is None else args.warmup, steps)
    if hasattr(model, "configure_optimizers"):
        optimizer = model.configure_optimizers(d["weight_decay"], lr, betas=d["betas"])
    else:
        optimizer = AdamW(model.parameters(), lr=lr, weight_decay=d["weight_decay"])
    scheduler = warmup_cosine(optimizer, warmup, steps, min_lr=min(d["min_lr"], lr))
    cfg = TrainConfig(steps=steps, eval_interval=args.eval_interval or d["eval_interval"],
                      log_interval=args.log_interval or d["log_interval"],
                      ckpt_interval=args.ckpt_interval,
                      progress=not args.no_progress, profile_steps=args.profile)
    out_dir = _on_rank0(lambda: _run_dir(args), rank, world)
    trainer = Trainer(task, model, optimizer, scheduler, cfg, out_dir)
    if args.resume:
        try:
            trainer.resume()
        except (ValueError, RuntimeError, KeyError) as e:
            raise UsageError(f"--resume: {_first_line(e)}") from None
        if trainer.step >= steps:
            return _already_complete(args, trainer, steps) if rank == 0 else 0
    n_params = sum(p.numel() for p in model.parameters())
    if rank == 0:
        ranks = f" ({world} ranks of {task.batch_size // world})" if world > 1 else ""
        print(f"training {args.task} ({n_params / 1e6:.2f}M parameters) for {steps} steps, "
              f"batch {task.batch_size}{ranks}, lr {lr:g}, on {args.device} -> {out_dir}",
              flush=True)
    try:
        status = trainer.fit()
    except TrainingDiverged as e:
        if rank == 0:
            print(f"tinygradattn: error: {e}", file=sys.stderr)
        return 1
    if rank > 0:
        return 130 if status == "interrupted" else 0
    if status == "interrupted":
        print(f"continue with: tinygradattn train --task {args.task} --name "
              f"{os.path.basename(out_dir)} --out {args.out} --resume", file=sys.stderr)
        return 130
    return _final_report(args, task, model, trainer, out_dir)


def _check_out(out):
    """--out must be a folder this process can write in (created if missing): checked before
    anything is built or trained. UsageError naming the fault otherwise."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: is a file, not a folder")
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, f".tinygradattn-write-check-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def _check_memory(args, task, model):
    """Refuse a training step that cannot fit in this machine's memory, with the figures."""
    from .train.memory import estimate_training_bytes, physical_memory_bytes
    available = physical_memory_bytes()
    if available is None or not hasattr(task, "model_config"):
        return
    n_params = sum(p.numel() for p in model.parameters())
    need, activations, state = estimate_training_bytes(task.model_config(), n_params,
                                                       task.batch_size,
                                                       checkpointing=args.grad_checkpoint)
    if need > available:
        gib = 2.0 ** 30
        raise UsageError(
            f"--batch-size {task.batch_size}: one training step needs about {need / gib:,.1f} "
            f"GiB (activations {activations / gib:,.1f} GiB, weights + gradients + Adam state "
            f"{state / gib:,.2f} GiB), more than this machine's {available / gib:,.1f} GiB of "
            f"memory; pass a smaller --batch-size")


def _already_complete(args, trainer, steps):
    """--resume of a run at (or past) its last step: say so, train nothing, exit 0."""
    print(f"the run {trainer.out_dir} is complete: its checkpoint {trainer.last_ckpt} is at "
          f"step {trainer.step} of {steps}; nothing to train (pass a larger --steps to "
          f"continue it)")
    evals = [r for r in trainer.read_metrics() if "val_loss" in r]
    if evals:
        last = evals[-1]
        shown = "  ".join(f"{k} {v:.4f}" for k, v in last.items()
                          if isinstance(v, float) and k != "time")
        print(f"final: task {args.task}  {shown}  (step {last['step']})")
    return 0


def _final_report(args, task, model, trainer, out_dir):
    model.eval()
    paths = task.report(model, out_dir)
    metrics = trainer.last_metrics
    elapsed = trainer._elapsed()
    print(f"checkpoint:  {trainer.last_ckpt}")
    print(f"metrics:     {trainer.metrics_path}")
    print(f"loss curve:  {os.path.join(out_dir, 'loss_curve.png')}")
    for key, value in paths.items():
        for p in value if isinstance(value, list) else [value]:
            print(f"{key + ':':<12} {p}")
    if task.headline == "exact_match":
        n = metrics.get("n_eval", len(task.test_items))
        print(f"final: task {args.task}  exact match {metrics['exact_match']:.2%} on {n:,} "
              f"held-out examples  (val loss {metrics['val_loss']:.4f}, {trainer.step} steps, "
              f"{elapsed:.0f} s)")
    else:
        print(f"final: task {args.task}  val loss {metrics['val_loss']:.4f}  "
              f"({trainer.step} steps, {elapsed:.0f} s)")
    return 0


def _train_moons(args):
    if args.grad_checkpoint:
        raise UsageError("--grad-checkpoint is for the transformer tasks, not --task moons")
    from .tasks.moons import train_moons
    metrics = train_moons(steps=args.steps or 300, hidden=args.hidden, lr=args.lr or 0.02,
                          seed=args.seed, log=print, device=args.device)
    print(f"final: task moons  train accuracy {metrics['train_acc']:.4f}  "
          f"test accuracy {metrics['test_acc']:.4f}")
    return 0


# ---- sample / translate -------------------------------------------------------------------------
def _first_line(e):
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _load_run(ckpt, want):
    """(task, model) of a run directory / checkpoint file; UsageError on anything wrong."""
    import warnings
    from .serialization import CheckpointError, load
    from .train.checkpoint import load_latest
    from .tasks import task_from_config

    def say(message):                   # a skipped damaged checkpoint: one line, then go on
        print(f"tinygradattn: {message}", file=sys.stderr)
    try:
        with warnings.catch_warnings(record=True) as caught:    # shown once the run loads
            warnings.simplefilter("always")
            if os.path.isdir(ckpt):
                sub = os.path.join(ckpt, "ckpt")
                state, path = load_latest(sub if os.path.isdir(sub) else ckpt, on_skip=say)
                if state is None:
                    raise UsageError(f"--ckpt {ckpt}: no checkpoint in it")
            elif os.path.exists(ckpt):
                state = load(ckpt)
            else:
                raise UsageError(f"--ckpt {ckpt}: no such file or directory")
    except CheckpointError as e:
        raise UsageError(f"--ckpt {e.path} {_first_line(e.fault)} (a damaged or unsupported "
                         f"checkpoint)") from None
    except (OSError, ValueError, RuntimeError) as e:
        raise UsageError(f"--ckpt {ckpt}: damaged checkpoint: {_first_line(e)}") from None
    try:
        config = state["task"]
        name = config["task"]
    except (KeyError, TypeError):
        raise UsageError(f"--ckpt {ckpt}: not a tinygradattn training checkpoint") from None
    if name not in want:
        raise UsageError(f"--ckpt {ckpt}: a checkpoint of a {name} model; this command needs "
                         f"one of: {', '.join(want)}")
    try:
        task = task_from_config(config)
        model = task.build_model()
        model.load_state_dict(state["model"])
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise UsageError(f"--ckpt {ckpt}: damaged checkpoint: {_first_line(e)}") from None
    for w in caught:
        say(f"warning: {_first_line(w.message)}")
    model.eval()
    return task, model


def _sample(args):
    task, model = _load_run(args.ckpt, ("charlm",))
    try:
        text = task.sample(model, args.prompt, args.max_new_tokens, args.temperature,
                           args.top_k, seed=args.seed)
    except ValueError as e:
        raise UsageError(f"--prompt: {_first_line(e)}") from None
    print(text)
    return 0


def _translate(args):
    task, model = _load_run(args.ckpt, ("numwords", "reverse", "sort", "copy"))
    items = []
    for text in args.numbers:
        try:
            items.append(task.parse(text))
        except ValueError as e:
            raise UsageError(str(e)) from None
    if args.beam > 1:
        from .tasks.common import _ids
        from .tasks.numwords import EOS, pad_batch
        src = _ids(pad_batch([task.encode(it)[0] for it in items]), "cpu")
        rows = model.beam_search(src, beam_size=args.beam,
                                 max_len=task.max_tgt_len - 1).tolist()
        outs = [[t for t in r[:r.index(EOS) if EOS in r else len(r)] if t >= 3] for r in rows]
    else:
        outs, _ = task.translate(model, items)
    width = max(len(t) for t in args.numbers)
    for text, out in zip(args.numbers, outs):
        print(f"{text:>{width}}  ->  {task.show_tgt(out)}")
    return 0


def _run(args):
    if args.check:
        if args.args:
            raise UsageError(f"--check takes one SCRIPT_OR_FOLDER, got extra {args.args}")
        if not os.path.exists(args.script):
            raise UsageError(f"no such file or folder: {args.script}")
        from .compat import coverage
        return 1 if coverage.report(args.script) else 0
    if not os.path.isfile(args.script):
        raise UsageError(f"no such script: {args.script}")
    from .compat import runner
    return runner.run(args.script, args.args)


def _bench(extra):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isfile(os.path.join(root, "benchmarks", "report.py")):
        raise UsageError("the benchmarks/ folder is not here: it ships with the source "
                         "repository (git clone it, then run `tinygradattn bench` from there)")
    import subprocess
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.call([sys.executable, "-m", "benchmarks.report", *extra], cwd=root,
                           env=env)


def main(argv=None):
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench" and not {"-h", "--help"} & set(argv[1:]):
        args, extra = argparse.Namespace(command="bench"), argv[1:]
    else:
        args, extra = parser.parse_args(argv), []
    if args.command is None:
        parser.error("missing command (one of: train, sample, translate, run, bench)")
    commands = {"train": _train, "sample": _sample, "translate": _translate, "run": _run}
    try:
        if args.command == "bench":
            return _bench(extra)
        return commands[args.command](args)
    except UsageError as e:
        if _RANK == 0:           # every rank finds the same fault: one line, from rank 0
            print(f"tinygradattn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinygradattn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
