"""Training data sets: reflection lists + labels in Parquet, built from CIF folders and/or synthetic
crystals (``build``), read back and rendered on the fly (``store``)."""
from crystalmela.dataset.build import BuildSettings, build
from crystalmela.dataset.store import ReflectionSet, load_reflections, render_batch

__all__ = ["BuildSettings", "build", "ReflectionSet", "load_reflections", "render_batch"]
