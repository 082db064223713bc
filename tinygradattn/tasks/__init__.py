"""The built-in tasks: each one generates its own data (the package needs no download).

Tasks the Trainer runs (`tinygradattn train --task NAME`) own their data, build their model
and judge it:

    task.build_model()                 -> the nn.Module (sizes from the task's config)
    task.train_batch()                 -> the next batch from the task's seeded sampler
    task.loss(model, batch)            -> (scalar loss, number of target tokens)
    task.evaluate(model)               -> {"val_loss": ..., headline metric, ...}
    task.get_state() / set_state(s)    -> the sampler's position, JSON-able (exact resume)
    task.config()                      -> JSON-able dict naming task + model (a checkpoint of
                                          another model is refused with it)
    task.report(model, out_dir)        -> final artefacts (samples, pictures); a dict of paths

    seq2seq.py   numwords (the default), reverse, sort, copy: encoder-decoder translation
    charlm.py    a GPT on the characters of a text file
    registry.py  make_task / task_from_config / DEFAULTS (the CLI's starting values)
    numwords.py  the numbers-to-words data;  moons.py  two moons and an MLP trained on them
                 (`--task moons`: a plain loop, not the Trainer)

Evaluation never touches the global generator or the training sampler, so a run that
evaluates and one that does not see the same batches and dropout masks.
"""
from .charlm import CHARLM_PRESETS, CharLMTask, gpt_config
from .registry import DEFAULTS, SEQ2SEQ_TASKS, make_task, task_from_config
from .seq2seq import DigitsTask, NumwordsTask, Seq2SeqTask, plot_cross_attention

__all__ = ["CHARLM_PRESETS", "CharLMTask", "DEFAULTS", "DigitsTask", "NumwordsTask",
           "SEQ2SEQ_TASKS", "Seq2SeqTask", "gpt_config", "make_task", "plot_cross_attention",
           "task_from_config"]
