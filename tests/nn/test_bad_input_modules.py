"""Bad input everywhere, module level (issue 16): one table of cases over every public nn
module, the nn.Module API, nn.init and nn.utils, the optimizers and schedulers, the models,
tga.utils.data, tga.save / tga.load of bad paths and objects, and the seeds.

Each case is one line: C(name, call, expected exception class, message regex, ...).

- `call(L)` gets the library: tinygradattn, and torch too when `torch=True` (the default),
  where torch has the same API. Our call must raise `expected` with a message matching the
  regex (which names the argument at fault); with torch installed, torch must raise the
  same class (or a subclass / superclass). Cases torch accepts, or answers with an internal
  error (AttributeError, ZeroDivisionError), say `torch=False`, and why, in a comment.
- The name's first part (before the dot) is the public class or function it covers: the
  coverage test lists every public class of tga.nn, tga.optim, tga.models and
  tga.utils.data that no case names (EXEMPT lists the few that take no bad input).
- `isolate=True`: the call reaches a kernel with the bad input, so it could crash the
  process; these run in one subprocess (all of them, one after another) and a crash or a
  hang is reported under the case that was running.

Run `python tests/nn/test_bad_input_modules.py --isolated` to run the isolated batch by hand.
"""
import json
import math
import os
import pathlib
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.parallel  # noqa: F401 - tga.nn.parallel and tga.train, loaded on demand
import tinygradattn.train  # noqa: F401

ISOLATED_TIMEOUT_S = 120


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable
    expected: type
    match: str
    torch: bool = True          # same API in torch: torch must raise the same class
    isolate: bool = False       # reaches a kernel: run in the subprocess batch

    @property
    def covers(self):
        return self.name.split(".")[0]


def C(name, call, expected, match, torch=True, isolate=False):
    return Case(name, call, expected, match, torch, isolate)


# ---- small builders (each takes the library L: tinygradattn or torch) -------------------------
def param(L, *shape):
    return L.nn.Parameter(L.ones(*shape))


def with_grad(L, grad_shape=(3,)):
    """A (3,) parameter whose .grad is assigned ones(grad_shape) (wrong shape: raises)."""
    p = param(L, 3)
    p.grad = L.ones(*grad_shape)
    return p


def sgd(L, *params):
    return L.optim.SGD(list(params) or [param(L, 3)], lr=0.1)


def module_with_attr(L):
    m = L.nn.Linear(2, 2)
    m.foo = 1
    return m


def linear_sd(L, **changes):
    """Linear(2, 2)'s state_dict with entries replaced (None: removed)."""
    sd = dict(L.nn.Linear(2, 2).state_dict())
    for k, v in changes.items():
        if v is None:
            sd.pop(k)
        else:
            sd[k] = v
    return sd


def opt_sd(L, **changes):
    """An SGD(momentum) state_dict over one (3,) parameter after one step, entries replaced."""
    p = param(L, 3)
    opt = L.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = L.ones(3)
    opt.step()
    sd = opt.state_dict()
    sd.update(changes)
    return sd


def load_into_sgd(L, sd, n_params=1):
    opt = L.optim.SGD([param(L, 3) for _ in range(n_params)], lr=0.1, momentum=0.9)
    return opt.load_state_dict(sd)


def sched(L, cls, *args, steps=2, **kw):
    s = getattr(L.optim.lr_scheduler, cls)(sgd(L), *args, **kw)
    for _ in range(steps):
        s.step()
    return s


def gpt(L):
    return L.models.GPT(L.models.GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2,
                                           n_embd=8))


def gpt_cfg(L, **kw):
    base = dict(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    base.update(kw)
    return L.models.GPTConfig(**base)


def tokens(L, *rows):
    return L.tensor(list(rows), dtype=L.int64)


def s2s_cfg(L, **kw):
    base = dict(src_vocab_size=13, tgt_vocab_size=13, d_model=8, nhead=2, num_encoder_layers=1,
                num_decoder_layers=1, dim_feedforward=16, dropout=0.0, max_len=6)
    base.update(kw)
    return L.models.Seq2SeqConfig(**base)


def s2s(L):
    return L.models.Seq2SeqTransformer(s2s_cfg(L))


def mha(L, **kw):
    return L.nn.MultiheadAttention(8, 2, batch_first=True, **kw)


def x3(L, B=2, T=3, E=8, dtype=None):
    return L.randn(B, T, E) if dtype is None else L.randn(B, T, E).to(dtype)


def tds(L, n=4):
    return L.utils.data.TensorDataset(L.arange(n))


def enc_layer(L, **kw):
    return L.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, **kw)


def dec_layer(L, **kw):
    return L.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, **kw)


def parallel(L):
    import importlib
    return importlib.import_module(L.__name__ + ".nn.parallel")


# message patterns naming an argument
SHAPE_MISMATCH = r"shape|size|dimension|match|\d+x\d+"
NOT_TENSOR = r"(?i)tensor"
SIZES = r"str|float|sizes must be ints"      # the sizes at fault are printed


