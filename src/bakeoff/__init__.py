"""bakeoff: which pretrained CNN backbone should I use for my images?"""

import os

__version__ = "0.1.0"

# TensorFlow's inter-op pool to one thread (before any TensorFlow import; a user's setting
# wins). Its ops then run one after another, each still using every core inside it (the
# intra-op pool): on 2 cores a head fit on cached features took 40% less CPU for the same
# wall time (1.08 -> 0.63 CPU s, batch 32, 100 epochs of 1,400 x 1,280 features), and
# EfficientNetB0's batch-1 latency fell from 31 to 22 ms; batch-32 forward passes did not
# change (MobileNet, EfficientNetB0 at 224 px).
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
