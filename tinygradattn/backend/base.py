"""The primitive set every device implements: what the autograd layer may ask of a backend.

Arrays here are the backend's own (numpy arrays on the CPU). Shapes follow numpy's
broadcasting for elementwise primitives; a primitive allocates and returns its result unless
it says it works in place. `dtype` arguments are numpy dtypes. Nothing here knows about
Tensors or gradients: `ops/` composes these into Functions.
"""

PRIMITIVES = {
    # creation and conversion
    "asarray": "(data, dtype) -> array; a copy of nested lists / scalars / host arrays",
    "from_host": "(array) -> array; shares memory where the device allows it",
    "to_host": "(x) -> numpy array (a view on the CPU)",
    "empty": "(shape, dtype) -> uninitialised array",
    "zeros": "(shape, dtype) -> array of 0",
    "full": "(shape, value, dtype) -> array filled with value",
    "arange": "(start, end, step, dtype) -> 1-D array",
    "astype": "(x, dtype) -> x converted (a copy only when the dtype changes)",
    "copy": "(x) -> a new contiguous array equal to x",
    "take_or_copy": "(box) -> box.pop() itself when the caller held the only reference to it "
                    "(in the one-element list box) and no other array shares its memory, "
                    "else a new contiguous copy; the result is the caller's to modify",
    "assign": "(dst, src) -> None; dst[...] = src in place, cast to dst's dtype",
    "accumulate": "(box, b) -> box.pop() + b, written into box.pop()'s own memory when the "
                  "caller held the only reference to it (as take_or_copy decides), else new",
    "from_dlpack": "(obj) -> array on obj's memory, no copy (obj: an object with __dlpack__ "
                   "or a DLPack capsule, on this device); TypeError naming a dtype other than "
                   "float32 / float64 / int64 / bool; BufferError where the device cannot",
    "to_dlpack": "(x, stream, max_version, dl_device, copy) -> DLPack capsule sharing x's "
                 "memory (a copy only if copy=True); BufferError where it cannot be exported",
    "dlpack_device": "(x) -> (DLPack device type, device index): (1, 0) cpu, (2, i) cuda",
    # random (one global generator per backend, seeded by manual_seed; the draws below take
    # generator=None, or a generator of new_generator's, to draw from that one instead)
    "manual_seed": "(seed) -> None",
    "rand": "(shape, dtype, generator=None) -> uniform [0, 1)",
    "randn": "(shape, dtype, generator=None) -> standard normal",
    "randint": "(low, high, shape, generator=None) -> int64 uniform in [low, high)",
    "get_rng_state": "() -> JSON-able state of the generator",
    "set_rng_state": "(state) -> None",
    "new_generator": "(seed) -> a generator of this device's kind, apart from the global one, "
                     "with manual_seed(seed), get_state() (JSON-able) and set_state(state)",
    "multinomial": "(probs (N, C) float, num_samples, replacement, generator=None) -> (N, "
                   "num_samples) int64 columns drawn with probability proportional to each "
                   "row's weights (without replacement: distinct columns, zero weights after "
                   "every positive one); RuntimeError for a negative, inf or NaN weight or a "
                   "row summing to 0 (on a GPU: at the next host read)",
    # elementwise, numpy broadcasting; both operands already share one dtype
    "add": "(a, b)", "sub": "(a, b)", "mul": "(a, b)", "div": "(a, b)", "pow": "(a, b)",
    "maximum": "(a, b)", "minimum": "(a, b)",
    "eq": "(a, b) -> bool", "ne": "(a, b) -> bool", "lt": "(a, b) -> bool",
    "le": "(a, b) -> bool", "gt": "(a, b) -> bool", "ge": "(a, b) -> bool",
    "logical_not": "(x) -> bool", "logical_and": "(a, b) -> bool", "logical_or": "(a, b) -> bool",
    "neg": "(x)", "exp": "(x)", "log": "(x)", "sqrt": "(x)", "tanh": "(x)", "sigmoid": "(x)",
    "relu": "(x)", "abs": "(x)", "sign": "(x)", "erf": "(x)",
    "sin": "(x)", "cos": "(x)",
    "floor": "(x) -> float x rounded down", "ceil": "(x) -> float x rounded up",
    "round": "(x) -> float x rounded to the nearest integer, halves to even (torch.round)",
    "clip": "(x, lo, hi); lo or hi may be None",
    "where": "(cond, a, b)",
    # reductions; axis is None or a tuple of non-negative ints
    "sum": "(x, axis, keepdims)", "max": "(x, axis, keepdims)", "min": "(x, axis, keepdims)",
    "prod": "(x, axis, keepdims); bool -> int64 (as sum)",
    "cumsum": "(x, axis, reverse) -> running sums along one int axis, x's shape and dtype "
              "(bool -> int64); from the last element back to the first when reverse",
    "argmax": "(x, axis, keepdims) -> int64; axis an int or None (flattened)",
    "argmin": "(x, axis, keepdims) -> int64",
    "sort": "(x (N, C), descending) -> values (N, C), indices (N, C) int64: each row sorted, "
            "stable (equal values keep their order), NaN above every number (torch's order); "
            "float32, float64, int64",
    "sum_to_shape": "(x, shape) -> x summed over the axes that broadcasting added to shape",
    # movement (views where the device allows)
    "reshape": "(x, shape)", "permute": "(x, axes)", "broadcast_to": "(x, shape)",
    "getitem": "(x, index) -> x[index]; index holds ints, slices, None, Ellipsis, int arrays",
    "index_add": "(dst, index, src) -> None; dst[index] += src in place, repeats accumulate",
    "copy_index": "(index) -> the index tuple with every array in it copied where it lives "
                  "(host arrays on the host, device arrays on the device)",
    "setitem": "(dst, index, value) -> None; dst[index] = value in place (value an array or a "
               "number, broadcast and cast to dst's dtype; the last of repeated indices wins)",
    "gather": "(x, dim, index) -> out shaped like index (int64, x's rank, any strides): out[i] = "
              "x[i with its dim-th coordinate replaced by index[i]]; index no larger than x "
              "apart from dim; RuntimeError for an index outside [0, x.shape[dim]) (on a GPU: "
              "raised at the next host read)",
    "scatter": "(dst, dim, index, src, reduce) -> None; IN PLACE dst[i with its dim-th "
               "coordinate replaced by index[i]] = src[i] (reduce None: of repeated targets "
               "any one wins, as torch) or += src[i] (reduce 'add': repeats accumulate); src "
               "an array of index's rank at least its shape (read at index's coordinates, cast "
               "to dst's dtype) or a number; index and errors as gather",
    "nonzero": "(x) -> (x.ndim, count) int64: the coordinates of x's nonzero elements in C "
               "order (x.ndim >= 1; on a GPU the count is read back)",
    "concatenate": "(xs, axis)",
    "contiguous": "(x) -> x if C-contiguous else a contiguous copy",
    "same_storage": "(a, b) -> True when a and b may share memory (a view of the other, or "
                    "both of one storage): the version counter follows views by it",
    "view_layout": "(view, base) -> (offset, strides), both in elements, of view inside the "
                   "C-contiguous array base's memory; None when view is not inside it (or the "
                   "device cannot tell): how ops/patterns.py checks that q, k, v are the "
                   "thirds of one packed projection",
    "storage": "(a) -> (key, n_bytes): the allocation a's memory lies in (a hashable id, its "
               "size in bytes); views of one buffer give one key, so memory counts it once",
    # fused kernels
    "matmul": "(a (*Ba, M, K), b (*Bb, K, N)) -> (*broadcast(Ba, Bb), M, N); one dtype",
    "linear_fwd": "(x (N, C_in) any strides, weight (C_out, C_in), bias (C_out,) | None, "
                  "residual=None (N, C_out)) -> y (N, C_out) = x @ weight.T + bias (+ residual; "
                  "both added inside the product); one dtype",
    "linear_bwd": "(dout (N, C_out), x (N, C_in), weight (C_out, C_in), needs_dx, needs_dweight, "
                  "needs_dbias, dx_mul=None (N, C_in)) -> dx (N, C_in) = dout @ weight (times "
                  "dx_mul, elementwise, when given), dweight (C_out, C_in) = dout.T @ x, dbias "
                  "(C_out,) = dout summed over rows; None where not needed",
    "linear_gelu_fwd": "(x (N, C_in), weight (C_out, C_in), bias (C_out,) | None, approximate) "
                       "-> gelu(h), gelu'(h) (N, C_out), h = x @ weight.T + bias",
    "softmax_fwd": "(x (..., C)) -> y, softmax over the last axis",
    "softmax_bwd": "(y, dout) -> dx = y * (dout - sum(dout * y, -1))",
    "log_softmax_fwd": "(x (..., C)) -> y = x - logsumexp(x, -1)",
    "log_softmax_bwd": "(y, dout) -> dx = dout - exp(y) * sum(dout, -1)",
    "layer_norm_fwd": "(x (N, C), weight (C,) | None, bias (C,) | None, eps) -> y (N, C), "
                      "mean (N,), rstd (N,) = 1 / sqrt(population var + eps); x's dtype",
    "layer_norm_bwd": "(dout (N, C), x, weight | None, mean, rstd) -> dx (N, C), dweight (C,), "
                      "dbias (C,); dweight is None when weight is None",
    "cross_entropy_fwd": "(logits (N, C), target (N,) int64, ignore_index, label_smoothing, "
                         "with_probs=False) -> loss (N,) (0 where ignored), lse (N,) = "
                         "logsumexp(logits, -1), the number of rows not ignored (an int, or a "
                         "0-d array in logits' dtype where reading it back would cost a sync), "
                         "softmax(logits) in a form of the backend's own if with_probs else "
                         "None; IndexError for a target outside [0, C) that is not "
                         "ignore_index (on a GPU: raised at the next host read)",
    "cross_entropy_bwd": "(dloss (N,) or a scalar for every row, probs from the forward, "
                         "target, ignore_index, label_smoothing) -> "
                         "dlogits (N, C) = dloss * (probs - smoothed one-hot), 0 rows ignored",
    "gelu_fwd": "(x, approximate 'none' | 'tanh') -> x * Phi(x) (erf or torch's tanh form)",
    "gelu_fwd_grad": "(x, approximate) -> gelu(x), gelu'(x) (one pass; gelu_bwd's factors)",
    "gelu_bwd": "(dout, x, approximate) -> dx = dout * gelu'(x); all one shape",
    "sdpa_fwd": "(q (B, H, T, D), k (B, H, S, D), v (B, H, S, Dv), mask None | bool (True = may "
                "attend) | float (added), broadcastable to (B, H, T, S), is_causal, scale) -> "
                "out (B, H, T, Dv), lse (B, H, T) = logsumexp of the scores; one float dtype; "
                "a fully masked row gives out 0, lse -inf (as torch)",
    "sdpa_bwd": "(dout (B, H, T, Dv), q, k, v, out, lse, mask, is_causal, scale) -> dq, dk, dv "
                "shaped like q, k, v",
    "qkv_attention_fwd": "(qkv (B, T, 3C), n_head, is_causal, scale) -> y (B, T, C), lse (B, H, "
                         "T): sdpa_fwd of qkv's thirds q | k | v, each viewed (B, H, T, D = C/H), "
                         "heads merged back to (B, T, C)",
    "qkv_attention_bwd": "(dout (B, T, C), qkv, y, lse, n_head, is_causal, scale) -> dqkv "
                         "(B, T, 3C) = dq | dk | dv of qkv_attention_fwd",
    # over lists of arrays (gradient clipping): one call instead of a few ops per array
    "foreach_norm": "(xs, ord) -> list of 0-d arrays: the vector norm of order ord (2, 1, inf, "
                    "-inf, 0 or any p > 0) of each array over all its elements, in its dtype",
    "foreach_mul_": "(xs, scale 0-d array) -> None; every x *= scale IN PLACE (scale cast to "
                    "x's dtype)",
    # optimizer steps: IN PLACE over lists of arrays (one call per parameter group), torch's
    # single-tensor arithmetic; the lists hold arrays shaped like params[i], any float dtype
    "sgd_step": "(params, grads, momentum_bufs | None, lr, momentum, dampening, weight_decay, "
                "nesterov, first_step) -> None; params and momentum_bufs updated in place",
    "adam_step": "(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, "
                 "weight_decay, decoupled) -> None; step counted after its increment (>= 1); "
                 "decoupled: AdamW's p *= 1 - lr*wd, else Adam's L2 g += wd*p",
}


def check_arg_reduce(name, shape, axis):
    """Raise torch 2.13's IndexError when argmax / argmin (name) has nothing to reduce: a
    size-0 input without a dim, or a size-0 reduction dim. shape: the input's; axis: an int
    (the Tensor normalizes it to >= 0) or None (flattened); an axis out of range is left to the
    backend's own error."""
    if axis is None:
        if 0 in shape:
            raise IndexError(f"{name}(): Expected reduction dim to be specified for "
                             f"input.numel() == 0 (input of shape {tuple(shape)}).")
    elif -len(shape) <= axis < len(shape) and shape[axis] == 0:     # a bad axis: numpy's error
        raise IndexError(f"{name}(): Expected reduction dim {axis} to have non-zero size "
                         f"(input of shape {tuple(shape)}).")


class Backend:
    """One object per device. Subclasses implement every name in PRIMITIVES."""

    name = "abstract"

    def __getattr__(self, attr):
        if attr in PRIMITIVES:
            raise NotImplementedError(f"backend '{self.name}' does not implement {attr}"
                                      f"{PRIMITIVES[attr]}")
        raise AttributeError(attr)

    def __repr__(self):
        return f"<{type(self).__name__} device={self.name!r}>"