# ---- the table ------------------------------------------------------------------------------
CASES = [
    # -- nn.Linear --------------------------------------------------------------------------------
    C("Linear.ctor_negative_in", lambda L: L.nn.Linear(-1, 3), RuntimeError, r"-1"),
    C("Linear.ctor_negative_out", lambda L: L.nn.Linear(3, -2), RuntimeError, r"-2"),
    C("Linear.ctor_str", lambda L: L.nn.Linear("3", 4), TypeError, SIZES),
    C("Linear.ctor_none", lambda L: L.nn.Linear(None, 4), TypeError, r"None"),
    C("Linear.ctor_float", lambda L: L.nn.Linear(2.5, 3), TypeError, SIZES),
    C("Linear.fwd_wrong_in", lambda L: L.nn.Linear(3, 4)(L.ones(2, 5)), RuntimeError,
      r"5", isolate=True),
    C("Linear.fwd_0d", lambda L: L.nn.Linear(3, 4)(L.tensor(1.0)), RuntimeError,
      r"input \(\)", isolate=True),
    C("Linear.fwd_int", lambda L: L.nn.Linear(3, 4)(L.ones(2, 3, dtype=L.int64)), RuntimeError,
      r"(?i)long|int64|dtype", isolate=True),
    C("Linear.fwd_float64", lambda L: L.nn.Linear(3, 4)(L.ones(2, 3, dtype=L.float64)),
      RuntimeError, r"(?i)double|float64|dtype", isolate=True),
    C("Linear.fwd_list", lambda L: L.nn.Linear(3, 4)([[1.0, 2.0, 3.0]]), TypeError, NOT_TENSOR),
    C("Linear.fwd_none", lambda L: L.nn.Linear(3, 4)(None), TypeError, NOT_TENSOR),
    C("Linear.fwd_str", lambda L: L.nn.Linear(3, 4)("x"), TypeError, NOT_TENSOR),
    C("Linear.fwd_empty_wrong_in", lambda L: L.nn.Linear(3, 4)(L.ones(0, 5)), RuntimeError,
      r"5", isolate=True),
    # -- nn.Embedding -----------------------------------------------------------------------------
    C("Embedding.ctor_negative_num", lambda L: L.nn.Embedding(-1, 3), RuntimeError, r"-1"),
    C("Embedding.ctor_negative_dim", lambda L: L.nn.Embedding(3, -4), RuntimeError, r"-4"),
    C("Embedding.ctor_str", lambda L: L.nn.Embedding("3", 2), TypeError, SIZES),
    C("Embedding.fwd_index_too_large", lambda L: L.nn.Embedding(5, 3)(tokens(L, 5)), IndexError,
      r"range|5", isolate=True),
    C("Embedding.fwd_index_negative", lambda L: L.nn.Embedding(5, 3)(tokens(L, -1)), IndexError,
      r"range|-1", isolate=True),
    C("Embedding.fwd_index_huge", lambda L: L.nn.Embedding(5, 3)(tokens(L, 2 ** 40)), IndexError,
      r"range|1099511627776", isolate=True),
    C("Embedding.fwd_float_indices", lambda L: L.nn.Embedding(5, 3)(L.ones(2)), RuntimeError,
      r"(?i)indices|long|int", isolate=True),
    C("Embedding.fwd_list", lambda L: L.nn.Embedding(5, 3)([1, 2]), TypeError, NOT_TENSOR),
    C("Embedding.fwd_none", lambda L: L.nn.Embedding(5, 3)(None), TypeError, NOT_TENSOR),
    # -- nn.RNN / nn.RNNCell ----------------------------------------------------------------------
    C("RNN.ctor_zero_hidden", lambda L: L.nn.RNN(3, 0), ValueError, r"hidden_size"),
    C("RNN.ctor_bad_nonlinearity", lambda L: L.nn.RNN(3, 4, nonlinearity="gelu"), ValueError,
      r"nonlinearity 'gelu'"),
    C("RNN.ctor_zero_layers", lambda L: L.nn.RNN(3, 4, num_layers=0), ValueError, r"num_layers"),
    C("RNN.ctor_dropout_above_1", lambda L: L.nn.RNN(3, 4, dropout=1.5), ValueError, r"dropout"),
    C("RNN.fwd_wrong_input_size", lambda L: L.nn.RNN(3, 4)(L.ones(5, 2, 7)), RuntimeError,
      r"input_size. Expected 3, got 7"),
    C("RNN.fwd_4d", lambda L: L.nn.RNN(3, 4)(L.ones(5, 2, 3, 1)), ValueError, r"4D"),
    C("RNN.fwd_empty_sequence", lambda L: L.nn.RNN(3, 4)(L.ones(0, 2, 3)), RuntimeError,
      r"sequence length to be larger than 0"),
    C("RNN.fwd_empty_sequence_grad",
      lambda L: L.nn.RNN(3, 4, batch_first=True)(L.ones(2, 0, 3, requires_grad=True)),
      RuntimeError, r"sequence length to be larger than 0"),
    C("RNN.fwd_h0_shape", lambda L: L.nn.RNN(3, 4)(L.ones(5, 2, 3), L.zeros(1, 3, 4)),
      RuntimeError, r"\(1, 2, 4\), got \[1, 3, 4\]"),
    C("RNN.fwd_list", lambda L: L.nn.RNN(3, 4)([[1.0, 2.0, 3.0]]), TypeError, NOT_TENSOR,
      torch=False),                                   # torch: AttributeError
    C("RNNCell.fwd_wrong_input_size", lambda L: L.nn.RNNCell(3, 4)(L.ones(2, 5)), RuntimeError,
      r"got 5 expected 3"),
    C("RNNCell.fwd_h_batch", lambda L: L.nn.RNNCell(3, 4)(L.ones(2, 3), L.zeros(3, 4)),
      RuntimeError, r"batch size 2 .* batch size 3"),
    C("RNNCell.fwd_none_input", lambda L: L.nn.RNNCell(3, 4)(None), TypeError, NOT_TENSOR,
      torch=False),                                   # torch: AttributeError
    C("RNNCell.ctor_bad_nonlinearity", lambda L: L.nn.RNNCell(3, 4, nonlinearity="x"),
      ValueError, r"nonlinearity 'x'", torch=False),  # torch accepts it until forward

    # -- nn.LayerNorm / nn.RMSNorm ----------------------------------------------------------------
    C("LayerNorm.ctor_negative", lambda L: L.nn.LayerNorm(-1), RuntimeError, r"-1"),
    C("LayerNorm.ctor_str", lambda L: L.nn.LayerNorm("a"), TypeError, SIZES),
    C("LayerNorm.ctor_none", lambda L: L.nn.LayerNorm(None), TypeError, r"None"),
    C("LayerNorm.fwd_wrong_last_dim", lambda L: L.nn.LayerNorm(4)(L.ones(2, 3)), RuntimeError,
      r"normalized_shape", isolate=True),
    C("LayerNorm.fwd_0d", lambda L: L.nn.LayerNorm(4)(L.tensor(1.0)), RuntimeError,
      r"normalized_shape", isolate=True),
    C("LayerNorm.fwd_2d_shape_mismatch", lambda L: L.nn.LayerNorm((2, 3))(L.ones(3, 2)),
      RuntimeError, r"normalized_shape", isolate=True),
    C("LayerNorm.fwd_list", lambda L: L.nn.LayerNorm(3)([1.0, 2.0, 3.0]), TypeError, NOT_TENSOR),
    C("RMSNorm.ctor_negative", lambda L: L.nn.RMSNorm(-3), RuntimeError, r"-3"),
    C("RMSNorm.ctor_str", lambda L: L.nn.RMSNorm("a"), TypeError, SIZES),
    C("RMSNorm.fwd_wrong_last_dim", lambda L: L.nn.RMSNorm(4)(L.ones(2, 3)), RuntimeError,
      r"normalized_shape", isolate=True),
    C("RMSNorm.fwd_list", lambda L: L.nn.RMSNorm(3)([1.0, 2.0, 3.0]), TypeError, NOT_TENSOR),
    # -- activations and dropout ------------------------------------------------------------------
    C("Dropout.ctor_negative", lambda L: L.nn.Dropout(-0.1), ValueError, r"probability"),
    C("Dropout.ctor_above_one", lambda L: L.nn.Dropout(1.5), ValueError, r"probability"),
    C("Dropout.ctor_str", lambda L: L.nn.Dropout("a"), TypeError, r"str"),
    C("Dropout.ctor_none", lambda L: L.nn.Dropout(None), TypeError, r"None"),
    # torch accepts p=nan (every comparison is false) and then drops at random: ours refuses it
    C("Dropout.ctor_nan", lambda L: L.nn.Dropout(float("nan")), ValueError, r"probability.*nan",
      torch=False),
    C("Dropout.fwd_list", lambda L: L.nn.Dropout(0.5)([1.0, 2.0]), TypeError, NOT_TENSOR),
    C("Dropout.fwd_int", lambda L: L.nn.Dropout(0.5)(L.ones(4, dtype=L.int64)), RuntimeError,
      r"(?i)long|int64|float"),
    C("ReLU.fwd_list", lambda L: L.nn.ReLU()([1.0]), TypeError, NOT_TENSOR),
    C("ReLU.fwd_str", lambda L: L.nn.ReLU()("a"), TypeError, NOT_TENSOR),
    C("ReLU.fwd_none", lambda L: L.nn.ReLU()(None), TypeError, NOT_TENSOR),
    C("GELU.bad_approximate", lambda L: L.nn.GELU("foo")(L.ones(2)), RuntimeError,
      r"approximate"),
    C("GELU.fwd_list", lambda L: L.nn.GELU()([1.0]), TypeError, NOT_TENSOR),
    C("Tanh.fwd_list", lambda L: L.nn.Tanh()([1.0]), TypeError, NOT_TENSOR),
    C("Tanh.fwd_none", lambda L: L.nn.Tanh()(None), TypeError, NOT_TENSOR),
    C("Sigmoid.fwd_list", lambda L: L.nn.Sigmoid()([1.0]), TypeError, NOT_TENSOR),
    C("Sigmoid.fwd_str", lambda L: L.nn.Sigmoid()("a"), TypeError, NOT_TENSOR),
    C("SiLU.fwd_list", lambda L: L.nn.SiLU()([1.0]), TypeError, NOT_TENSOR),
    C("Softmax.dim_too_large", lambda L: L.nn.Softmax(dim=2)(L.ones(2, 3)), IndexError,
      r"(?i)dimension.*range"),
    C("Softmax.dim_too_negative", lambda L: L.nn.Softmax(dim=-3)(L.ones(2, 3)), IndexError,
      r"(?i)dimension.*range"),
    # torch's Softmax / LogSoftmax / losses / Parameter call a method of the list (AttributeError)
    C("Softmax.fwd_list", lambda L: L.nn.Softmax(0)([1.0]), TypeError, NOT_TENSOR, torch=False),
    C("Softmax.dim_str", lambda L: L.nn.Softmax(dim="a")(L.ones(2, 3)), TypeError, r"dim|str"),
    C("LogSoftmax.dim_too_large", lambda L: L.nn.LogSoftmax(dim=5)(L.ones(2, 3)), IndexError,
      r"(?i)dimension.*range"),
    C("LogSoftmax.fwd_none", lambda L: L.nn.LogSoftmax(0)(None), TypeError, NOT_TENSOR,
      torch=False),
    # torch's nn.Flatten calls input.flatten: AttributeError for a list; ours says TypeError
    C("Flatten.fwd_list", lambda L: L.nn.Flatten()([1.0, 2.0]), TypeError, NOT_TENSOR,
      torch=False),
    C("Flatten.start_dim_out_of_range", lambda L: L.nn.Flatten(3)(L.ones(2, 3)), IndexError,
      r"(?i)dimension.*range"),
    C("Flatten.start_after_end", lambda L: L.nn.Flatten(1, 0)(L.ones(2, 3, 4)), RuntimeError,
      r"start_dim"),
    # -- containers ------------------------------------------------------------------------------
    C("Sequential.not_a_module", lambda L: L.nn.Sequential(L.nn.ReLU(), 3), TypeError,
      r"int.*Module|Module.*int"),
    C("Sequential.index_out_of_range", lambda L: L.nn.Sequential(L.nn.ReLU())[5], IndexError,
      r"5"),
    C("Sequential.index_str", lambda L: L.nn.Sequential(L.nn.ReLU())["a"], TypeError, r"str"),
    C("Sequential.append_not_module", lambda L: L.nn.Sequential().append("x"), TypeError,
      r"str"),
    C("Sequential.fwd_propagates_shape", lambda L: L.nn.Sequential(L.nn.Linear(2, 3))(
        L.ones(1, 5)), RuntimeError, r"5", isolate=True),
    C("ModuleList.not_iterable", lambda L: L.nn.ModuleList(5), TypeError, r"iterable"),
    C("ModuleList.not_a_module", lambda L: L.nn.ModuleList([L.nn.ReLU(), 1]), TypeError,
      r"int"),
    C("ModuleList.index_out_of_range", lambda L: L.nn.ModuleList()[0], IndexError, r"0"),
    C("ModuleList.extend_not_iterable", lambda L: L.nn.ModuleList().extend(3), TypeError,
      r"iterable"),
    C("ModuleList.append_not_module", lambda L: L.nn.ModuleList().append("x"), TypeError,
      r"str"),
    C("ModuleDict.not_iterable", lambda L: L.nn.ModuleDict(5), TypeError, r"iterable|int"),
    C("ModuleDict.value_not_module", lambda L: L.nn.ModuleDict({"a": 1}), TypeError, r"int"),
    C("ModuleDict.key_not_str", lambda L: L.nn.ModuleDict({1: L.nn.ReLU()}), TypeError,
      r"name.*str|string"),
    C("ModuleDict.key_with_dot", lambda L: L.nn.ModuleDict({"a.b": L.nn.ReLU()}), KeyError,
      r"dot|\\\.|\."),
    C("ModuleDict.key_empty", lambda L: L.nn.ModuleDict({"": L.nn.ReLU()}), KeyError,
      r"empty"),
    C("ModuleDict.missing_key", lambda L: L.nn.ModuleDict()["nope"], KeyError, r"nope"),
    C("ModuleDict.setitem_not_module", lambda L: L.nn.ModuleDict().__setitem__("a", 3.0),
      TypeError, r"float"),
    # -- nn.Module API ---------------------------------------------------------------------------
    C("Module.forward_not_defined", lambda L: L.nn.Module()(L.ones(1)), NotImplementedError,
      r"forward"),
    C("Module.missing_attribute", lambda L: L.nn.Linear(2, 2).nope, AttributeError, r"nope"),
    C("Module.register_buffer_dot", lambda L: L.nn.Linear(2, 2).register_buffer(
        "a.b", L.ones(1)), KeyError, r"\."),
    C("Module.register_buffer_empty_name", lambda L: L.nn.Linear(2, 2).register_buffer(
        "", L.ones(1)), KeyError, r"empty"),
    C("Module.register_buffer_name_int", lambda L: L.nn.Linear(2, 2).register_buffer(
        1, L.ones(1)), TypeError, r"str|string"),
    C("Module.register_buffer_list", lambda L: L.nn.Linear(2, 2).register_buffer("x", [1.0]),
      TypeError, r"list"),
    C("Module.register_buffer_existing_attr", lambda L: module_with_attr(L).register_buffer(
        "foo", L.ones(1)), KeyError, r"foo.*already exists"),
    C("Module.register_buffer_over_parameter", lambda L: L.nn.Linear(2, 2).register_buffer(
        "weight", L.ones(1)), KeyError, r"weight.*already exists"),
    C("Module.register_parameter_tensor", lambda L: L.nn.Linear(2, 2).register_parameter(
        "w", L.ones(1)), TypeError, r"w|Parameter"),
    C("Module.register_parameter_dot", lambda L: L.nn.Linear(2, 2).register_parameter(
        "a.b", param(L, 1)), KeyError, r"\."),
    C("Module.register_parameter_existing_attr", lambda L: L.nn.Linear(2, 2).register_parameter(
        "in_features", param(L, 1)), KeyError, r"in_features.*already exists"),
    C("Module.add_module_not_module", lambda L: L.nn.Linear(2, 2).add_module("x", 3), TypeError,
      r"int"),
    C("Module.add_module_name_int", lambda L: L.nn.Linear(2, 2).add_module(3, L.nn.ReLU()),
      TypeError, r"str|string"),
    C("Module.add_module_dot", lambda L: L.nn.Linear(2, 2).add_module("a.b", L.nn.ReLU()),
      KeyError, r"\."),
    C("Module.assign_tensor_to_parameter", lambda L: setattr(L.nn.Linear(2, 2), "weight",
                                                              L.ones(2, 2)), TypeError,
      r"weight"),
    C("Module.assign_int_to_submodule", lambda L: setattr(L.nn.Sequential(L.nn.ReLU()), "0", 3),
      TypeError, r"'0'|child module"),
    C("Module.train_not_bool", lambda L: L.nn.Linear(2, 2).train("yes"), ValueError,
      r"boolean"),
    C("Module.to_bad_device", lambda L: L.nn.Linear(2, 2).to("tpu"), RuntimeError, r"tpu"),
    C("Module.to_int_dtype", lambda L: L.nn.Linear(2, 2).to(L.int64), TypeError,
      r"floating point.*int64"),
    C("Module.to_device_kw_bad", lambda L: L.nn.Linear(2, 2).to(device="tpu"), RuntimeError,
      r"tpu"),
    # torch reads 5 as a device index (and fails for want of an accelerator): ours, a TypeError
    C("Module.to_number", lambda L: L.nn.Linear(2, 2).to(5), TypeError, r"5|int", torch=False),
    C("Module.apply_not_callable", lambda L: L.nn.Linear(2, 2).apply(None), TypeError,
      r"callable"),
    C("Module.load_state_dict_missing", lambda L: L.nn.Linear(2, 2).load_state_dict(
        linear_sd(L, bias=None)), RuntimeError, r"Missing key.*bias"),
    C("Module.load_state_dict_unexpected", lambda L: L.nn.Linear(2, 2).load_state_dict(
        linear_sd(L, extra=L.ones(1))), RuntimeError, r"Unexpected key.*extra"),
    C("Module.load_state_dict_shape", lambda L: L.nn.Linear(2, 2).load_state_dict(
        linear_sd(L, weight=L.ones(3, 2))), RuntimeError, r"size mismatch for weight"),
    C("Module.load_state_dict_shape_nonstrict", lambda L: L.nn.Linear(2, 2).load_state_dict(
        linear_sd(L, bias=L.ones(5)), strict=False), RuntimeError, r"size mismatch for bias"),
    C("Module.load_state_dict_list_value", lambda L: L.nn.Linear(2, 2).load_state_dict(
        linear_sd(L, weight=[[1.0, 2.0], [3.0, 4.0]])), RuntimeError, r"weight.*list|list.*weight"),
    C("Module.load_state_dict_none_value", lambda L: L.nn.Linear(2, 2).load_state_dict(
        linear_sd(L, bias=0.5)), RuntimeError, r"bias.*float|float.*bias"),
    C("Module.load_state_dict_not_mapping", lambda L: L.nn.Linear(2, 2).load_state_dict([1]),
      TypeError, r"state_dict.*list"),
    C("Module.load_state_dict_none", lambda L: L.nn.Linear(2, 2).load_state_dict(None),
      TypeError, r"state_dict.*NoneType"),
    C("Parameter.from_list", lambda L: L.nn.Parameter([1.0, 2.0]), TypeError, r"list",
      torch=False),
    C("Parameter.from_int", lambda L: L.nn.Parameter(5), TypeError, r"int", torch=False),
    C("Parameter.int_dtype_requires_grad", lambda L: L.nn.Parameter(L.ones(2, dtype=L.int64)),
      RuntimeError, r"floating point"),
    # -- nn.init ----------------------------------------------------------------------------------
    C("init.xavier_uniform_1d", lambda L: L.nn.init.xavier_uniform_(L.ones(3)), ValueError,
      r"fewer than 2 dimensions"),
    C("init.xavier_normal_0d", lambda L: L.nn.init.xavier_normal_(L.tensor(1.0)), ValueError,
      r"fewer than 2 dimensions"),
    C("init.kaiming_uniform_1d", lambda L: L.nn.init.kaiming_uniform_(L.ones(3)), ValueError,
      r"fewer than 2 dimensions"),
    C("init.kaiming_normal_bad_mode", lambda L: L.nn.init.kaiming_normal_(L.ones(2, 2),
                                                                          mode="bad"),
      ValueError, r"[Mm]ode bad"),
    C("init.kaiming_uniform_bad_mode", lambda L: L.nn.init.kaiming_uniform_(L.ones(2, 2),
                                                                            mode="fan_avg"),
      ValueError, r"[Mm]ode fan_avg"),
    C("init.kaiming_bad_nonlinearity", lambda L: L.nn.init.kaiming_uniform_(
        L.ones(2, 2), nonlinearity="swish"), ValueError, r"nonlinearity swish"),
    C("init.calculate_gain_unknown", lambda L: L.nn.init.calculate_gain("swish"), ValueError,
      r"nonlinearity swish"),
    C("init.calculate_gain_bad_slope", lambda L: L.nn.init.calculate_gain("leaky_relu", "x"),
      ValueError, r"negative_slope x"),
    C("init.uniform_reversed_range", lambda L: L.nn.init.uniform_(L.ones(2, 2), 2.0, 1.0),
      RuntimeError, r"from=2.*to=1"),
    C("init.normal_negative_std", lambda L: L.nn.init.normal_(L.ones(2, 2), 0.0, -1.0),
      RuntimeError, r"std"),
    C("init.constant_str", lambda L: L.nn.init.constant_(L.ones(2), "a"), TypeError, r"str"),
    # torch calls list.uniform_ / None.zero_: AttributeError; ours names the argument
    C("init.uniform_list", lambda L: L.nn.init.uniform_([1.0]), TypeError, r"tensor.*list",
      torch=False),
    C("init.zeros_none", lambda L: L.nn.init.zeros_(None), TypeError, r"tensor.*NoneType",
      torch=False),
    C("init.xavier_uniform_list", lambda L: L.nn.init.xavier_uniform_([[1.0]]), TypeError,
      r"tensor.*list", torch=False),
    # -- nn.utils.clip_grad_norm_ ----------------------------------------------------------------
    C("clip_grad_norm_.max_norm_str", lambda L: L.nn.utils.clip_grad_norm_(
        [with_grad(L)], "a"), ValueError, r"max_norm"),
    C("clip_grad_norm_.max_norm_none", lambda L: L.nn.utils.clip_grad_norm_(
        [with_grad(L)], None), TypeError, r"max_norm"),
    C("clip_grad_norm_.norm_type_str", lambda L: L.nn.utils.clip_grad_norm_(
        [with_grad(L)], 1.0, norm_type="l2"), ValueError, r"norm_type"),
    C("clip_grad_norm_.norm_type_none", lambda L: L.nn.utils.clip_grad_norm_(
        [with_grad(L)], 1.0, norm_type=None), TypeError, r"norm_type"),
    C("clip_grad_norm_.params_none", lambda L: L.nn.utils.clip_grad_norm_(None, 1.0), TypeError,
      r"parameters"),
    C("clip_grad_norm_.params_int", lambda L: L.nn.utils.clip_grad_norm_(5, 1.0), TypeError,
      r"parameters"),
    # torch reads p.grad of each item: AttributeError for a number; ours names the argument
    C("clip_grad_norm_.params_numbers", lambda L: L.nn.utils.clip_grad_norm_([1, 2], 1.0),
      TypeError, r"parameters.*int", torch=False),
    C("clip_grad_norm_.nan_grad", lambda L: L.nn.utils.clip_grad_norm_(
        [nan_grad(L)], 1.0, error_if_nonfinite=True), RuntimeError, r"non-finite"),
    C("clip_grad_norm_.inf_grad_l1", lambda L: L.nn.utils.clip_grad_norm_(
        [nan_grad(L, math.inf)], 1.0, norm_type=1, error_if_nonfinite=True), RuntimeError,
      r"non-finite"),
    C("clip_grad_norm_.inf_grad_max", lambda L: L.nn.utils.clip_grad_norm_(
        [nan_grad(L, -math.inf)], 1.0, norm_type=math.inf, error_if_nonfinite=True),
      RuntimeError, r"non-finite"),
    # -- optimizers ------------------------------------------------------------------------------
    *[case for opt in ("SGD", "Adam", "AdamW") for case in (
        C(f"{opt}.negative_lr", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)], lr=-0.1),
          ValueError, r"learning rate.*-0.1"),
        C(f"{opt}.lr_str", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)], lr="a"),
          TypeError, r"lr|learning rate"),
        C(f"{opt}.lr_none", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)], lr=None),
          TypeError, r"lr|learning rate"),
        # torch accepts lr=nan (it compares false with 0) and trains to NaN: ours refuses
        C(f"{opt}.lr_nan", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)], lr=math.nan),
          ValueError, r"learning rate.*nan", torch=False),
        C(f"{opt}.negative_weight_decay", lambda L, o=opt: getattr(L.optim, o)(
            [param(L, 3)], weight_decay=-1.0), ValueError, r"weight_decay.*-1"),
        C(f"{opt}.params_tensor", lambda L, o=opt: getattr(L.optim, o)(param(L, 3)),
          TypeError, r"iterable"),
        C(f"{opt}.params_empty", lambda L, o=opt: getattr(L.optim, o)([]), ValueError,
          r"empty parameter list"),
        C(f"{opt}.params_none", lambda L, o=opt: getattr(L.optim, o)(None), TypeError,
          r"params|iterable"),
        C(f"{opt}.params_int", lambda L, o=opt: getattr(L.optim, o)(5), TypeError,
          r"params|iterable"),
        C(f"{opt}.params_numbers", lambda L, o=opt: getattr(L.optim, o)([1.0, 2.0]), TypeError,
          r"Tensors.*float"),
        C(f"{opt}.params_non_leaf", lambda L, o=opt: getattr(L.optim, o)([param(L, 3) * 2]),
          ValueError, r"non-leaf"),
        C(f"{opt}.params_set", lambda L, o=opt: getattr(L.optim, o)([{"params": {param(L, 3)}}]),
          TypeError, r"set|ordered"),
        # torch only warns on a duplicated parameter (and steps it twice): ours refuses
        C(f"{opt}.params_duplicated", lambda L, o=opt: dup_params(L, o), ValueError,
          r"duplicate", torch=False),
        C(f"{opt}.params_in_two_groups", lambda L, o=opt: two_groups(L, o), ValueError,
          r"more than one parameter group"),
        C(f"{opt}.group_without_params", lambda L, o=opt: getattr(L.optim, o)([{"lr": 0.1}]),
          KeyError, r"params"),
        C(f"{opt}.step_closure_not_callable", lambda L, o=opt: getattr(L.optim, o)(
            [param(L, 3)]).step("x"), TypeError, r"callable"),
    )],
    C("SGD.negative_momentum", lambda L: L.optim.SGD([param(L, 3)], lr=0.1, momentum=-0.5),
      ValueError, r"momentum.*-0.5"),
    C("SGD.nesterov_without_momentum", lambda L: L.optim.SGD([param(L, 3)], lr=0.1,
                                                             nesterov=True),
      ValueError, r"[Nn]esterov"),
    C("SGD.nesterov_with_dampening", lambda L: L.optim.SGD([param(L, 3)], lr=0.1, momentum=0.9,
                                                           dampening=0.1, nesterov=True),
      ValueError, r"[Nn]esterov.*dampening"),
    C("SGD.momentum_str", lambda L: L.optim.SGD([param(L, 3)], lr=0.1, momentum="a"),
      TypeError, r"momentum"),
    *[case for opt in ("Adam", "AdamW") for case in (
        C(f"{opt}.beta1_one", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)],
                                                                   betas=(1.0, 0.999)),
          ValueError, r"beta parameter at index 0"),
        C(f"{opt}.beta2_negative", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)],
                                                                        betas=(0.9, -0.1)),
          ValueError, r"beta parameter at index 1"),
        C(f"{opt}.betas_one_value", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)],
                                                                         betas=(0.9,)),
          IndexError, r"betas"),
        C(f"{opt}.betas_none", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)], betas=None),
          TypeError, r"betas"),
        C(f"{opt}.beta_str", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)],
                                                                  betas=("a", 0.9)),
          TypeError, r"beta"),
        C(f"{opt}.negative_eps", lambda L, o=opt: getattr(L.optim, o)([param(L, 3)], eps=-1e-8),
          ValueError, r"epsilon.*-1e-08"),
    )],
    C("Optimizer.step_with_grad_wrong_shape", lambda L: step_bad_grad(L), RuntimeError,
      r"shape|size", torch=False),
    C("Optimizer.add_param_group_not_dict", lambda L: sgd(L).add_param_group([param(L, 2)]),
      TypeError, r"dict"),
    C("Optimizer.load_state_dict_not_dict", lambda L: sgd(L).load_state_dict([1]), TypeError,
      r"state_dict.*list"),
    # torch: KeyError 'param_groups'; ours a ValueError naming it (torch=False: other class)
    C("Optimizer.load_state_dict_no_groups", lambda L: sgd(L).load_state_dict({"state": {}}),
      ValueError, r"param_groups", torch=False),
    C("Optimizer.load_state_dict_group_count", lambda L: load_into_sgd(
        L, opt_sd(L, param_groups=opt_sd(L)["param_groups"] * 2)), ValueError,
      r"number of parameter groups"),
    C("Optimizer.load_state_dict_group_size", lambda L: load_into_sgd(L, opt_sd(L), n_params=2),
      ValueError, r"size of optimizer's group"),
    # torch loads a wrong-shaped momentum buffer and fails at the next step: ours at load
    C("Optimizer.load_state_dict_state_shape", lambda L: load_into_sgd(
        L, opt_sd(L, state={0: {"momentum_buffer": L.ones(5)}})), ValueError,
      r"momentum_buffer.*\(5,\)", torch=False),
    C("Optimizer.load_state_dict_unknown_param", lambda L: load_into_sgd(
        L, opt_sd(L, state={7: {"momentum_buffer": L.ones(3)}})), ValueError, r"parameter 7",
      torch=False),
    C("Optimizer.load_state_dict_bad_key", lambda L: load_into_sgd(
        L, opt_sd(L, state={"abc": {"momentum_buffer": L.ones(3)}})), ValueError, r"abc",
      torch=False),
    C("Optimizer.load_state_dict_state_not_dict", lambda L: load_into_sgd(
        L, opt_sd(L, state={0: 5})), TypeError, r"parameter 0.*int", torch=False),
    # -- lr schedulers ---------------------------------------------------------------------------
    C("LRScheduler.not_an_optimizer", lambda L: L.optim.lr_scheduler.StepLR(5, 2), TypeError,
      r"int is not an Optimizer"),
    C("LRScheduler.resume_without_initial_lr", lambda L: L.optim.lr_scheduler.StepLR(
        sgd(L), 2, last_epoch=3), KeyError, r"initial_lr"),
    # torch: ZeroDivisionError at the first step; ours refuses the size at construction
    C("StepLR.step_size_zero", lambda L: sched(L, "StepLR", 0), ValueError, r"step_size",
      torch=False),
    C("StepLR.step_size_negative", lambda L: sched(L, "StepLR", -2), ValueError, r"step_size",
      torch=False),
    C("StepLR.step_size_str", lambda L: sched(L, "StepLR", "a"), TypeError, r"step_size",
      torch=False),
    C("StepLR.gamma_str", lambda L: sched(L, "StepLR", 1, gamma="a"), TypeError, r"gamma",
      torch=False),
    C("CosineAnnealingLR.T_max_zero", lambda L: sched(L, "CosineAnnealingLR", 0), ValueError,
      r"T_max", torch=False),
    C("CosineAnnealingLR.T_max_negative", lambda L: sched(L, "CosineAnnealingLR", -3), ValueError,
      r"T_max", torch=False),
    C("CosineAnnealingLR.not_an_optimizer", lambda L: L.optim.lr_scheduler.CosineAnnealingLR(
        None, 5), TypeError, r"NoneType is not an Optimizer"),
    C("LambdaLR.not_callable", lambda L: L.optim.lr_scheduler.LambdaLR(sgd(L), "x"), TypeError,
      r"callable|lr_lambda"),
    C("LambdaLR.wrong_count", lambda L: L.optim.lr_scheduler.LambdaLR(
        sgd(L), [lambda s: 1.0, lambda s: 1.0]), ValueError, r"Expected 1 lr_lambdas.*2"),
    C("warmup_cosine.negative_warmup", lambda L: L.optim.lr_scheduler.warmup_cosine(
        sgd(L), -1, 10), ValueError, r"warmup_steps=-1", torch=False),
    C("warmup_cosine.total_below_warmup", lambda L: L.optim.lr_scheduler.warmup_cosine(
        sgd(L), 10, 5), ValueError, r"total_steps=5", torch=False),
    C("warmup_cosine.negative_min_lr", lambda L: L.optim.lr_scheduler.warmup_cosine(
        sgd(L), 1, 5, min_lr=-1.0), ValueError, r"min_lr", torch=False),
    C("warmup_cosine.not_an_optimizer", lambda L: L.optim.lr_scheduler.warmup_cosine(
        "opt", 1, 5), TypeError, r"str is not an Optimizer", torch=False),
    # -- attention, transformer and positional layers ---------------------------------------------
    C("MultiheadAttention.embed_dim_zero", lambda L: L.nn.MultiheadAttention(0, 1), ValueError,
      r"embed_dim"),
    C("MultiheadAttention.num_heads_zero", lambda L: L.nn.MultiheadAttention(8, 0), ValueError,
      r"num_heads"),
    C("MultiheadAttention.not_divisible", lambda L: L.nn.MultiheadAttention(10, 3),
      AssertionError, r"divisible by num_heads"),
    C("MultiheadAttention.embed_dim_str", lambda L: L.nn.MultiheadAttention("8", 2), TypeError,
      r"embed_dim|str"),
    C("MultiheadAttention.wrong_embed", lambda L: mha(L)(x3(L, E=6), x3(L, E=6), x3(L, E=6)),
      AssertionError, r"embedding dimension of 8"),
    C("MultiheadAttention.query_4d", lambda L: mha(L)(L.ones(1, 2, 3, 8), L.ones(1, 2, 3, 8),
                                                      L.ones(1, 2, 3, 8)),
      AssertionError, r"query"),
    C("MultiheadAttention.query_1d", lambda L: mha(L)(L.ones(8), L.ones(8), L.ones(8)),
      AssertionError, r"query"),
    C("MultiheadAttention.attn_mask_shape", lambda L: mha(L)(
        x3(L), x3(L), x3(L), attn_mask=L.zeros(4, 4)), RuntimeError, r"attn_mask"),
    C("MultiheadAttention.attn_mask_4d", lambda L: mha(L)(
        x3(L), x3(L), x3(L), attn_mask=L.zeros(1, 1, 3, 3)), AssertionError, r"attn_mask"),
    C("MultiheadAttention.attn_mask_int", lambda L: mha(L)(
        x3(L), x3(L), x3(L), attn_mask=L.zeros(3, 3, dtype=L.int64)), AssertionError,
      r"attn_mask"),
    C("MultiheadAttention.key_padding_mask_shape", lambda L: mha(L)(
        x3(L), x3(L), x3(L), key_padding_mask=L.zeros(2, 5, dtype=L.bool)), AssertionError,
      r"key_padding_mask"),
    C("MultiheadAttention.is_causal_without_mask", lambda L: mha(L)(
        x3(L), x3(L), x3(L), is_causal=True), RuntimeError, r"attn_mask"),
    C("MultiheadAttention.key_batch_mismatch", lambda L: mha(L)(x3(L), x3(L, B=3), x3(L, B=3)),
      (AssertionError, RuntimeError), r"key|batch|3"),
    C("MultiheadAttention.key_wrong_kdim", lambda L: mha(L)(x3(L), x3(L, E=5), x3(L, E=5)),
      RuntimeError, r"5", isolate=True),
    # torch calls query.dim() on a list: AttributeError; ours says TypeError
    C("MultiheadAttention.query_list", lambda L: mha(L)([1.0], [1.0], [1.0]), TypeError,
      r"query.*list", torch=False),
    C("MultiheadAttention.query_int", lambda L: mha(L)(*[L.ones(2, 3, 8, dtype=L.int64)] * 3),
      RuntimeError, r"(?i)long|int64|dtype", isolate=True),
    C("TransformerEncoderLayer.not_divisible", lambda L: L.nn.TransformerEncoderLayer(10, 3),
      AssertionError, r"divisible by num_heads"),
    C("TransformerEncoderLayer.bad_activation", lambda L: L.nn.TransformerEncoderLayer(
        8, 2, activation="swish"), RuntimeError, r"activation.*swish"),
    C("TransformerEncoderLayer.negative_ff", lambda L: L.nn.TransformerEncoderLayer(
        8, 2, dim_feedforward=-1), RuntimeError, r"-1"),
    C("TransformerEncoderLayer.bad_dropout", lambda L: L.nn.TransformerEncoderLayer(
        8, 2, dropout=1.5), ValueError, r"probability"),
    C("TransformerEncoderLayer.fwd_wrong_embed", lambda L: enc_layer(L)(L.ones(3, 2, 6)),
      AssertionError, r"embedding dimension of 8"),
    C("TransformerEncoderLayer.fwd_list", lambda L: enc_layer(L)([1.0]), TypeError,
      r"list|Tensor", torch=False),
    C("TransformerDecoderLayer.bad_activation", lambda L: L.nn.TransformerDecoderLayer(
        8, 2, activation=3), RuntimeError, r"activation.*3", torch=False),  # torch: at forward
    C("TransformerDecoderLayer.fwd_wrong_embed", lambda L: dec_layer(L)(
        L.ones(3, 2, 6), L.ones(4, 2, 8)), AssertionError, r"embedding dimension of 8"),
    C("TransformerDecoderLayer.memory_wrong_embed", lambda L: dec_layer(L)(
        L.ones(3, 2, 8), L.ones(4, 2, 5)), RuntimeError, r"5", isolate=True),
    # torch builds an empty stack and fails at forward with IndexError: ours at construction
    C("TransformerEncoder.negative_layers", lambda L: L.nn.TransformerEncoder(
        enc_layer(L), -1), ValueError, r"num_layers", torch=False),
    C("TransformerEncoder.zero_layers", lambda L: L.nn.TransformerEncoder(enc_layer(L), 0),
      ValueError, r"num_layers", torch=False),
    C("TransformerEncoder.layers_str", lambda L: L.nn.TransformerEncoder(enc_layer(L), "2"),
      TypeError, r"num_layers", torch=False),
    C("TransformerEncoder.layer_not_module", lambda L: L.nn.TransformerEncoder(5, 2),
      TypeError, r"int", torch=False),
    C("TransformerEncoder.fwd_wrong_embed", lambda L: L.nn.TransformerEncoder(
        enc_layer(L), 2)(L.ones(3, 2, 4)), AssertionError, r"embedding dimension of 8"),
    C("TransformerDecoder.zero_layers", lambda L: L.nn.TransformerDecoder(dec_layer(L), 0),
      ValueError, r"num_layers", torch=False),
    C("TransformerDecoder.fwd_wrong_embed", lambda L: L.nn.TransformerDecoder(
        dec_layer(L), 1)(L.ones(3, 2, 4), L.ones(3, 2, 8)), AssertionError,
      r"embedding dimension of 8"),
    C("KVCache.update_list", lambda L: L.nn.KVCache().update([1.0], [1.0]), TypeError,
      r"k.*list", torch=False),
    C("KVCache.update_shape_mismatch", lambda L: kv_twice(L, (1, 2, 3, 4), (1, 2, 1, 5)),
      RuntimeError, r"4|5", torch=False),
    C("KVCache.update_k_v_mismatch", lambda L: L.nn.KVCache().update(
        L.zeros(1, 2, 3, 4), L.zeros(1, 2, 5, 4)), ValueError, r"k.*v|\(1, 2, 5, 4\)",
      torch=False),
    C("KVCache.reorder_out_of_range", lambda L: kv_reorder(L, [0, 5]), IndexError, r"5",
      torch=False, isolate=True),
    C("generate_square_subsequent_mask.negative", lambda L: L.nn.generate_square_subsequent_mask(
        -1), RuntimeError, r"-1", torch=False),
    C("generate_square_subsequent_mask.str", lambda L: L.nn.generate_square_subsequent_mask(
        "a"), TypeError, SIZES, torch=False),
    C("SinusoidalPositionalEncoding.d_model_zero", lambda L: L.nn.SinusoidalPositionalEncoding(
        0), ValueError, r"d_model", torch=False),
    C("SinusoidalPositionalEncoding.max_len_negative", lambda L:
      L.nn.SinusoidalPositionalEncoding(4, max_len=-1), ValueError, r"max_len", torch=False),
    C("SinusoidalPositionalEncoding.too_long", lambda L: L.nn.SinusoidalPositionalEncoding(
        4, max_len=3)(L.ones(1, 5, 4)), ValueError, r"max_len 3", torch=False),
    C("SinusoidalPositionalEncoding.negative_offset", lambda L:
      L.nn.SinusoidalPositionalEncoding(4, max_len=8)(L.ones(1, 2, 4), offset=-1), ValueError,
      r"offset -1", torch=False),
    C("SinusoidalPositionalEncoding.wrong_d_model", lambda L:
      L.nn.SinusoidalPositionalEncoding(4, max_len=8)(L.ones(1, 2, 6)), RuntimeError,
      r"6", torch=False),
    C("SinusoidalPositionalEncoding.fwd_list", lambda L:
      L.nn.SinusoidalPositionalEncoding(4, max_len=8)([[1.0]]), TypeError, r"x.*list",
      torch=False),
    C("LearnedPositionalEmbedding.negative_max_len", lambda L:
      L.nn.LearnedPositionalEmbedding(-1, 4), ValueError, r"max_len", torch=False),
    C("LearnedPositionalEmbedding.too_long", lambda L: L.nn.LearnedPositionalEmbedding(
        3, 4)(L.ones(1, 5, 4)), ValueError, r"max_len 3", torch=False),
    C("LearnedPositionalEmbedding.offset_past_end", lambda L: L.nn.LearnedPositionalEmbedding(
        4, 4)(L.ones(1, 2, 4), offset=3), ValueError, r"offset 3", torch=False),
    C("LearnedPositionalEmbedding.fwd_none", lambda L: L.nn.LearnedPositionalEmbedding(
        4, 4)(None), TypeError, r"x.*NoneType", torch=False),
    # -- loss modules ----------------------------------------------------------------------------
    *[C(f"{loss}.bad_reduction", lambda L, lo=loss: getattr(L.nn, lo)(reduction="bad")(
        L.ones(2, 3).softmax(-1), L.ones(2, 3).softmax(-1)), ValueError, r"reduction|bad")
      for loss in ("MSELoss", "L1Loss", "KLDivLoss", "BCELoss", "BCEWithLogitsLoss")],
    *[C(f"{loss}.bad_reduction", lambda L, lo=loss: getattr(L.nn, lo)(reduction="bad")(
        L.ones(2, 3), L.tensor([0, 1])), ValueError, r"reduction|bad")
      for loss in ("CrossEntropyLoss", "NLLLoss")],
    *[C(f"{loss}.input_list", lambda L, lo=loss: getattr(L.nn, lo)()([0.5], L.ones(1)),
        TypeError, NOT_TENSOR, torch=False)
      for loss in ("MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss")],
    C("CrossEntropyLoss.weight_list", lambda L: L.nn.CrossEntropyLoss(weight=[1.0, 2.0]),
      TypeError, r"weight.*list|list.*weight"),
    C("CrossEntropyLoss.target_out_of_range", lambda L: L.nn.CrossEntropyLoss()(
        L.ones(2, 3), L.tensor([0, 3])), IndexError, r"3", isolate=True),
    C("CrossEntropyLoss.target_negative", lambda L: L.nn.CrossEntropyLoss()(
        L.ones(2, 3), L.tensor([0, -2])), IndexError, r"-2", isolate=True),
    C("CrossEntropyLoss.batch_mismatch", lambda L: L.nn.CrossEntropyLoss()(
        L.ones(2, 3), L.tensor([0, 1, 2])), ValueError, r"2.*3|3.*2"),
    C("CrossEntropyLoss.label_smoothing", lambda L: L.nn.CrossEntropyLoss(label_smoothing=1.5)(
        L.ones(2, 3), L.tensor([0, 1])), RuntimeError, r"label_smoothing"),
    C("CrossEntropyLoss.weight_wrong_size", lambda L: L.nn.CrossEntropyLoss(weight=L.ones(4))(
        L.ones(2, 3), L.tensor([0, 1])), RuntimeError, r"weight", isolate=True),
    C("NLLLoss.target_out_of_range", lambda L: L.nn.NLLLoss()(L.ones(2, 3), L.tensor([7, 0])),
      IndexError, r"7", isolate=True),
    C("NLLLoss.weight_wrong_size", lambda L: L.nn.NLLLoss(weight=L.ones(4))(
        L.ones(2, 3), L.tensor([0, 1])), RuntimeError, r"weight", isolate=True),
    C("NLLLoss.float_target", lambda L: L.nn.NLLLoss()(L.ones(2, 3), L.ones(2)), RuntimeError,
      r"(?i)target|long|float|int64", isolate=True),
    C("MSELoss.shape_mismatch", lambda L: L.nn.MSELoss()(L.ones(2, 3), L.ones(4, 3)),
      RuntimeError, r"2.*4|4.*2"),
    C("L1Loss.shape_mismatch", lambda L: L.nn.L1Loss()(L.ones(2, 3), L.ones(2, 5)),
      RuntimeError, r"3.*5|5.*3"),
    C("BCELoss.input_above_one", lambda L: L.nn.BCELoss()(L.full((2,), 1.5), L.ones(2)),
      RuntimeError, r"between 0 and 1"),
    C("BCELoss.input_nan", lambda L: L.nn.BCELoss()(L.full((2,), math.nan), L.ones(2)),
      RuntimeError, r"between 0 and 1"),
    C("BCELoss.shape_mismatch", lambda L: L.nn.BCELoss()(L.full((2,), 0.5), L.ones(3)),
      ValueError, r"size|shape"),
    C("BCEWithLogitsLoss.shape_mismatch", lambda L: L.nn.BCEWithLogitsLoss()(
        L.ones(2, 3), L.ones(2, 4)), ValueError, r"size|shape"),
    C("BCEWithLogitsLoss.pos_weight_wrong", lambda L: L.nn.BCEWithLogitsLoss(
        pos_weight=L.ones(5))(L.ones(2, 3), L.ones(2, 3)), RuntimeError, r"5|3"),
    C("KLDivLoss.shape_mismatch", lambda L: L.nn.KLDivLoss(reduction="batchmean")(
        L.ones(2, 3), L.ones(3, 3)), RuntimeError, r"2.*3|3.*2"),
    # -- parallel wrappers -----------------------------------------------------------------------
    C("DistributedDataParallel.no_process_group", lambda L: parallel(L).DistributedDataParallel(
        L.nn.Linear(2, 2)), (RuntimeError, ValueError), r"(?i)process group|initiali[sz]ed"),
    C("DataParallel.device_ids", lambda L: parallel(L).DataParallel(
        L.nn.Linear(2, 2), device_ids=[0, 1]), NotImplementedError, r"device_ids",
      torch=False),
    # -- models ----------------------------------------------------------------------------------
    C("GPTConfig.not_divisible", lambda L: gpt_cfg(L, n_embd=10, n_head=3), ValueError,
      r"n_embd.*divisible.*n_head", torch=False),
    *[C(f"GPTConfig.{field}_zero", lambda L, f=field: gpt_cfg(L, **{f: 0}), ValueError,
        field, torch=False)
      for field in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")],
    C("GPTConfig.negative_block_size", lambda L: gpt_cfg(L, block_size=-4), ValueError,
      r"block_size.*-4", torch=False),
    C("GPTConfig.dropout_above_one", lambda L: gpt_cfg(L, dropout=1.5), ValueError,
      r"dropout", torch=False),
    C("GPTConfig.dropout_nan", lambda L: gpt_cfg(L, dropout=math.nan), ValueError,
      r"dropout", torch=False),
    C("GPTConfig.vocab_size_str", lambda L: gpt_cfg(L, vocab_size="a"), TypeError,
      r"vocab_size", torch=False),
    C("GPTConfig.n_embd_none", lambda L: gpt_cfg(L, n_embd=None), TypeError, r"n_embd",
      torch=False),
    C("GPTConfig.n_embd_float", lambda L: gpt_cfg(L, n_embd=8.5), TypeError, r"n_embd",
      torch=False),
    C("GPT.block_size_exceeded", lambda L: gpt(L)(L.zeros(1, 9, dtype=L.int64)), ValueError,
      r"block_size 8", torch=False),
    C("GPT.idx_1d", lambda L: gpt(L)(L.zeros(4, dtype=L.int64)), ValueError, r"idx",
      torch=False),
    C("GPT.idx_list", lambda L: gpt(L)([[1, 2]]), TypeError, r"idx.*list", torch=False),
    C("GPT.idx_float", lambda L: gpt(L)(L.zeros(1, 3)), RuntimeError,
      r"(?i)idx|indices|int64|long", torch=False, isolate=True),
    C("GPT.vocab_index_too_large", lambda L: gpt(L)(tokens(L, [1, 11])), IndexError, r"11",
      torch=False, isolate=True),
    C("GPT.vocab_index_negative", lambda L: gpt(L)(tokens(L, [1, -3])), IndexError, r"-3",
      torch=False, isolate=True),
    C("GPT.targets_shape", lambda L: gpt(L)(tokens(L, [1, 2]), tokens(L, [1, 2, 3])),
      ValueError, r"targets", torch=False),
    C("GPT.targets_out_of_range", lambda L: gpt(L)(tokens(L, [1, 2]), tokens(L, [1, 11])),
      IndexError, r"11", torch=False, isolate=True),
    C("GPT.generate_negative_max_new_tokens", lambda L: gpt(L).generate(tokens(L, [1]), -1),
      ValueError, r"max_new_tokens", torch=False),
    C("GPT.generate_max_new_tokens_str", lambda L: gpt(L).generate(tokens(L, [1]), "3"),
      TypeError, r"max_new_tokens", torch=False),
    C("GPT.generate_max_new_tokens_float", lambda L: gpt(L).generate(tokens(L, [1]), 2.5),
      TypeError, r"max_new_tokens", torch=False),
    C("GPT.generate_temperature_zero", lambda L: gpt(L).generate(tokens(L, [1]), 2,
                                                                 temperature=0.0),
      ValueError, r"temperature", torch=False),
    C("GPT.generate_temperature_negative", lambda L: gpt(L).generate(tokens(L, [1]), 2,
                                                                     temperature=-1.0),
      ValueError, r"temperature", torch=False),
    C("GPT.generate_temperature_nan", lambda L: gpt(L).generate(tokens(L, [1]), 2,
                                                                temperature=math.nan),
      ValueError, r"temperature", torch=False),
    C("GPT.generate_temperature_str", lambda L: gpt(L).generate(tokens(L, [1]), 2,
                                                                temperature="hot"),
      TypeError, r"temperature", torch=False),
    C("GPT.generate_top_k_zero", lambda L: gpt(L).generate(tokens(L, [1]), 2, top_k=0),
      ValueError, r"top_k", torch=False),
    C("GPT.generate_top_k_negative", lambda L: gpt(L).generate(tokens(L, [1]), 2, top_k=-5),
      ValueError, r"top_k", torch=False),
    C("GPT.generate_top_k_str", lambda L: gpt(L).generate(tokens(L, [1]), 2, top_k="a"),
      TypeError, r"top_k", torch=False),
    C("GPT.generate_empty_prompt", lambda L: gpt(L).generate(L.zeros(1, 0, dtype=L.int64), 2),
      ValueError, r"prompt", torch=False),
    C("GPT.generate_prompt_too_long", lambda L: gpt(L).generate(
        L.zeros(1, 9, dtype=L.int64), 2), ValueError, r"block_size", torch=False),
    C("GPT.generate_idx_1d", lambda L: gpt(L).generate(L.zeros(3, dtype=L.int64), 2),
      ValueError, r"idx", torch=False),
    C("GPT.generate_idx_list", lambda L: gpt(L).generate([[1]], 2), TypeError, r"idx.*list",
      torch=False),
    C("GPT.generate_vocab_index_too_large", lambda L: gpt(L).generate(tokens(L, [40]), 1),
      IndexError, r"40", torch=False, isolate=True),
    C("GPT.configure_optimizers_negative_lr", lambda L: gpt(L).configure_optimizers(
        0.1, -1.0), ValueError, r"learning rate", torch=False),
    C("GPT.configure_optimizers_negative_decay", lambda L: gpt(L).configure_optimizers(
        -0.1, 1e-3), ValueError, r"weight_decay", torch=False),
    C("Seq2SeqConfig.not_divisible", lambda L: s2s_cfg(L, d_model=10, nhead=3), ValueError,
      r"d_model.*nhead", torch=False),
    C("Seq2SeqConfig.zero_vocab", lambda L: s2s_cfg(L, tgt_vocab_size=0), ValueError,
      r"tgt_vocab_size", torch=False),
    C("Seq2SeqConfig.max_len_zero", lambda L: s2s_cfg(L, max_len=0), ValueError, r"max_len",
      torch=False),
    C("Seq2SeqConfig.dropout_one", lambda L: s2s_cfg(L, dropout=1.0), ValueError, r"dropout",
      torch=False),
    C("Seq2SeqConfig.pad_outside_vocab", lambda L: s2s_cfg(L, pad_id=13), ValueError,
      r"pad_id", torch=False),
    C("Seq2SeqConfig.d_model_str", lambda L: s2s_cfg(L, d_model="8"), TypeError, r"d_model",
      torch=False),
    C("Seq2SeqConfig.layers_negative", lambda L: s2s_cfg(L, num_encoder_layers=-1), ValueError,
      r"num_encoder_layers", torch=False),
    C("Seq2SeqTransformer.bad_activation", lambda L: L.models.Seq2SeqTransformer(
        s2s_cfg(L, activation="swish")), RuntimeError, r"activation.*swish", torch=False),
    C("Seq2SeqTransformer.src_float", lambda L: s2s(L)(L.ones(1, 3), tokens(L, [1, 4])),
      ValueError, r"src.*float32", torch=False),
    C("Seq2SeqTransformer.src_too_long", lambda L: s2s(L)(L.ones(1, 9, dtype=L.int64),
                                                          tokens(L, [1, 4])),
      ValueError, r"src.*max_len", torch=False),
    C("Seq2SeqTransformer.tgt_too_long", lambda L: s2s(L)(tokens(L, [3, 4]),
                                                          L.ones(1, 9, dtype=L.int64)),
      ValueError, r"tgt_in.*max_len", torch=False),
    C("Seq2SeqTransformer.batch_mismatch", lambda L: s2s(L)(tokens(L, [3, 4], [3, 4]),
                                                            tokens(L, [1, 4])),
      ValueError, r"batch", torch=False),
    C("Seq2SeqTransformer.src_list", lambda L: s2s(L)([[3, 4]], tokens(L, [1, 4])),
      TypeError, r"src.*list", torch=False),
    C("Seq2SeqTransformer.src_token_out_of_range", lambda L: s2s(L)(
        tokens(L, [3, 99]), tokens(L, [1, 4])), IndexError, r"99", torch=False, isolate=True),
    C("Seq2SeqTransformer.greedy_max_len_zero", lambda L: s2s(L).greedy_decode(
        tokens(L, [3, 4]), max_len=0), ValueError, r"max_len", torch=False),
    C("Seq2SeqTransformer.greedy_max_len_too_long", lambda L: s2s(L).greedy_decode(
        tokens(L, [3, 4]), max_len=6), ValueError, r"max_len", torch=False),
    C("Seq2SeqTransformer.beam_size_zero", lambda L: s2s(L).beam_search(
        tokens(L, [3, 4]), beam_size=0), ValueError, r"beam_size", torch=False),
    C("Seq2SeqTransformer.greedy_src_list", lambda L: s2s(L).greedy_decode([[3, 4]]),
      TypeError, r"src.*list", torch=False),
    # -- tga.utils.data -----------------------------------------------------------------------
    C("DataLoader.batch_size_zero", lambda L: L.utils.data.DataLoader(tds(L), batch_size=0),
      ValueError, r"batch_size=0"),
    C("DataLoader.batch_size_negative", lambda L: L.utils.data.DataLoader(tds(L), batch_size=-2),
      ValueError, r"batch_size=-2"),
    C("DataLoader.batch_size_str", lambda L: L.utils.data.DataLoader(tds(L), batch_size="4"),
      ValueError, r"batch_size=4"),
    C("DataLoader.batch_size_float", lambda L: L.utils.data.DataLoader(tds(L), batch_size=2.5),
      ValueError, r"batch_size=2.5"),
    C("DataLoader.sampler_not_iterable", lambda L: list(L.utils.data.DataLoader(
        tds(L), sampler=5)), TypeError, r"int.*iterable|sampler"),
    C("DataLoader.sampler_and_shuffle", lambda L: L.utils.data.DataLoader(
        tds(L), shuffle=True, sampler=L.utils.data.SequentialSampler(tds(L))), ValueError,
      r"sampler.*shuffle"),
    C("DataLoader.batch_sampler_and_batch_size", lambda L: L.utils.data.DataLoader(
        tds(L), batch_size=2, batch_sampler=[[0, 1]]), ValueError, r"batch_sampler"),
    C("DataLoader.negative_workers", lambda L: L.utils.data.DataLoader(tds(L), num_workers=-1),
      ValueError, r"num_workers"),
    C("DataLoader.negative_timeout", lambda L: L.utils.data.DataLoader(tds(L), timeout=-1),
      ValueError, r"timeout"),
    C("DataLoader.no_batching_drop_last", lambda L: L.utils.data.DataLoader(
        tds(L), batch_size=None, drop_last=True), ValueError, r"drop_last"),
    C("DataLoader.drop_last_str", lambda L: L.utils.data.DataLoader(tds(L), drop_last="yes"),
      ValueError, r"drop_last"),
    C("DataLoader.prefetch_without_workers", lambda L: L.utils.data.DataLoader(
        tds(L), prefetch_factor=2), ValueError, r"prefetch_factor"),
    C("DataLoader.persistent_without_workers", lambda L: L.utils.data.DataLoader(
        tds(L), persistent_workers=True), ValueError, r"persistent_workers"),
    C("DataLoader.dataset_without_len", lambda L: list(L.utils.data.DataLoader(5)), TypeError,
      r"int.*len"),
    C("DataLoader.index_out_of_range_sampler", lambda L: list(L.utils.data.DataLoader(
        tds(L), sampler=[0, 9])), IndexError, r"9"),
    C("DataLoader.collate_mismatched_shapes", lambda L: list(L.utils.data.DataLoader(
        ragged(L), batch_size=2)), RuntimeError, r"size|shape"),
    C("DataLoader.collate_unsupported", lambda L: list(L.utils.data.DataLoader(
        [object(), object()], batch_size=2)), TypeError, r"default_collate.*object"),
    C("DataLoader.iterable_with_shuffle", lambda L: L.utils.data.DataLoader(
        stream(L), shuffle=True), ValueError, r"shuffle"),
    C("DataLoader.iterable_with_sampler", lambda L: L.utils.data.DataLoader(
        stream(L), sampler=[0]), ValueError, r"sampler"),
    C("DataLoader.len_of_stream_without_len", lambda L: len(L.utils.data.DataLoader(
        stream(L), batch_size=2)), TypeError, r"len"),
    # torch: RuntimeError from randint(0, 0); ours a ValueError naming the empty source
    C("RandomSampler.replacement_from_empty", lambda L: list(L.utils.data.RandomSampler(
        [], replacement=True, num_samples=2)), ValueError, r"empty", torch=False),
    C("BatchSampler.sampler_not_iterable", lambda L: list(L.utils.data.BatchSampler(5, 2, False)),
      TypeError, r"int.*iterable"),
    C("StepLR.load_state_dict_none", lambda L: sched(L, "StepLR", 2).load_state_dict(None),
      TypeError, r"NoneType"),
    C("Dataset.getitem_not_implemented", lambda L: L.utils.data.Dataset()[0],
      NotImplementedError, r"__getitem__"),
    C("TensorDataset.not_tensor", lambda L: L.utils.data.TensorDataset([1, 2]), TypeError,
      r"list|Tensor", torch=False),
    C("TensorDataset.size_mismatch", lambda L: L.utils.data.TensorDataset(
        L.ones(3), L.ones(4)), AssertionError, r"Size mismatch"),
    C("TensorDataset.index_out_of_range", lambda L: tds(L)[4], IndexError, r"4"),
    C("TensorDataset.index_negative_out_of_range", lambda L: tds(L)[-5], IndexError, r"-5"),
    C("Subset.index_out_of_range", lambda L: L.utils.data.Subset(tds(L), [0, 1])[2],
      IndexError, r"range"),
    C("Subset.inner_index_out_of_range", lambda L: L.utils.data.Subset(tds(L), [0, 9])[1],
      IndexError, r"9"),
    C("ConcatDataset.empty", lambda L: L.utils.data.ConcatDataset([]), AssertionError,
      r"empty"),
    C("ConcatDataset.index_out_of_range", lambda L: L.utils.data.ConcatDataset([tds(L)])[4],
      IndexError, r"4"),
    C("ConcatDataset.negative_index", lambda L: L.utils.data.ConcatDataset([tds(L)])[-9],
      ValueError, r"index"),
    C("ConcatDataset.iterable_dataset", lambda L: L.utils.data.ConcatDataset([stream(L)]),
      AssertionError, r"IterableDataset"),
    C("random_split.wrong_sum", lambda L: L.utils.data.random_split(tds(L), [1, 1]),
      ValueError, r"[Ss]um of input lengths"),
    C("random_split.fractions_over_one", lambda L: L.utils.data.random_split(tds(L), [0.5, 0.6]),
      ValueError, r"[Ss]um of input lengths"),
    # torch accepts [-1, 5] (the sum matches) and returns overlapping subsets: ours refuses
    C("random_split.negative_length", lambda L: L.utils.data.random_split(tds(L), [-1, 5]),
      ValueError, r"-1", torch=False),
    C("RandomSampler.replacement_str", lambda L: L.utils.data.RandomSampler(
        tds(L), replacement="yes"), TypeError, r"replacement"),
    C("RandomSampler.num_samples_zero", lambda L: L.utils.data.RandomSampler(
        tds(L), num_samples=0), ValueError, r"num_samples"),
    C("RandomSampler.num_samples_negative", lambda L: L.utils.data.RandomSampler(
        tds(L), num_samples=-3), ValueError, r"num_samples"),
    C("SequentialSampler.no_len", lambda L: list(L.utils.data.SequentialSampler(5)),
      TypeError, r"len"),
    C("SubsetRandomSampler.no_len", lambda L: list(L.utils.data.SubsetRandomSampler(5)),
      TypeError, r"len"),
    C("WeightedRandomSampler.num_samples_zero", lambda L: L.utils.data.WeightedRandomSampler(
        [0.5, 0.5], 0), ValueError, r"num_samples"),
    C("WeightedRandomSampler.weights_2d", lambda L: L.utils.data.WeightedRandomSampler(
        [[0.5, 0.5]], 2), ValueError, r"weights"),
    C("WeightedRandomSampler.replacement_int", lambda L: L.utils.data.WeightedRandomSampler(
        [0.5, 0.5], 2, replacement=1), ValueError, r"replacement"),
    C("WeightedRandomSampler.negative_weight", lambda L: list(
        L.utils.data.WeightedRandomSampler([-1.0, 1.0], 2)), RuntimeError,
      r"probability|multinomial"),
    C("WeightedRandomSampler.nan_weight", lambda L: list(
        L.utils.data.WeightedRandomSampler([math.nan, 1.0], 2)), RuntimeError,
      r"probability|multinomial"),
    C("WeightedRandomSampler.all_zero", lambda L: list(
        L.utils.data.WeightedRandomSampler([0.0, 0.0], 2)), RuntimeError,
      r"probability|multinomial|sum"),
    C("WeightedRandomSampler.too_many_without_replacement", lambda L: list(
        L.utils.data.WeightedRandomSampler([1.0, 1.0], 5, replacement=False)), RuntimeError,
      r"sample|categories|5"),
    C("BatchSampler.batch_size_zero", lambda L: L.utils.data.BatchSampler([0, 1], 0, False),
      ValueError, r"batch_size=0"),
    C("BatchSampler.batch_size_bool", lambda L: L.utils.data.BatchSampler([0, 1], True, False),
      ValueError, r"batch_size=True"),
    C("BatchSampler.drop_last_none", lambda L: L.utils.data.BatchSampler([0, 1], 2, None),
      ValueError, r"drop_last"),
    C("DistributedSampler.bad_rank", lambda L: L.utils.data.distributed.DistributedSampler(
        tds(L), num_replicas=2, rank=2), ValueError, r"rank"),
    C("DistributedSampler.negative_rank", lambda L: L.utils.data.distributed.DistributedSampler(
        tds(L), num_replicas=2, rank=-1), ValueError, r"rank"),
    C("default_collate.unsupported", lambda L: L.utils.data.default_collate([object()]),
      TypeError, r"default_collate.*object"),
    # -- serialization (bad objects and paths; damaged files: tests/train/test_serialization) ---
    C("save.unsupported_object", lambda L: L.save(object(), tmp_path_for("obj")), TypeError,
      r"object", torch=False),
    C("save.unsupported_nested", lambda L: L.save({"a": [1, {2, 3}]}, tmp_path_for("set")),
      TypeError, r"set", torch=False),
    C("save.function", lambda L: L.save({"f": lambda: 0}, tmp_path_for("fn")), TypeError,
      r"function", torch=False),
    C("save.dict_key_object", lambda L: L.save({object(): L.ones(1)}, tmp_path_for("key")),
      TypeError, r"key.*object", torch=False),
    C("save.dict_key_frozenset", lambda L: L.save({"a": {frozenset(): 1}}, tmp_path_for("fz")),
      TypeError, r"key.*frozenset", torch=False),
    C("save.path_int", lambda L: L.save({"a": L.ones(1)}, 5), TypeError, r"path.*int",
      torch=False),
    C("save.path_none", lambda L: L.save({"a": L.ones(1)}, None), TypeError, r"path.*NoneType",
      torch=False),
    C("save.missing_directory", lambda L: L.save({"a": L.ones(1)}, "/nonexistent_badnn/x.st"),
      (RuntimeError, FileNotFoundError), r"nonexistent_badnn"),
    C("load.missing_file", lambda L: L.load("/nonexistent_badnn.safetensors"),
      FileNotFoundError, r"nonexistent_badnn"),
    C("load.directory", lambda L: L.load(os.path.dirname(__file__)), IsADirectoryError,
      r"directory|nn"),
    C("load.path_int", lambda L: L.load(5), TypeError, r"path.*int", torch=False),
    C("load.path_none", lambda L: L.load(None), TypeError, r"path.*NoneType", torch=False),
    C("load.bad_map_location", lambda L: L.load(saved_file(L), map_location=5), TypeError,
      r"map_location", torch=False),
    # -- tga.train --------------------------------------------------------------------------------
    *[C(f"TrainConfig.{field}_{tag}", lambda L, f=field, v=value: L.train.TrainConfig(**{f: v}),
        exc, field, torch=False)
      for field, tag, value, exc in (
          ("steps", "negative", -1, ValueError), ("steps", "float", 2.5, TypeError),
          ("log_interval", "zero", 0, ValueError), ("eval_interval", "negative", -5, ValueError),
          ("ckpt_interval", "zero", 0, ValueError), ("ckpt_interval", "str", "9", TypeError),
          ("keep_last", "zero", 0, ValueError), ("grad_clip", "negative", -1.0, ValueError),
          ("grad_clip", "nan", math.nan, ValueError), ("grad_clip", "str", "1", TypeError))],
    C("Trainer.config_dict", lambda L: L.train.Trainer(None, None, None, None, {"steps": 3},
                                                       tmp_path_for("run")), TypeError,
      r"config.*dict", torch=False),
    C("Trainer.out_dir_none", lambda L: L.train.Trainer(None, None, None, None,
                                                        L.train.TrainConfig(), None),
      TypeError, r"out_dir.*NoneType", torch=False),
    # -- seeds -----------------------------------------------------------------------------------
    C("manual_seed.str", lambda L: L.manual_seed("abc"), ValueError, r"abc"),
    C("manual_seed.none", lambda L: L.manual_seed(None), TypeError, r"NoneType"),
    C("manual_seed.too_large", lambda L: L.manual_seed(2 ** 64), ValueError, r"[Oo]verflow|seed"),
    C("manual_seed.too_negative", lambda L: L.manual_seed(-2 ** 63 - 1), ValueError,
      r"[Oo]verflow|seed"),
    # torch: RuntimeError "manual_seed expected a long"; ours a TypeError naming the type
    C("Generator.seed_str", lambda L: L.Generator().manual_seed("a"), TypeError, r"str",
      torch=False),
    C("Generator.seed_none", lambda L: L.Generator().manual_seed(None), TypeError, r"NoneType",
      torch=False),
    C("Generator.seed_too_large", lambda L: L.Generator().manual_seed(2 ** 70), ValueError,
      r"[Oo]verflow|seed"),
    C("Generator.bad_device", lambda L: L.Generator(device="tpu"), RuntimeError, r"tpu"),
    C("Generator.set_state_junk", lambda L: L.Generator().set_state("junk"), TypeError,
      r"state|str"),
    C("Generator.wrong_device_for_draw", lambda L: L.rand(2, generator=5), TypeError,
      r"generator"),
]


