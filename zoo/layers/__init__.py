"""Custom Keras layers of the zoo, each registered serialisable (package ``zoo``).

Importing this package registers them, so ``keras.saving.load_model(path,
safe_mode=True)`` finds them after ``import zoo`` with no ``custom_objects``.
"""

from zoo.layers.depth_to_space import *  # noqa: F401,F403
from zoo.layers.pooling import *  # noqa: F401,F403
from zoo.layers.time_distributed import *  # noqa: F401,F403
