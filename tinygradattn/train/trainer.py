"""The Trainer: one loop for every model here.

    for step in range(start, steps):
        batch = task.train_batch()                     # the task's own seeded sampler
        loss = task.loss(model, batch); backward; clip; optimizer.step(); scheduler.step()
        every log_interval:  a JSONL line, the progress bar's loss / lr / tokens/s
        every eval_interval: task.evaluate(model) -> JSONL, loss-curve PNG
        every ckpt_interval: an atomic checkpoint (last keep_last kept)

Exact resume: a checkpoint holds the model, optimizer, scheduler, step, the global generator's
state and the task's sampler state, so N steps + resume + N steps gives the losses of 2N
straight steps (evaluation must not consume either: the tasks see to that). Ctrl-C lets the
step in flight finish, saves a checkpoint and returns "interrupted" (a second Ctrl-C stops at
once, saving nothing: a half-done optimizer step must not be checkpointed); a NaN/inf loss
stops the run with the step named, leaving the last good checkpoint alone. With
profile_steps = N, the N steps after this run's first (a warm-up) are profiled: the table is
logged at the end and profile.json (a Chrome trace) written into out_dir.

Data parallel (under mpiexec, once tga.distributed.init() has run with world_size N > 1):
every rank draws the same global batch from the task's sampler (so the data order and the
checkpointed sampler state do not depend on N), takes its contiguous 1/N of the rows, and
trains DistributedDataParallel(model), whose gradients are averaged over ranks. Each rank's
loss is scaled by N * its_tokens / global_tokens, so that a task whose loss is a mean over a
varying number of tokens (padding ignored) gets the gradient of the global batch's mean, as
N = 1 would: the trajectory is N = 1's to float32 rounding (dropout 0). The logged loss and
tokens/s are the global batch's (one float64 Allreduce per step, which also carries Ctrl-C,
so every rank stops at the same step). Rank 0 alone evaluates, writes metrics.jsonl (with
world_size and global_batch), checkpoints, pictures and profile, and shows the progress bar;
the checkpoint holds the global state (the unwrapped model's weights, optimizer, step, RNG and
sampler states), so a run resumes with any N. Dropout: rank 0 draws its masks from the global
generator exactly as N = 1 does (its state is the one checkpointed); rank r > 0 draws its
masks, step by step, from a generator seeded with (seed of rank, step), leaving the global
generator untouched: masks differ across ranks, and with dropout > 0 the trajectory is not
N = 1's (it has the same distribution). At the end of fit the ranks check that their weights
are bitwise identical (one hash broadcast).
"""
import json
import math
import numbers
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass

from ..creation import get_rng_state, set_rng_state
from ..tasks.common import _RNGNeutral
from ..nn.utils import clip_grad_norm_
from ..profiler import EventList, profile, record_function
from ..serialization import CheckpointError, verify
from .checkpoint import load_latest, fault_of, save_checkpoint, verified_latest


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    steps: int = 1000
    grad_clip: float = 1.0
    log_interval: int = 10
    eval_interval: int = 250
    ckpt_interval: int = 500
    keep_last: int = 3
    progress: bool = True
    profile_steps: int = 0          # profile this many steps after the first (0: none)

    def __post_init__(self):
        """Counts are ints: steps >= 0; the intervals and keep_last >= 1 (the loop takes
        step % interval; keep_last 0 would keep every checkpoint). grad_clip: a number >= 0,
        or 0 / None for no clipping."""
        for name, low in (("steps", 0), ("log_interval", 1), ("eval_interval", 1),
                          ("ckpt_interval", 1), ("keep_last", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"TrainConfig: {name} must be an int, got "
                                f"{type(value).__name__} {value!r}")
            if value < low:
                raise ValueError(f"TrainConfig: {name} must be >= {low}, got {value}")
        clip = self.grad_clip
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, numbers.Real)):
            raise TypeError(f"TrainConfig: grad_clip must be a number or None, got "
                            f"{type(clip).__name__} {clip!r}")
        if clip is not None and not clip >= 0:
            raise ValueError(f"TrainConfig: grad_clip must be >= 0 (0: no clipping), got {clip}")