# ---- more builders used by the table --------------------------------------------------------
def nan_grad(L, value=math.nan):
    p = param(L, 3)
    p.grad = L.tensor([1.0, value, 1.0])
    return p


def dup_params(L, opt):
    p = param(L, 3)
    return getattr(L.optim, opt)([p, p])


def two_groups(L, opt):
    p = param(L, 3)
    return getattr(L.optim, opt)([{"params": [p]}, {"params": [p]}])


def step_bad_grad(L):
    """A wrong-shaped gradient (our .grad setter takes it; torch's refuses it): the step
    refuses it before changing any state."""
    p = param(L, 3)
    opt = L.optim.SGD([p], lr=0.1)
    p.grad = L.ones(4)
    return opt.step()


def kv_twice(L, s1, s2):
    c = L.nn.KVCache()
    c.update(L.zeros(*s1), L.zeros(*s1))
    return c.update(L.zeros(*s2), L.zeros(*s2))


def kv_reorder(L, index):
    c = L.nn.KVCache()
    c.update(L.zeros(2, 1, 3, 4), L.zeros(2, 1, 3, 4))
    c.reorder(L.tensor(index))
    return c.k


def ragged(L):
    return [L.ones(2), L.ones(3)]


def stream(L):
    class Stream(L.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(3))
    return Stream()


