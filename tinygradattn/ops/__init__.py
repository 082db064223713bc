"""Every differentiable op, defined once as a Function in backend primitives."""
