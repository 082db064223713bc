"""Every differentiable op, defined once as a Function in backend primitives; and foreach.py,
the non-differentiable updates over lists of tensors (gradient clipping, optimizer steps)."""