_TMP = {}


def tmp_path_for(tag):
    import tempfile
    d = _TMP.setdefault("dir", tempfile.mkdtemp(prefix="badnn_"))
    return os.path.join(d, f"{tag}.safetensors")


def saved_file(L):
    path = tmp_path_for("ok")
    L.save({"a": L.ones(1)}, path)
    return path


# ---- running a case --------------------------------------------------------------------------
def run_case(case, L=tga):
    """(exception type name, message) our call raised, or (None, repr of what it returned)."""
    try:
        out = case.call(L)
    except Exception as e:          # noqa: BLE001 - the class is what the test checks
        return type(e), str(e)
    return None, repr(out)[:200]


def check_outcome(case, exc_type, message):
    expected = case.expected if isinstance(case.expected, tuple) else (case.expected,)
    names = "/".join(e.__name__ for e in expected)
    assert exc_type is not None, f"{case.name}: accepted the bad input (returned {message})"
    assert issubclass(exc_type, expected), (
        f"{case.name}: raised {exc_type.__name__} ({message!r}), expected {names}")
    assert re.search(case.match, message), (
        f"{case.name}: message {message!r} does not match {case.match!r}")


IN_PROCESS = [c for c in CASES if not c.isolate]
ISOLATED = [c for c in CASES if c.isolate]


