"""(being written)"""
from zoo.registry import Registry

METRICS: Registry = Registry("metric")


def get_metric(name, n_classes, **params):
    return METRICS.get(name)(n_classes=n_classes, **params)


def list_metrics(pattern=None):
    return METRICS.names(pattern)
