"""zoobench's model zoo: segmentation networks, losses, metrics and datasets.

Pure Keras 3 on TensorFlow; nothing here imports Ray or MLflow.

>>> import zoo
>>> model, out_h, out_w = zoo.get_model("unet_shallow", 64, 64, 3, 4)
>>> model.compile(optimizer="adam", loss=zoo.get_loss("dice"),
...               metrics=[zoo.get_metric("mean_iou", 4)])

Your own models, losses and datasets join the built-in ones with ``zoo.register_model``,
``zoo.register_loss`` and ``zoo.datasets.register_dataset`` (decorators); ``zoo.compat``
says whether a model, a loss or a metric suits a dataset before anything trains.
"""

from zoo import (  # noqa: F401  (layers: registers custom layers for safe loading)
    case_metrics,
    compat,
    datasets,
    layers,
)
from zoo.losses import describe_loss, get_loss, list_losses, register_loss
from zoo.metrics import default_metrics, get_metric, list_metrics
from zoo.models import describe_model, get_model, list_models, register_model, reset_states

__version__ = "0.1.0"

__all__ = [
    "case_metrics",
    "compat",
    "datasets",
    "default_metrics",
    "describe_loss",
    "describe_model",
    "get_loss",
    "get_metric",
    "get_model",
    "list_losses",
    "list_metrics",
    "list_models",
    "register_loss",
    "register_model",
    "reset_states",
]
