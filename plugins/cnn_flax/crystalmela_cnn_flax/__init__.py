"""1-D CNN on the whole gridded profile, in Flax NNX (jax is imported only when a model loads)."""
