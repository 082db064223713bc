# cython: language_level=3
"""Declarations of _rows_kernel.h (float32 row primitives) and _elementwise_kernel.h (GELU
vector math), one set per ISA, cimported by every module that runs them (_core's softmax
family and GEMM's GELU epilogue, _rows' layer norm and cross-entropy, _elementwise's GELU).

Each module compiles its own copy of the C functions; the ISA they run is the "rows" family's
level in _support (one state): rows_isa_sync() at a kernel's entry re-points this module's
tga_rm table when that level changed (one compare otherwise).
"""
from ._support cimport FAMILY_ROWS, isa_level

cdef extern from "_rows_kernel.h" nogil:
    ctypedef struct tga_rowmath_t:
        const char *isa
        float (*max)(const float *x, Py_ssize_t n) noexcept nogil
        double (*exp_sum)(float *y, const float *x, float shift, Py_ssize_t n) noexcept nogil
        double (*sum)(const float *x, float shift, Py_ssize_t n) noexcept nogil
        double (*dot)(const float *a, const float *b, Py_ssize_t n) noexcept nogil
        double (*sqdev)(const float *x, double mean, Py_ssize_t n) noexcept nogil
        void (*axpb)(float *y, float scale, float offset, Py_ssize_t n) noexcept nogil
        void (*shift)(float *y, const float *x, float a, float b, Py_ssize_t n) noexcept nogil
        void (*softmax_bwd)(float *dx, const float *y, const float *dout, float dot,
                            Py_ssize_t n) noexcept nogil
        void (*log_softmax_bwd)(float *dx, const float *y, const float *dout, float total,
                                Py_ssize_t n) noexcept nogil
        void (*softmax_rows)(float *y, const float *x, Py_ssize_t n_rows,
                             Py_ssize_t n) noexcept nogil
        void (*softmax_bwd_rows)(float *dx, const float *y, const float *dout,
                                 Py_ssize_t n_rows, Py_ssize_t n) noexcept nogil
        void (*exp_rows)(float *y, float *row_max, double *row_sum, const float *x,
                         Py_ssize_t n_rows, Py_ssize_t n) noexcept nogil
        void (*ln_fwd_rows)(float *y, float *mean, float *rstd, const float *x, const float *w,
                            const float *b, double eps, Py_ssize_t n_rows,
                            Py_ssize_t n) noexcept nogil
        void (*ln_fwd)(float *y, const float *x, const float *w, const float *b, float mean,
                       float rstd, Py_ssize_t n) noexcept nogil
        void (*ln_bwd)(float *dx, float *dw_acc, float *db_acc, const float *dout,
                       const float *x, const float *w, float mean, float rstd,
                       Py_ssize_t n) noexcept nogil
    tga_rowmath_t tga_rm
    void tga_rowmath_sync(int level) noexcept

cdef extern from "_elementwise_kernel.h" nogil:
    ctypedef struct tga_rm_gelu_t:
        void (*gelu_fwd)(float *y, float *grad, const float *x, int tanh_form,
                         Py_ssize_t n) noexcept nogil
        void (*gelu_bwd)(float *dx, const float *dout, const float *x, int tanh_form,
                         Py_ssize_t n) noexcept nogil
        void (*erf)(float *y, const float *x, Py_ssize_t n) noexcept nogil
        void (*tanh)(float *y, const float *x, Py_ssize_t n) noexcept nogil
    const tga_rm_gelu_t *tga_rm_gelu_for(const char *isa) noexcept


cdef inline void rows_isa_sync() noexcept nogil:
    """Point tga_rm at the "rows" level _support holds (call at each kernel entry)."""
    tga_rowmath_sync(isa_level(FAMILY_ROWS))
