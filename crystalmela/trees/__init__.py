"""Trained scikit-learn forests as plain arrays: exported without pickle, predicted without scikit-learn."""
