"""Late-payment classifier: LightGBM calibrated on a later time slice, and the customer's-history baseline (the
logistic one, which scikit-learn fits, is ``training.baselines``). Fitting imports scikit-learn; a fitted model
predicts, explains and unpickles without it (unless it keeps a calibration map), so the read commands can import
LightGBM without it (``training.cores.lightgbm_without_sklearn``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.invoices import CATALOG, FEATURES, SNAPSHOT, columns
from training import cores
from training.examples import later_dates

# More of these never lowers risk (+1) or never raises it (-1): each feature's declared direction.
MONOTONE = {f.name: f.direction for f in CATALOG if f.direction}


@dataclass(frozen=True)
class LatePaymentConfig:
    """LightGBM settings. TreeSHAP costs grow with depth squared: 150 trees of 7 leaves explain a row
    in ~40 us against ~800 us for 250 trees of 31 leaves, for 0.001 less holdout AUC
    (benchmarks/score.py and the README)."""

    n_estimators: int = 150
    learning_rate: float = 0.15
    num_leaves: int = 7
    min_child_samples: int = 100
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    calibration_share: float = 0.25  # the latest share of training snapshots calibrates
    seed: int = 0
    threads: int = 1  # LightGBM threads a fit (`likvid train --threads`), repeatable at any count (cores)
    # A second, shallower shape (trees, learning rate, leaves, min rows per leaf) for small ledgers,
    # where deep trees overfit; the shape that ranks the calibration slice better is kept. It is tried only
    # up to ``small_data_max_rows`` training rows: past that the main shape has the data it needs, and the
    # second fit would only double the time.
    small_data_shape: tuple[int, float, int, int] | None = (300, 0.05, 3, 50)
    small_data_max_rows: int = 50_000
    # After the shape is chosen and the calibration fitted on the later slice, the kept shape is fitted again
    # on both slices, so the served trees have seen the customers' latest record; the calibration map stays the
    # one learned out of time (scikit-learn's CalibratedClassifierCV(ensemble=False) does the same).
    refit_on_all: bool = True
    # Whether that map is then applied to the refitted trees. It was learned on the earlier trees' outputs, which the
    # refitted trees do not reproduce: on development companies (seeds 11-13, 500 customers, the open invoices at
    # three as-of dates each, outcomes from the full data) the refitted trees' own probabilities were the better
    # calibrated (ECE 0.0177 against 0.0204, Brier 0.1154 against 0.1158) and ranked the same (AUC +0.0002).
    calibrate_refit: bool = False

    def params(self) -> dict:
        return asdict(self)

    def shapes(self, rows: int | None = None) -> list[tuple[int, float, int, int]]:
        """The shapes to fit on ``rows`` training rows (None: every shape the settings name)."""
        main = (self.n_estimators, self.learning_rate, self.num_leaves, self.min_child_samples)
        small = self.small_data_shape and self.small_data_shape != main and (
            rows is None or rows <= self.small_data_max_rows)
        return [main] + ([self.small_data_shape] if small else [])


class LatePaymentModel:
    """LightGBM on invoice features, then isotonic calibration fitted on a later time slice; the trees are then
    refitted on both slices (``refit_on_all``), and serve their own probabilities unless ``calibrate_refit``. When
    there is one shape to fit and no map to apply, only the refit is made (at 985,325 invoices the first fit cost
    4.6 s in each of ``likvid train``'s two late-payment fits), and ``calibrator_`` is None."""

    def __init__(self, config: LatePaymentConfig = LatePaymentConfig()):
        self.config = config

    def _booster(self, shape: tuple[int, float, int, int]) -> lgb.LGBMClassifier:
        c = self.config
        n_estimators, learning_rate, num_leaves, min_child_samples = shape
        return lgb.LGBMClassifier(
            n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
            min_child_samples=min_child_samples, subsample=c.subsample, subsample_freq=1,
            colsample_bytree=c.colsample_bytree, random_state=c.seed, verbose=-1, **cores.lightgbm_threads(c.threads),
            monotone_constraints=[MONOTONE.get(f, 0) for f in self.features_],
        )

    def fit(self, x: pd.DataFrame, y: np.ndarray, x_cal: pd.DataFrame, y_cal: np.ndarray) -> LatePaymentModel:
        from sklearn.isotonic import IsotonicRegression
        from sklearn.metrics import roc_auc_score

        self.features_ = list(FEATURES)
        c, shapes = self.config, self.config.shapes(len(x))
        if len(shapes) == 1 and c.refit_on_all and not c.calibrate_refit and len(x_cal):
            # Nothing to choose and no map to apply: the trees on the first slice would only be replaced.
            self.shape_, self.shape_auc_, self.calibrator_, self.calibrated_ = shapes[0], {}, None, False
            return self._refit(x, y, x_cal, y_cal)
        fitted = [(shape, self._booster(shape).fit(x[self.features_], y)) for shape in shapes]
        self.shape_auc_ = {}
        if len(fitted) > 1 and len(np.unique(y_cal)) == 2:
            for shape, booster in fitted:
                self.shape_auc_[shape] = roc_auc_score(y_cal, booster.predict_proba(x_cal[self.features_])[:, 1])
            # The main shape stays unless another ranks clearly better.
            margin = {shape: auc - (0.0 if i == 0 else 1e-3) for i, (shape, auc) in enumerate(self.shape_auc_.items())}
            self.shape_, self.booster_ = max(fitted, key=lambda pair: margin[pair[0]])
        else:
            self.shape_, self.booster_ = fitted[0]
        self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        self.calibrator_.fit(self.raw_proba(x_cal), y_cal)
        self.calibrated_ = True  # whether predict_proba applies calibrator_
        self.rows_fit_ = len(x)
        if self.config.refit_on_all and len(x_cal):
            self._refit(x, y, x_cal, y_cal)
            self.calibrated_ = self.config.calibrate_refit
        return self

    def _refit(self, x: pd.DataFrame, y: np.ndarray, x_cal: pd.DataFrame, y_cal: np.ndarray) -> LatePaymentModel:
        """The kept shape's trees refitted on both slices."""
        both = pd.concat([x[self.features_], x_cal[self.features_]], ignore_index=True)
        self.booster_ = self._booster(self.shape_).fit(both, np.concatenate([np.asarray(y), np.asarray(y_cal)]))
        self.rows_fit_ = len(both)
        return self

    @property
    def trees(self) -> lgb.Booster:
        """The fitted trees: LightGBM's booster, inside the sklearn classifier that fitted it (``booster_``) or, in
        a model unpickled, the booster alone."""
        return self.booster_ if isinstance(self.booster_, lgb.Booster) else self.booster_.booster_

    def __getstate__(self) -> dict:
        """Pickled with the booster alone (``trees``): the sklearn classifier around it keeps a scikit-learn label
        encoder, and unpickling that imported scikit-learn (and scipy.stats) into `score` and `worklist`, which
        otherwise import LightGBM without it (alternated at 985,325 invoices, `worklist` took 9.1 / 7.0 / 7.5 s
        against 10.0 / 8.4 / 8.4 s)."""
        state = dict(self.__dict__)
        if "booster_" in state:
            state["booster_"] = self.trees
        return state

    def raw_proba(self, x: pd.DataFrame) -> np.ndarray:
        # The booster on the rows' values: the same numbers as on the frame, without pandas' checks per call.
        return self.trees.predict(x[columns(self.features_)].to_numpy(float), num_threads=cores.predict_threads(len(x)))

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        """Probability of being paid late; an invoice already past due is late (1.0)."""
        p = self.raw_proba(x)
        # Models pickled before ``calibrated_`` existed always applied their map.
        if getattr(self, "calibrated_", True):
            p = self.calibrator_.predict(p)
        return np.where(x["days_to_due"].to_numpy() < 0, 1.0, p)

    def contributions(self, x: pd.DataFrame) -> pd.DataFrame:
        """Per-feature SHAP values (log-odds of the uncalibrated model), by LightGBM's own TreeSHAP (``tree_shap``)."""
        values = tree_shap(self.trees, x[columns(self.features_)].to_numpy(float))
        return pd.DataFrame(values, columns=self.features_, index=x.index)


_ZERO = 1e-35  # LightGBM's kZeroThreshold: a value within it of 0 takes a "Zero" missing type's default side
_PATTERN_BITS = 16  # up to this many splits a tree's decision patterns are counted in an array of 2^bits
NATIVE_SHAP_BELOW = 256  # fewer rows than this: ``tree_shap`` is LightGBM's ``pred_contrib`` (a single invoice's call)


class _Columns:
    """The rows' columns as ``tree_shap``'s splits read them, each derived once however many splits use it."""

    def __init__(self, rows: np.ndarray):
        self._columns = np.asfortranarray(rows)
        self._nan: dict[int, np.ndarray] = {}
        self._filled: dict[int, np.ndarray] = {}

    def nan(self, f: int) -> np.ndarray:
        if f not in self._nan:
            self._nan[f] = np.isnan(self._columns[:, f])
        return self._nan[f]

    def filled(self, f: int) -> np.ndarray:
        """Column ``f`` with NaN read as 0, as a split whose missing type is not NaN reads it."""
        if f not in self._filled:
            v = self._columns[:, f]
            self._filled[f] = np.where(self.nan(f), 0.0, v) if self.nan(f).any() else v
        return self._filled[f]

    def goes_left(self, node: dict) -> np.ndarray:
        """LightGBM's decision at a numerical split (``Tree::NumericalDecision``): NaN reads as 0 unless the split
        has NaN as its missing type; a missing value (NaN, or zero for "Zero") takes the default side."""
        f, missing, left = node["split_feature"], node["missing_type"], bool(node["default_left"])
        if missing == "NaN":  # NaN <= threshold is False: only a default left side needs it added
            below = self._columns[:, f] <= node["threshold"]
            return below | self.nan(f) if left else below
        v = self.filled(f)
        below = v <= node["threshold"]
        return np.where(np.abs(v) <= _ZERO, left, below) if missing == "Zero" else below


def _kinds(pattern: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(pattern, return_inverse=True)`` for patterns below ``2**bits``: counted rather than sorted
    where the count array is small."""
    if bits > _PATTERN_BITS:
        return np.unique(pattern, return_inverse=True)
    kinds = np.flatnonzero(np.bincount(pattern, minlength=1 << bits))
    position = np.empty(1 << bits, np.intp)
    position[kinds] = np.arange(len(kinds))
    return kinds, position[pattern]


def _leaf(node: dict, pattern: int) -> int:
    """The leaf a row of this decision pattern (bit ``split_index`` set: goes left there) reaches."""
    while "split_index" in node:
        node = node["left_child"] if pattern >> node["split_index"] & 1 else node["right_child"]
    return node["leaf_index"]


def tree_shap(booster: lgb.Booster, rows: np.ndarray) -> np.ndarray:
    """Per-feature SHAP values of ``rows`` (no bias column): LightGBM's ``pred_contrib`` TreeSHAP, computed once per
    tree for each pattern of decisions at its splits, which is all a tree's SHAP values depend on (a 7-leaf tree
    has at most 64), instead of once per row, then summed over the trees. The sum's order differs from LightGBM's,
    so values can differ in the last bits (1e-14 at most, measured); a model with a split that is not numerical,
    or a row whose leaves this reads differently from LightGBM, falls back to ``pred_contrib`` itself.

    Below ``NATIVE_SHAP_BELOW`` rows, LightGBM's own ``pred_contrib`` on one thread is cheaper: the patterns cost a
    fixed 18-20 ms (a call per tree), ``pred_contrib`` about 0.07 ms a row (150 trees of 7 leaves: 0.14 ms for one
    row, 21 ms for 300 against 22 ms by patterns, 67 against 27 ms for 1,000; measured on one quiet core)."""
    n, m = rows.shape
    if n < NATIVE_SHAP_BELOW:
        return booster.predict(rows, pred_contrib=True, num_threads=1)[:, :-1]
    trees = booster.dump_model()["tree_info"]
    columns = _Columns(rows)
    out = np.zeros((m, n))
    leaves = None
    for t, tree in enumerate(trees):
        root, nodes, stack = tree["tree_structure"], [], [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                nodes.append(node)
                stack += [node["left_child"], node["right_child"]]
        if not nodes:
            continue
        # Past 30 splits the patterns are about one a row: nothing to save, LightGBM's own pass over every row.
        if any(node["decision_type"] != "<=" for node in nodes) or len(nodes) > 30:
            return booster.predict(rows, pred_contrib=True)[:, :-1]
        pattern = np.zeros(n, np.int64)
        for node in nodes:
            pattern |= columns.goes_left(node).astype(np.int64) << node["split_index"]
        kinds, inverse = _kinds(pattern, 1 + max(node["split_index"] for node in nodes))
        example = np.empty(len(kinds), np.intp)
        example[inverse] = np.arange(n)  # a row of each pattern (any: the same pattern gives the same values)
        if leaves is None:
            leaves = np.ascontiguousarray(booster.predict(rows, pred_leaf=True).T)  # a tree's leaves, contiguous
        if not np.array_equal(np.array([_leaf(root, int(k)) for k in kinds])[inverse], leaves[t]):
            return booster.predict(rows, pred_contrib=True)[:, :-1]
        # One thread: on a few rows LightGBM's thread team costs more than the work (2 to 7 ms of CPU a call on two
        # busy cores, measured, against 0.1 ms); each call sets its own count, so later calls are unaffected.
        phi = booster.predict(rows[example], start_iteration=t, num_iteration=1, pred_contrib=True, num_threads=1)
        by_feature = np.ascontiguousarray(phi.T)
        for f in sorted({node["split_feature"] for node in nodes}):
            out[f] += by_feature[f].take(inverse)
    return out.T


def build_late_payment(config: LatePaymentConfig = LatePaymentConfig()) -> LatePaymentModel:
    return LatePaymentModel(config)


def history_baseline(x: pd.DataFrame) -> np.ndarray:
    """The customer's historical late share (shrunk toward its peers when the history is thin)."""
    return x["late_share"].to_numpy()


def time_slices(frame: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split examples by snapshot date: the latest ``share`` of dates form the second slice."""
    late = frame[SNAPSHOT].isin(later_dates(frame[SNAPSHOT], share)).to_numpy()
    return frame[~late], frame[late]