def test_table_is_well_formed():
    names = [c.name for c in CASES]
    dup = sorted({n for n in names if names.count(n) > 1})
    assert not dup, f"duplicate case names: {dup}"
    assert len(CASES) >= 200, len(CASES)
    for c in CASES:
        re.compile(c.match)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", IN_PROCESS, ids=[c.name for c in IN_PROCESS])
def test_bad_input(case):
    check_outcome(case, *run_case(case))


# -- the isolated batch: one subprocess runs every case that reaches a kernel ------------------
def _crash(L):
    os._exit(134)                   # as a kernel's abort would end it (no core file left)


SELFTEST_ENV = "TGA_BAD_INPUT_SELFTEST"      # child runs one crashing case instead


def _isolated_main():
    """Child: run ISOLATED in order, one JSON line before and after each (flushed), so the
    parent knows which case was running if the process dies."""
    import warnings
    warnings.simplefilter("ignore")
    cases = ISOLATED
    if os.environ.get(SELFTEST_ENV) == "1":
        cases = [ISOLATED[0], C("selftest.crash", _crash, RuntimeError, "")]
    for case in cases:
        print(json.dumps({"start": case.name}), flush=True)
        exc_type, message = run_case(case)
        print(json.dumps({"name": case.name, "exc": exc_type and exc_type.__name__,
                          "module": exc_type and exc_type.__module__, "message": message}),
              flush=True)


