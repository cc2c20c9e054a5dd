"""Training dynamics at a checkpoint: gradient noise, the local learning coefficient (whole
model and per head), the Hessian's top eigenvalues, weight norms and update geometry, and the
essential dynamics of the model's outputs across checkpoints."""
