"""Random forest on the CrystalMELA paper's peak features (§3.2)."""