class Trainer:
    """Trains task's model with optimizer and scheduler, writing into out_dir.

    Args:
        task: an object with train_batch(), loss(model, batch) -> (loss, n_tokens),
            evaluate(model, final) -> dict (final: the last evaluation of the run, which
            may look at more data), get_state() / set_state(state), config() -> dict.
        model, optimizer, scheduler: the nn.Module, optim.Optimizer, lr_scheduler.
        config: TrainConfig. out_dir: where metrics.jsonl, loss_curve.png and ckpt/ go.
    """

    def __init__(self, task, model, optimizer, scheduler, config, out_dir, log=print):
        self.rank, self.world = _world()
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer: config must be a TrainConfig, got {type(config).__name__}")
        if not isinstance(out_dir, (str, os.PathLike)):
            raise TypeError(f"Trainer: out_dir must be a path, got {type(out_dir).__name__}")
        self.task, self.model = task, model
        self.optimizer, self.scheduler = optimizer, scheduler
        self.cfg, self.out_dir, self.log = config, out_dir, log
        self.step = 0
        self.ckpt_dir = os.path.join(out_dir, "ckpt")
        self.metrics_path = os.path.join(out_dir, "metrics.jsonl")
        self.last_ckpt = None
        self.last_metrics = {}
        self.t_start = time.perf_counter()
        self.profile_events = EventList()    # the profiled steps' ops (profile_steps)
        self.profile_path = None
        self.n_profiled = 0
        self.train_model = model             # DistributedDataParallel(model) under N > 1 ranks
        if self.world > 1:
            if task.batch_size % self.world:
                raise ValueError(f"Trainer: task.batch_size {task.batch_size} is not divisible "
                                 f"by the {self.world} ranks: the global batch is split evenly")
            if self.is_main:
                self.log = log
            else:
                self.log = lambda *a, **k: None
        if self.is_main:
            os.makedirs(out_dir, exist_ok=True)

    @property
    def is_main(self):
        """True on the rank that writes files and logs (rank 0; the only one without MPI)."""
        return self.rank == 0

    # ---- checkpoint state -------------------------------------------------------------
    def state(self):
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else {},
            "step": self.step,
            "rng": get_rng_state(),
            "data": self.task.get_state(),
            "task": self.task.config(),
            "train": asdict(self.cfg),
        }

    def save(self):
        """Rank 0 writes the checkpoint; every rank returns its path."""
        if not self.is_main:
            self.last_ckpt = os.path.join(self.ckpt_dir, f"step-{self.step}")
            return self.last_ckpt
        self.last_ckpt = save_checkpoint(self.ckpt_dir, self.step, self.state(), self.cfg.keep_last)
        return self.last_ckpt

    def resume(self):
        """Load the newest checkpoint of out_dir that verifies (a damaged newer one is skipped,
        with one line through log naming it and why); False when there is none."""
        state, path = load_latest(self.ckpt_dir, on_skip=self.log)
        if state is None:
            return False
        if state["task"] != self.task.config():
            raise ValueError(f"checkpoint {path} was written for another task or model: "
                             f"{state['task']} != {self.task.config()}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler:
            self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        self.task.set_state(state["data"])
        self.last_ckpt = path
        if self.is_main:
            self._truncate_metrics(self.step)
        self.log(f"resumed from {path} at step {self.step}")
        return True

    # ---- metrics ----------------------------------------------------------------------
    def _write_metrics(self, record):
        if not self.is_main:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _truncate_metrics(self, step):
        """Keep only the records up to step (a resumed run rewrites what came after)."""
        if not os.path.exists(self.metrics_path):
            return
        with open(self.metrics_path) as f:
            kept = [line for line in f if json.loads(line)["step"] <= step]
        with open(self.metrics_path, "w") as f:
            f.writelines(kept)

    def read_metrics(self):
        if not os.path.exists(self.metrics_path):
            return []
        with open(self.metrics_path) as f:
            return [json.loads(line) for line in f]

    # ---- the loop ---------------------------------------------------------------------
    def fit(self):
        """Train to cfg.steps. Returns "done", or "interrupted" after Ctrl-C (the step in
        flight finishes, a checkpoint is saved; a second Ctrl-C raises KeyboardInterrupt
        at once, saving nothing). A NaN/inf loss raises TrainingDiverged."""
        from tqdm import tqdm
        cfg = self.cfg
        self._wrap_ddp()
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (cfg.progress and self.is_main),
                   dynamic_ncols=True, leave=False, unit="step")
        self._stop_requested = self._stop_pending = False
        restore = self._install_sigint(bar)
        tokens, t_window = 0, time.perf_counter()
        self.t_start = time.perf_counter()
        n_done = 0                                   # steps of this fit (profile window)
        try:
            while self.step < cfg.steps:
                loss_value, n_tokens = self._step_maybe_profiled(n_done)
                n_done += 1
                self.step += 1
                tokens += n_tokens
                bar.update(1)
                if self.step % cfg.log_interval == 0 or self.step == cfg.steps:
                    elapsed = time.perf_counter() - t_window
                    rate = tokens / elapsed if elapsed > 0 else 0.0
                    lr = self.optimizer.param_groups[0]["lr"]
                    self._write_metrics({"step": self.step, "loss": loss_value, "lr": lr,
                                         "tokens_per_s": rate, "time": self._elapsed(),
                                         "world_size": self.world,
                                         "global_batch": self.task.batch_size})
                    bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}",
                                    tok_s=f"{rate:,.0f}")
                    tokens, t_window = 0, time.perf_counter()
                if self.step % cfg.eval_interval == 0 or self.step == cfg.steps:
                    self._evaluate(bar, final=self.step == cfg.steps)
                    t_window = time.perf_counter()
                if self._stop_requested:
                    path = self.save()
                    bar.close()
                    self.plot()
                    self.log(f"interrupted at step {self.step}: checkpoint saved to {path}")
                    return "interrupted"
                if self.step % cfg.ckpt_interval == 0 and self.step < cfg.steps:
                    self.save()
        finally:
            bar.close()
            restore()
            if self.is_main:
                self._write_profile()
        self._check_replicas()
        self.save()
        self.plot()
        return "done"

    def _elapsed(self):
        return round(time.perf_counter() - self.t_start, 3)

    def _install_sigint(self, bar):
        """Ctrl-C asks the loop to stop after the current step; returns the undo function."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum, frame):
            if self._stop_requested or self._stop_pending:   # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            if self.world > 1:                       # the ranks agree at the next step
                self._stop_pending = True
            else:
                self._stop_requested = True
            bar.write("Ctrl-C: finishing this step and saving a checkpoint "
                      "(Ctrl-C again to quit without saving)")

        previous = signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)

    def _wrap_ddp(self):
        """Under N > 1 ranks: train through DistributedDataParallel(model) (once; after any
        resume, so every rank already holds the same weights)."""
        if self.world > 1 and self.train_model is self.model:
            from ..nn.parallel import DistributedDataParallel
            self.train_model = DistributedDataParallel(self.model)

    def _local_loss(self, batch):
        """(loss to backpropagate, global loss value, global token count) of this rank's part
        of the global batch (the whole batch when N = 1)."""
        if self.world == 1:
            loss, n_tokens = self.task.loss(self.model, batch)
            return loss, loss.item(), n_tokens
        part = shard_batch(batch, self.rank, self.world)
        if self.rank == 0:
            loss, n_local = self.task.loss(self.train_model, part)
        else:
            with _RNGNeutral(_rank_seed(self.rank, self.step)):   # this rank's dropout masks
                loss, n_local = self.task.loss(self.train_model, part)
        value, n_tokens, stop = _reduce_step(loss.item(), n_local, self._stop_pending)
        self._stop_requested = stop
        if n_tokens:
            loss = loss * (self.world * n_local / n_tokens)       # DDP averages: / N
        return loss, value, n_tokens

    def _train_step(self):
        self.model.train()
        batch = self.task.train_batch()
        loss, value, n_tokens = self._local_loss(batch)
        if not math.isfinite(value):
            raise TrainingDiverged(f"loss is {value} at step {self.step + 1}; stopping. "
                                   f"{self._kept_checkpoint()}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            with record_function("clip_grad_norm_"):      # regions of the profile (--profile)
                clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        with record_function("optimizer.step"):
            self.optimizer.step()
        if self.scheduler:
            self.scheduler.step()
        return value, n_tokens

    # ---- profiling (--profile) ---------------------------------------------------------------
    def _step_maybe_profiled(self, n_done):
        """_train_step(); steps 1..profile_steps of this fit run under the profiler (step 0
        warms up: first-call costs stay out of the figures)."""
        if not 1 <= n_done <= self.cfg.profile_steps:
            return self._train_step()
        with profile() as prof:
            with record_function("train_step"):
                result = self._train_step()
        self.profile_events.extend(prof.events())
        self.n_profiled += 1
        return result

    def _write_profile(self):
        """profile.json (Chrome trace) into out_dir and the table through log, once."""
        if not self.profile_events or self.profile_path is not None:
            return
        self.profile_path = os.path.join(self.out_dir, "profile.json")
        self.profile_events.export_chrome_trace(self.profile_path)
        table = self.profile_events.key_averages().table(sort_by="self_cpu_time_total",
                                                         row_limit=20)
        self.log(f"profile of {self.n_profiled} training steps (after a warm-up step), "
                 f"Chrome trace: {self.profile_path}\n{table}")

    def _kept_checkpoint(self):
        """One sentence on the checkpoint a diverged run leaves: the last one saved or resumed
        from, checked first, since only a file that verifies is called good."""
        if self.last_ckpt is None:
            return "No checkpoint was saved yet."
        try:
            verify(self.last_ckpt)
            return f"The last good checkpoint is kept: {self.last_ckpt}"
        except (CheckpointError, OSError) as e:
            fault = fault_of(e)
        good = verified_latest(self.ckpt_dir)
        return (f"The last checkpoint {self.last_ckpt} is not good ({fault}); the newest that "
                f"verifies: {good or 'none'}")

    def _check_replicas(self):
        """Under N > 1 ranks: RuntimeError on a rank whose weights differ (bitwise) from rank
        0's, which would mean the gradients were not averaged alike."""
        if self.world == 1:
            return
        import hashlib
        from .. import distributed as dist
        h = hashlib.sha256()
        for p in self.model.parameters():
            h.update(p.detach().numpy().tobytes())
        found = [h.hexdigest()]
        dist.broadcast_object_list(found, src=0)
        if found[0] != h.hexdigest():
            raise RuntimeError(f"rank {self.rank}: weights differ from rank 0's at step "
                               f"{self.step}")

    def _evaluate(self, bar, final):
        if not self.is_main:                         # rank 0 alone evaluates
            return
        self.model.eval()
        metrics = self.task.evaluate(self.model, final=final)
        self.model.train()
        self.last_metrics = metrics
        self._write_metrics({"step": self.step, **metrics, "time": self._elapsed()})
        shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in metrics.items() if isinstance(v, (int, float)))
        texts = "".join(f"\n--- {k} ---\n{v}\n---" for k, v in metrics.items()
                        if isinstance(v, str))
        bar.write(f"step {self.step}: {shown}{texts}")
        self.plot()

    def plot(self):
        """loss_curve.png: training loss and every evaluated loss against the step (rank 0)."""
        if not self.is_main:
            return None
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        records = self.read_metrics()
        train = [(r["step"], r["loss"]) for r in records if "loss" in r]
        val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
        if not train:
            return None
        path = os.path.join(self.out_dir, "loss_curve.png")
        with warnings.catch_warnings():     # a one-point or flat curve: log scale complains
            warnings.simplefilter("ignore")
            fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
            ax.plot(*zip(*train), label="train", linewidth=1)
            if val:
                ax.plot(*zip(*val), "o-", label="validation", linewidth=1.5, markersize=3)
            ax.set_xlabel("step")
            ax.set_ylabel("loss")
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            handles = ax.get_legend_handles_labels()
            exact = [(r["step"], r["exact_match"]) for r in records if "exact_match" in r]
            if exact:                        # the headline metric of seq2seq tasks, right axis
                ax2 = ax.twinx()
                ax2.plot(*zip(*exact), "s--", color="tab:green", label="exact match",
                         linewidth=1, markersize=3)
                ax2.set_ylabel("exact match")
                ax2.set_ylim(0, 1.02)
                h2 = ax2.get_legend_handles_labels()
                handles = (handles[0] + h2[0], handles[1] + h2[1])
            ax.legend(*handles, loc="center right")
            fig.tight_layout()
            fig.savefig(path)
        plt.close(fig)
        return path


# ---- data parallel helpers --------------------------------------------------------------------
def _world():
    """(rank, world_size) of tga.distributed, or (0, 1) when it is not initialized (no import
    of mpi4py either way)."""
    from .. import distributed as dist
    if not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def shard_batch(batch, rank, world):
    """Rank's contiguous 1/world of every tensor of batch (a tuple of tensors whose first
    dimension is the batch, divisible by world)."""
    out = []
    for t in batch:
        n = t.shape[0] // world
        out.append(t[rank * n:(rank + 1) * n])
    return type(batch)(out)


def _rank_seed(rank, step):
    """The dropout seed of rank r > 0 at a step: distinct per (rank, step), fixed per run."""
    return 1_000_003 * rank + step


def _reduce_step(value, n_local, stop):
    """Allreduce of one step's figures: (global mean loss, global tokens, any rank stopping)."""
    from .. import creation
    from .. import distributed as dist
    from ..dtypes import float64
    t = creation.tensor([value * n_local, float(n_local), 1.0 if stop else 0.0], dtype=float64)
    dist.all_reduce(t)
    total, n, stops = t.tolist()
    return (total / n if n else value), int(n), stops > 0
