"""The all-background score of each dataset's test split: the floor a network must clear."""
import numpy as np
import zoo
from zoo.datasets import build_arrays

for name, opts in [("shapes", dict(height=32, width=32, classes=4, train=384, val=128, test=256)),
                   ("digits", dict(height=32, width=32, train=384, val=128, test=256))]:
    a = build_arrays(name, **opts)
    k = a.n_classes
    truth = np.eye(k, dtype=np.float32)[a.y_test]  # (N, H, W) class indices -> one-hot
    background = np.zeros_like(truth)
    background[..., 0] = 1.0
    metric = zoo.get_metric("mean_iou", k)
    metric.update_state(truth, background)
    print(f"{name}: all-background test mean IoU {float(metric.result()):.4f} ({k} classes)")