def _run_isolated_batch(selftest=False):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(pathlib.Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]))
    env[SELFTEST_ENV] = "1" if selftest else "0"
    try:
        proc = subprocess.run([sys.executable, __file__, "--isolated"], capture_output=True,
                              text=True, timeout=ISOLATED_TIMEOUT_S, env=env)
        out, died = proc.stdout, (proc.returncode != 0 and
                                  f"exit code {proc.returncode}: {proc.stderr[-800:]}")
    except subprocess.TimeoutExpired as e:
        out, died = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (
            e.stdout or ""), f"hung for more than {ISOLATED_TIMEOUT_S} s"
    results, running = {}, None
    for line in out.splitlines():
        rec = json.loads(line)
        if "start" in rec:
            running = rec["start"]
        else:
            results[rec["name"]] = rec
            running = None
    return results, running, died


@pytest.fixture(scope="module")
def isolated_results():
    return _run_isolated_batch()


def _exception_class(rec):
    import builtins
    if rec["exc"] is None:
        return None
    cls = getattr(builtins, rec["exc"], None)
    if cls is None:                  # a library exception class (e.g. CheckpointError)
        import importlib
        cls = getattr(importlib.import_module(rec["module"]), rec["exc"])
    return cls


@pytest.mark.parametrize("case", ISOLATED, ids=[c.name for c in ISOLATED])
def test_bad_input_isolated(case, isolated_results):
    results, running, died = isolated_results
    if case.name not in results:
        where = "while running it" if running == case.name else "before reaching it"
        pytest.fail(f"{case.name}: the subprocess died {where} ({died})")
    rec = results[case.name]
    check_outcome(case, _exception_class(rec), rec["message"])


