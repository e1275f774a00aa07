"""Extremely randomized trees on 1/d² peak features (Suzuki et al., Sci. Rep. 10, 21790, 2020)."""
