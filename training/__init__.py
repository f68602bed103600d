"""The models: their fits, predictions, tracking and the decisions built on them.

Their large predictions run LightGBM on every core (``training.cores.predict_threads``). After such a prediction
OpenMP's idle threads spin for a while by default, taking the core the next, single-threaded step needs: measured
here, a two-thread prediction of 100k rows made the next 0.5 s of Python take 0.66 to 0.85 s. So they sleep
instead (``OMP_WAIT_POLICY=PASSIVE``) unless the environment says otherwise. OpenMP reads it when LightGBM's
library loads, which is after this package is imported: every module here that uses LightGBM is in it.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
