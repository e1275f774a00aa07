"""What a classifier plugin's ``train`` receives and scores with: the request (data, split, features,
where to write, the card) and the metrics every model card records. Imported only when training."""
from crystalmela.evaluation.metrics import classification_metrics
from crystalmela.training.request import TrainRequest

__all__ = ["TrainRequest", "classification_metrics"]
