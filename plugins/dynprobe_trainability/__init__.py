"""Bundled plugin: trainability probes (gradient propagation, loss Hessian)."""