def test_isolated_batch_reports_a_crash_under_its_case():
    """The harness itself: a case that aborts the child is named as the one running, and the
    cases before it keep their results."""
    results, running, died = _run_isolated_batch(selftest=True)
    assert ISOLATED[0].name in results
    assert running == "selftest.crash" and died and "exit code" in died


# -- torch raises the same class -------------------------------------------------------------
TORCH_CASES = [c for c in CASES if c.torch]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("case", TORCH_CASES, ids=[c.name for c in TORCH_CASES])
def test_torch_raises_the_same_class(case):
    torch = pytest.importorskip("torch")
    exc_type, message = run_case(case, torch)
    expected = case.expected if isinstance(case.expected, tuple) else (case.expected,)
    assert exc_type is not None, f"{case.name}: torch accepts it (mark the case torch=False)"
    assert any(issubclass(exc_type, e) or issubclass(e, exc_type) for e in expected), (
        f"{case.name}: torch raises {exc_type.__name__} ({message!r}), the table says "
        f"{'/'.join(e.__name__ for e in expected)}")


# ---- coverage: every public class (and a few functions) is named by some case ------------------
# Each entry says why the class gets no bad-input case.
EXEMPT = {
    "Identity": "accepts and ignores any argument, returns its input (torch's)",
    "DecoderLayerCache": "no arguments; its KVCaches are covered as KVCache",
    "Sampler": "abstract base: __init__ ignores its argument, __iter__ is NotImplementedError",
    "IterableDataset": "abstract base: covered through DataLoader.iterable_* and ConcatDataset",
    "TrainingDiverged": "an exception class (raised by Trainer, not built by users)",
}


