"""Fused attention (being written)."""


def sdpa_fwd(*args, **kwargs):
    raise NotImplementedError("cuda sdpa_fwd: not written yet")


def sdpa_bwd(*args, **kwargs):
    raise NotImplementedError("cuda sdpa_bwd: not written yet")


def qkv_attention_fwd(*args, **kwargs):
    raise NotImplementedError("cuda qkv_attention_fwd: not written yet")


def qkv_attention_bwd(*args, **kwargs):
    raise NotImplementedError("cuda qkv_attention_bwd: not written yet")

