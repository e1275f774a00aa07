"""The ensemble fits (weights and temperature per data set) of the four shipped models."""
