"""Which instruction set each CPU kernel family runs: list, query, force.

Every family compiles its loops for AVX-512, AVX2+FMA and the baseline ISA ("generic") and
runs the fastest this CPU supports, unless forced here or by the environment at import:

    TGA_ISA_<FAMILY>=<name>   one family, e.g. TGA_ISA_GEMM=avx2
    TGA_ISA=<name>            every family without its own variable

Families (FAMILIES):
    gemm        matmul, linear (_core: the micro-kernels and their packing)
    rows        softmax / log-softmax (_core), layer norm, cross-entropy, GELU and erf vector
                math, and GEMM's GELU epilogue: one set of float32 row primitives, one switch
    attention   scaled-dot-product attention forward and backward (_attention)
    optim       SGD and Adam / AdamW steps (_optim)

All ISAs of a family give results within the tolerances the tests pin (the optimizer loops:
the same bits); only the speed differs. The state lives in the kernels' support module
(tinygradattn._support), loaded on the first call here.

    >>> from tinygradattn.backend import isa
    >>> isa.isas("gemm")[-1]
    'generic'
    >>> isa.set_isa("rows", "generic")
    'generic'
    >>> isa.set_isa("rows", "auto") == isa.isas("rows")[0]
    True
"""

FAMILIES = ("gemm", "rows", "attention", "optim")


def _support():
    from .. import _support
    return _support


def isas(family):
    """The ISAs this CPU runs for `family`, fastest first ("avx512", "avx2", "generic")."""
    return _support().isas(family)


def isa(family):
    """The ISA `family` runs now."""
    return _support().isa(family)


def set_isa(family, name="auto"):
    """Run `family` with ISA `name`, or the fastest this CPU runs ("auto"); returns the ISA.

    Raises ValueError for an unknown family or an ISA this CPU cannot run.
    """
    return _support().set_isa(family, name)
