"""Task names -> task objects: the CLI's defaults, `make_task`, and `task_from_config` (the
task a checkpoint was written for)."""
from .charlm import CHARLM_PRESETS, CharLMTask
from .seq2seq import DigitsTask, NumwordsTask


# Per task: training defaults the CLI starts from (overridden by its flags).
DEFAULTS = {
    # 300 steps: 99.85-99.95% exact match (99.85 with the PyTorch twin: same data and weights)
    "numwords": dict(steps=300, batch_size=128, lr=3e-3, min_lr=1e-4, warmup=30, weight_decay=0.01,
                     eval_interval=100, log_interval=10),
    "reverse": dict(steps=300, batch_size=64, lr=3e-3, min_lr=1e-4, warmup=30, weight_decay=0.01,
                    eval_interval=100, log_interval=10),
    "charlm": dict(weight_decay=0.1, betas=(0.9, 0.99), log_interval=10),
}
DEFAULTS["sort"] = DEFAULTS["copy"] = DEFAULTS["reverse"]
SEQ2SEQ_TASKS = ("numwords", "reverse", "sort", "copy")


def make_task(name, batch_size=None, seed=0, model=None, data=None, preset="nano", chars=None):
    """The task object `name` with its defaults (model: overrides of the model's sizes)."""
    if name == "numwords":
        return NumwordsTask(batch_size or DEFAULTS[name]["batch_size"], seed, model)
    if name in DigitsTask.OPS:
        return DigitsTask(name, batch_size or DEFAULTS[name]["batch_size"], seed, model)
    if name == "charlm":
        p = dict(CHARLM_PRESETS[preset])
        for k, v in (model or {}).items():
            if v is not None:
                p[k] = v
        if batch_size:
            p["batch_size"] = batch_size
        return CharLMTask(data, p, seed, chars=chars)
    raise KeyError(name)


def task_from_config(config, data=None):
    """Rebuild the task (and so the model) a checkpoint was written for, for sample/translate."""
    name, m = config["task"], config["model"]
    if name in SEQ2SEQ_TASKS:
        model = dict(d_model=m["d_model"], nhead=m["nhead"], n_layer=m["num_encoder_layers"],
                     dim_feedforward=m["dim_feedforward"], dropout=m["dropout"])
        if name == "numwords":
            return NumwordsTask(1, 0, model, n_test=1)
        return DigitsTask(name, 1, 0, model, max_digits=config.get("max_digits", 8), n_test=1)
    if name == "charlm":
        preset = dict(n_layer=m["n_layer"], n_head=m["n_head"], n_embd=m["n_embd"],
                      block_size=m["block_size"], batch_size=1, dropout=m["dropout"])
        chars = config["chars"]
        reps = 20 * (m["block_size"] + 2) // len(chars) + 1      # a stand-in text: only
        return CharLMTask(text=chars * reps, preset=preset, chars=chars)   # the vocab matters
    raise KeyError(name)