def public_classes():
    """Names of the public classes of tga.nn, tga.optim (+ lr_scheduler), tga.models and
    tga.utils.data (+ .distributed), found by walking their __all__ / namespaces."""
    import inspect
    import tinygradattn.nn.parallel as par
    import tinygradattn.train as train
    from tinygradattn.optim import lr_scheduler
    spaces = [tga.nn, tga.optim, lr_scheduler, tga.models, tga.utils.data,
              tga.utils.data.distributed, par, train]
    names = set()
    for space in spaces:
        for name in getattr(space, "__all__", None) or dir(space):
            obj = getattr(space, name, None)
            if inspect.isclass(obj) and not name.startswith("_"):
                names.add(name)
    # the public functions of the area, too
    names |= {"clip_grad_norm_", "warmup_cosine", "random_split", "default_collate",
              "generate_square_subsequent_mask", "save", "load", "manual_seed", "init"}
    return names


def test_every_public_class_has_a_case():
    covered = {c.covers for c in CASES}
    missing = sorted(n for n in public_classes() if n not in covered and n not in EXEMPT)
    assert not missing, f"public classes with no bad-input case (add one, or to EXEMPT): {missing}"


def test_coverage_check_sees_the_classes():
    """The enumeration is not empty or blind: it finds a class of each namespace, and a table
    without the Linear cases would be reported."""
    names = public_classes()
    for name in ("Linear", "MultiheadAttention", "AdamW", "StepLR", "GPT", "DataLoader",
                 "DistributedSampler", "DataParallel", "TrainConfig"):
        assert name in names, name
    covered = {c.covers for c in CASES if c.covers != "Linear"}
    assert "Linear" not in covered and "Linear" not in EXEMPT


# ---- what the fixes made work (torch accepts these too) ----------------------------------------
def test_xavier_of_a_zero_element_tensor_is_a_no_op():
    """torch divides by zero (fan_in + fan_out = 0); there is nothing to initialise."""
    w = tga.empty(0, 0)
    assert tga.nn.init.xavier_uniform_(w) is w and tga.nn.init.xavier_normal_(w) is w


def test_negative_seed_wraps_as_in_torch():
    tga.manual_seed(-1)
    a = tga.rand(3).tolist()
    tga.manual_seed(2 ** 64 - 1)
    assert tga.rand(3).tolist() == a


def test_module_dict_from_pairs():
    d = tga.nn.ModuleDict([("a", tga.nn.ReLU()), ("b", tga.nn.Tanh())])
    assert list(d.keys()) == ["a", "b"]


def test_load_state_dict_casts_other_dtypes_as_torch():
    """A float64 or int64 value is cast to the parameter's dtype (torch's copy_), not refused."""
    m = tga.nn.Linear(2, 2)
    m.load_state_dict({"weight": tga.ones(2, 2, dtype=tga.float64),
                       "bias": tga.tensor([1, 2])})
    assert m.weight.dtype == tga.float32 and m.bias.tolist() == [1.0, 2.0]


def test_module_to_a_dtype_name_and_device_still_work():
    m = tga.nn.Linear(2, 2).to("float64")
    assert m.weight.dtype == tga.float64
    assert tga.nn.Linear(2, 2).to("cpu").weight.device == "cpu"


def test_counts_reported():
    """Not a check: prints the table's size per area (quoted in the report)."""
    by_area = {}
    for c in CASES:
        by_area[c.covers] = by_area.get(c.covers, 0) + 1
    print(f"\n{len(CASES)} cases ({len(ISOLATED)} isolated, {len(TORCH_CASES)} checked against "
          f"torch) over {len(by_area)} classes/functions")


if __name__ == "__main__" and "--isolated" in sys.argv:
    _isolated_main()


def test_the_checks_keep_what_torch_accepts():
    """Arguments torch takes stay taken: a float StepLR step_size (epochs / 3), and
    ModuleList(None) (torch's default argument)."""
    opt = tga.optim.SGD([tga.nn.Parameter(tga.ones(1))], lr=1.0)
    sched = tga.optim.lr_scheduler.StepLR(opt, step_size=2.0, gamma=0.5)
    lrs = []
    for _ in range(4):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 0.5, 0.5, 0.25]
    assert len(tga.nn.ModuleList(None)) == 0
    layer = tga.nn.TransformerEncoderLayer(4, 2, batch_first=True)
    assert len(tga.nn.TransformerEncoder(layer, np.int64(2)).layers) == 2
    assert tga.nn.RNN(3, 4, num_layers=2, dropout=np.float32(0.5)).dropout == 0.5
