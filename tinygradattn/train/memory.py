"""A rough estimate of the memory one training step needs, so that a batch that cannot fit is
refused before the first step instead of running until the operating system kills it.

    bytes ~= 4 * (4 * n_params                           weights, gradients, Adam's m and v
                  + B * T * (L * (20 * C + 2 * H * T)    per layer: q k v, attention out,
                             + 3 * V))                    norms, the 4C MLP, residuals, the
                                                          softmax statistics; logits, their
                                                          softmax and gradient
float32 throughout. L counts a seq2seq decoder layer as 1.5 (its cross-attention) on top of the
encoder's. With activation checkpointing (GPT's gradient_checkpointing) a layer keeps only its
input, C floats per token, and one layer's activations live at a time, during its recompute:
L * (20 * C + 2 * H * T) becomes L * C + (20 * C + 2 * H * T). An order of magnitude, not a
promise: it is used to refuse sizes far too big. (tga.utils.memory.activation_report counts
what a real forward keeps, per module.)
"""
import os

BYTES_PER_FLOAT = 4


def model_sizes(config):
    """(T, C, H, L, V) of a GPTConfig or a Seq2SeqConfig (as the tasks build them)."""
    if hasattr(config, "block_size"):                                  # GPT
        return (config.block_size, config.n_embd, config.n_head, config.n_layer,
                config.vocab_size)
    n_layers = config.num_encoder_layers + 1.5 * config.num_decoder_layers
    vocab = max(config.src_vocab_size, config.tgt_vocab_size)
    return config.max_len, config.d_model, config.nhead, n_layers, vocab


def estimate_training_bytes(config, n_params, batch_size, checkpointing=False):
    """-> (total, activations, state) in bytes of one training step of batch_size sequences:
    activations kept for backward, and weights + gradients + Adam state. checkpointing: the
    layers recompute their activations in backward (see the module's docstring)."""
    T, C, H, L, V = model_sizes(config)
    per_layer = 20 * C + 2 * H * T                                     # floats per token
    kept = L * C + per_layer if checkpointing else L * per_layer
    per_token = kept + 3 * V
    activations = BYTES_PER_FLOAT * batch_size * T * per_token
    state = BYTES_PER_FLOAT * 4 * n_params
    return activations + state, activations, state


def physical_memory_bytes():
    """This machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
