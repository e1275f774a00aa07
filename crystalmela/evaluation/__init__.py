"""Evaluation: k-fold cross-validation on built data sets, scoring on labelled pattern folders,
and reports (JSON, Markdown, PNG). ``crystalmela evaluate`` is the command line over it."""
from crystalmela.evaluation.crossval import cross_validate
from crystalmela.evaluation.patterns import evaluate_patterns, read_labels
from crystalmela.evaluation.report import write_report

__all__ = ["cross_validate", "evaluate_patterns", "read_labels", "write_report"]
