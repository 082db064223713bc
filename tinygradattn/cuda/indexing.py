"""Indexing (being written)."""


def getitem(*args, **kwargs):
    raise NotImplementedError("cuda getitem: not written yet")


def setitem(*args, **kwargs):
    raise NotImplementedError("cuda setitem: not written yet")


def index_add(*args, **kwargs):
    raise NotImplementedError("cuda index_add: not written yet")


def concatenate(*args, **kwargs):
    raise NotImplementedError("cuda concatenate: not written yet")

