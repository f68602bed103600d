"""MLflow plumbing: where runs go, one recipe for every model family, the registry per company, the gate.

The tracking location comes from ``MLFLOW_TRACKING_URI`` and defaults to an embedded SQLite store
(``mlflow.db``) in the working folder, which also holds the model registry. A team's store is a tracking
server (``http://...``) or a PostgreSQL database (``postgresql://user:password@host:port/db``, opened with
psycopg 3, the driver likvid installs); messages show it with the password masked (``shown_uri``).

One company, one set of models. The company key is ``Policy.company_key(data)`` (``company:`` in
likvid.yaml, default: the data folder's name). Each family is registered once per company, under
``<company>.<family>`` (e.g. ``acme.likvid-late-payment``), and the registry alias ``champion`` of that
registered model is what scoring, forecasting and serving use. Registered models, their versions and the
training runs carry the tags ``likvid.company`` and ``likvid.family``; a version also records the recipe
it was fitted with (``likvid.settings``), the definition of late it learned (``likvid.features``: grace and
month end), ``likvid.fitted_as_of`` and ``likvid.evaluated_origin``. Loading a champion checks its
version's ``likvid.company`` tag, so a model of another company is refused, never served; training
company B cannot move company A's alias because they are different registered models. Experiments stay
one per family (``likvid-late-payment``, ...); filter their runs by the ``likvid.company`` tag.

Serve what was fitted on everything known. ``run_recipe`` fits a family at the origin (as-of minus the
holdout, 13 weeks) and scores the holdout after it: those are the run's metrics and the gate's figures.
It then refits the same recipe on everything known at the as-of; that refit model is the one registered
and promoted. The run's params ``evaluated_origin`` and ``fitted_as_of`` name the two dates.

The honest gate. A challenger and a champion are compared on the same holdout rows, and neither was
fitted on them: the challenger is its recipe fitted at the origin, and the champion is the champion's
recipe (its recorded ``likvid.settings``) refitted at the same origin on the same data, not the champion
model itself (that one was fitted on everything known when it was trained, which may include the
holdout). When the recorded settings equal the challenger's, both recipes are the same deterministic fit
(fixed seeds, single-threaded boosters) of the same data, so the champion's refit would be the
challenger's origin model: the gate passes without the extra fit, honestly, because the comparison could
only come out equal. When the champion learned another definition of late (grace or month end changed
in likvid.yaml), the two answer different questions and scoring refuses the old one anyway: the
challenger is promoted and the reason says so. A champion whose recipe cannot be rebuilt by this version
of likvid is not compared either (promoted, with that reason). A champion of another company never takes
part: the champion looked up is the company's own. The gate compares recipes under the current code;
changes of the code itself are judged by the tests and the backtests, not by the gate.

Champions are kept locally. MLflow downloads a model's artifacts on every load; ``load_champion`` keeps each
fitted model it loads (``model_cache_folder``: beside a SQLite store, else the user's cache folder, or
``LIKVID_MODEL_CACHE``), keyed by the registry version's name, number, run, logged model and creation time, and
checked by a digest, and reads that copy afterwards. For a SQLite store the champion aliases read are recorded
with the store file's stamp (its change counter, size and mtime): while the store is unchanged they are not
asked again, so a read command imports no MLflow at all; any training or promotion changes the stamp.

One training at a time per company. ``company_lock`` holds a file lock keyed by tracking URI and company
for the whole of ``likvid train``, so a second training of the same company waits (and says so) and
promotions never interleave. For a local store (SQLite file, ``./mlruns``) the lock file sits next to the
store; for a remote store (HTTP, a database server) it sits in this machine's temporary folder and so only
keeps apart trainings started on the same machine.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import joblib
import pandas as pd
from filelock import FileLock, Timeout

if TYPE_CHECKING:  # MLflow is imported where it is used: a read command whose champions are kept here needs none
    from mlflow import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
CHAMPION = "champion"
LATE_PAYMENT = "likvid-late-payment"
PAYMENT_TIMING = "likvid-payment-timing"
SEGMENTATION = "likvid-segmentation"
CASH_FORECAST = "likvid-cash-forecast"
FAMILIES = (LATE_PAYMENT, PAYMENT_TIMING, SEGMENTATION, CASH_FORECAST)
COMPANY_TAG = "likvid.company"
FAMILY_TAG = "likvid.family"
SETTINGS_TAG = "likvid.settings"
FEATURES_TAG = "likvid.features"
FITTED_TAG = "likvid.fitted_as_of"
ORIGIN_TAG = "likvid.evaluated_origin"
# The settings that define "late" (from likvid.yaml): a model answers only the question it learned.
DEFINITION = ("grace_days", "month_end_days")
LOCK_WAIT_ENV = "LIKVID_TRAIN_LOCK_WAIT"  # seconds a training waits for another one of the same company
DEFAULT_LOCK_WAIT = 3600.0
Progress = Callable[[str], None]


POSTGRES = "postgresql+psycopg://"  # psycopg 3: SQLAlchemy's default driver for postgresql:// is psycopg2
_POSTGRES_WITHOUT_DRIVER = ("postgresql://", "postgres://")


def tracking_uri() -> str:
    """The configured store (``MLFLOW_TRACKING_URI``, default the SQLite file), as likvid opens it."""
    return store_uri(os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI)


def store_uri(uri: str) -> str:
    """``uri`` with a PostgreSQL database given psycopg 3 as its driver when it names none; others unchanged."""
    for scheme in _POSTGRES_WITHOUT_DRIVER:
        if uri.startswith(scheme):
            return POSTGRES + uri[len(scheme):]
    return uri


def shown_uri(uri: str | None = None) -> str:
    """The store's URI (default: the configured one) with its password masked, for messages and logs."""
    uri = uri or tracking_uri()
    parts = urlsplit(uri)
    credentials, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in credentials:
        return uri
    return urlunsplit(parts._replace(netloc=f"{credentials.partition(':')[0]}:***@{host}"))


def _without_credentials(uri: str) -> str:
    """The store a URI names, whoever connects: the user and password dropped."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def connect() -> MlflowClient:
    """Point MLflow at the configured store and return a client."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri()
    if uri.startswith(POSTGRES):
        _quiet_psycopg()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient()


def _already_raised(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("error ignored terminating")


def _quiet_psycopg() -> None:
    """Drop psycopg's warning about a second error while an exception is already leaving a pipeline: MLflow
    logs a model's metrics again, catches the duplicate key it raises and carries on, so the warning (one per
    model logged) is noise. The exception itself still reaches whoever handles it."""
    logger = logging.getLogger("psycopg")
    if _already_raised not in logger.filters:
        logger.addFilter(_already_raised)


def model_name(family: str, company: str) -> str:
    """The registered model of ``family`` for ``company``: ``<company>.<family>``."""
    return f"{company}.{family}"


@contextmanager
def scratch_store() -> Iterator[Path]:
    """A temporary folder holding its own MLflow store, worked in (MLflow writes run artifacts to
    ./mlruns): for scripts that train and measure without touching the user's registry. The tracking
    location and working folder are restored afterwards."""
    here, before = Path.cwd(), os.environ.get("MLFLOW_TRACKING_URI")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(here)
            if before is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = before


# --- the lock ------------------------------------------------------------------------------------


class RegistryBusy(RuntimeError):
    """Another training of the same company holds the registry lock."""


def lock_path(company: str, uri: str | None = None) -> Path:
    """The lock file of ``company``'s registry entries in the store at ``uri``: next to a local store,
    else (a server, a database) in the temporary folder, keyed by a hash of the URI without its user and
    password, so that two people training the same company on one machine share it."""
    uri = store_uri(uri) if uri else tracking_uri()
    key = hashlib.sha1(f"{_without_credentials(uri)}|{company}".encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir())
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).resolve().parent
    elif uri.startswith("file:"):
        folder = Path(uri[len("file:"):].lstrip("/") if uri.startswith("file:./") else uri[len("file:"):])
        folder = folder.resolve()
    elif "://" not in uri:
        folder = Path(uri).resolve()
    return folder / f".likvid-train-{company}-{key}.lock"


@contextmanager
def company_lock(company: str, wait: float | None = None, say: Progress = lambda _: None) -> Iterator[Path]:
    """Hold ``company``'s training lock: wait up to ``wait`` seconds (``LIKVID_TRAIN_LOCK_WAIT``, default
    an hour) for another training of the same company, saying so, then ``RegistryBusy``."""
    wait = float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT)) if wait is None else wait
    path = lock_path(company)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"Another `likvid train` of company {company} is running; waiting up to {wait:.0f} s for it "
            f"(lock {path})")
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise RegistryBusy(f"another `likvid train` of company {company} still holds {path} after {wait:.0f} s; "
                               f"try again when it has finished (or set {LOCK_WAIT_ENV})") from None
    try:
        yield path
    finally:
        lock.release()


# --- the pyfunc and the registry -------------------------------------------------------------------


@functools.cache
def _likvid_model() -> type:
    """``LikvidModel``, made at its first use (it subclasses MLflow's ``PythonModel``)."""
    import mlflow

    class LikvidModel(mlflow.pyfunc.PythonModel):
        """The pyfunc around any of likvid's fitted models (a joblib artifact).

        ``predict`` is the family's ``output(model, frame)`` (a module-level function, pickled by reference);
        ``unwrap_python_model().model`` is the fitted object, for reasons and sampling that pyfunc's predict
        cannot express.
        """

        def __init__(self, family: str, output: Callable[[Any, pd.DataFrame], pd.DataFrame]):
            self.family = family
            self.output = output

        def load_context(self, context) -> None:
            self.model = joblib.load(context.artifacts["model"])

        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
            answered = _ANSWERED.get(self.family)
            if answered is not None and _same_input(answered[0], model_input):
                return answered[1]
            return self.output(self.model, model_input)

    LikvidModel.__module__, LikvidModel.__qualname__ = __name__, "LikvidModel"  # pickled by this name
    return LikvidModel


# The input example ``log_model`` is logging and its answer, per family, while it logs: MLflow's log-time check
# loads the logged model and predicts the example again (for the cash forecast a second whole-company
# forecast), and the model it loads is the one that has just given that answer, so it is handed back.
_ANSWERED: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}


def _same_input(example: pd.DataFrame, frame: object) -> bool:
    """Whether ``frame`` holds the values of ``example`` (MLflow reads it back from JSON: dtypes may differ)."""
    if not isinstance(frame, pd.DataFrame) or list(frame.columns) != list(example.columns) \
            or frame.shape != example.shape:
        return False
    try:
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), example.reset_index(drop=True),
                                      check_dtype=False, check_index_type=False, check_exact=True)
    except (AssertionError, TypeError, ValueError):
        return False
    return True


def __getattr__(name: str) -> Any:
    """``training.tracking.LikvidModel`` (the name the registry's pickles refer to), made on first access, so
    that importing this module does not import MLflow."""
    if name == "LikvidModel":
        return _likvid_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _requirements() -> list[str]:
    return [f"{p}=={version(p)}" for p in ("lightgbm", "scikit-learn", "pandas", "numpy", "joblib", "mlflow")]


def log_model(model: object, family: str, company: str, example: pd.DataFrame,
              output: Callable[[Any, pd.DataFrame], pd.DataFrame], tags: dict[str, str] | None = None):
    """Log a fitted model as a pyfunc with signature and input example, registered as
    ``<company>.<family>``; the registered model and the version carry the company and family tags."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    client = connect()
    name = model_name(family, company)
    example = _whole_numbers_as_floats(example)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        joblib.dump(model, path)
        result = _whole_numbers_as_floats(output(model, example))
        _ANSWERED[family] = (example, result)
        try:
            info = mlflow.pyfunc.log_model(
                name="model", python_model=_likvid_model()(family, output), artifacts={"model": str(path)},
                signature=infer_signature(example, result), input_example=example, pip_requirements=_requirements(),
            )
        finally:
            _ANSWERED.pop(family, None)
    # Registered through the client, not log_model's registered_model_name, which prints to the console.
    owner = {COMPANY_TAG: company, FAMILY_TAG: family}
    try:
        client.create_registered_model(name, tags=owner)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        for key, value in owner.items():
            client.set_registered_model_tag(name, key, value)
    made = client.create_model_version(name, info.model_uri, run_id=info.run_id, model_id=info.model_id,
                                       tags={**owner, **(tags or {})})
    info.registered_model_version = int(made.version)
    return info


def _whole_numbers_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as floats: a missing value in a later request would break an integer schema (MLflow
    warns of it on every log), and the models read them as floats anyway."""
    if not isinstance(frame, pd.DataFrame):
        return frame
    return frame.astype({c: "float64" for c in frame.select_dtypes("integer").columns})


def promote(family: str, company: str, version_: str) -> None:
    """Point ``company``'s ``champion`` alias of ``family`` at ``version_``."""
    connect().set_registered_model_alias(model_name(family, company), CHAMPION, str(version_))


class ChampionError(LookupError):
    """No usable champion: none yet, another company's, or one trained with another definition of late."""


@dataclass(frozen=True)
class Champion:
    """A company's champion of one family: the fitted model and what the registry records about it."""

    family: str
    company: str
    name: str
    version: str
    run_id: str | None
    model: Any
    settings: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)

    def check_features(self, expected: dict) -> None:
        """Refuse scoring with a definition of late (grace, month end) other than the one learned."""
        differ = {k: (self.features[k], v) for k, v in expected.items() if k in self.features and self.features[k] != v}
        if differ:
            said = ", ".join(f"{k}={old} but the policy says {new}" for k, (old, new) in differ.items())
            raise ChampionError(f"the {self.family} champion of company {self.company} (v{self.version}) was trained "
                                f"with {said}; retrain with `likvid train DATA` so that training and scoring "
                                "mean the same by late")


def definition_of(policy) -> dict:
    """The policy's definition of late (``DEFINITION`` fields of ``features.policy.Policy``)."""
    return {k: getattr(policy, k) for k in DEFINITION}


def load_champion(family: str, company: str, policy=None) -> Champion:
    """``company``'s champion of ``family``; ``ChampionError`` (a ``LookupError``) when there is none, when
    its version was trained on another company, or, given the ``policy``, when it learned another
    definition of late than the policy's."""
    name = model_name(family, company)
    mv = _champion_version(name)
    if mv is None:
        raise ChampionError(f"no '{CHAMPION}' {family} model for company {company} in the registry at "
                            f"{shown_uri()}; run `likvid train DATA` first")
    owner = mv.tags.get(COMPANY_TAG)
    if owner != company:
        raise ChampionError(f"the {family} champion {name} v{mv.version} was trained on company {owner!r}, not "
                            f"{company!r}; run `likvid train DATA` for {company}")
    model = _cached_model(mv)
    champion = Champion(family, company, name, str(mv.version), mv.run_id, model,
                        json.loads(mv.tags.get(SETTINGS_TAG, "{}")), json.loads(mv.tags.get(FEATURES_TAG, "{}")),
                        dict(mv.tags))
    if policy is not None:
        champion.check_features(definition_of(policy))
    return champion


MODEL_CACHE_ENV = "LIKVID_MODEL_CACHE"  # a folder for downloaded champions, or "off"
KEEP_MODELS = 32  # versions kept per store: every family of a few companies, and their last champions
_MODEL_FILE = "model.joblib"
_MODEL_META = "meta.json"


def model_cache_folder(uri: str | None = None) -> Path | None:
    """Where fitted models loaded from the store at ``uri`` are kept (None: not kept): ``LIKVID_MODEL_CACHE``
    when set, else beside a SQLite store, else the user's cache folder; one subfolder per store (a hash of
    its URI without the user and password)."""
    uri = store_uri(uri) if uri else tracking_uri()
    setting = os.environ.get(MODEL_CACHE_ENV, "")
    if setting.lower() == "off":
        return None
    store = hashlib.sha1(_without_credentials(uri).encode()).hexdigest()[:12]
    if setting:
        return Path(setting) / store
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).resolve().parent / ".likvid-models" / store
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home / "likvid" / "models" / store


@dataclass(frozen=True)
class _Version:
    """What likvid reads of a registry version (the fields of MLflow's ``ModelVersion`` it uses)."""

    name: str
    version: str
    run_id: str | None
    source: str | None
    creation_timestamp: int | None
    tags: dict


_CHAMPIONS = "champions.json"


def _store_stamp(uri: str) -> list | None:
    """For a SQLite store, its file's identity and last change (device, inode, size, mtime, and SQLite's own
    change counter, which every committed write moves; the same of its journal files): any write to the store
    (a training, a promotion) changes it. None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri[len("sqlite:///"):]).resolve()
    try:
        with path.open("rb") as f:
            counter = f.read(100)[24:28].hex()  # the header's file change counter
    except OSError:
        return None
    stamp: list = [counter]
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")):
        try:
            s = file.stat()
        except OSError:
            stamp.append(None)
            continue
        stamp.append([s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns])
    return stamp if stamp[1] is not None else None


def _champion_version(name: str) -> _Version | None:
    """The version the ``champion`` alias of registered model ``name`` points at (None: no such alias). A SQLite
    store that has not changed since the aliases were last read here is not asked again (nor MLflow imported):
    the answer is the one recorded beside the kept models with the store's ``_store_stamp``."""
    uri, folder = tracking_uri(), model_cache_folder()
    stamp = _store_stamp(uri) if folder is not None else None  # taken before asking: a later write shows
    known: dict = {}
    if stamp is not None:
        try:
            known = json.loads((folder / _CHAMPIONS).read_text())
            if known.get("stamp") == stamp and name in known.get("versions", {}):
                return _Version(**known["versions"][name])
        except (OSError, ValueError, TypeError):
            known = {}
    from mlflow.exceptions import MlflowException

    try:
        mv = connect().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    found = _Version(mv.name, str(mv.version), mv.run_id, mv.source, mv.creation_timestamp, dict(mv.tags))
    if stamp is not None:
        versions = known.get("versions", {}) if known.get("stamp") == stamp else {}
        _write_json(folder / _CHAMPIONS, {"stamp": stamp, "versions": {**versions, name: dataclasses.asdict(found)}})
    return found


def _write_json(path: Path, value: dict) -> None:
    """Write ``value`` to ``path`` atomically; a folder that cannot be written is left as it is."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(value, f)
        os.replace(tmp, path)
    except OSError:
        return


def _version_key(mv: _Version) -> str:
    """A registry version's identity: its name and number, and what a recreated store would not repeat (the
    run, the logged model and the time it was made), so that version 3 of another store's past is never read."""
    parts = [mv.name, str(mv.version), mv.run_id or "", mv.source or "", str(mv.creation_timestamp)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_model(mv: _Version) -> Any:
    """The fitted model of registry version ``mv``: from the local copy kept at its first load, when that copy is
    of this very version and whole (its digest checks), else loaded from the store (MLflow downloads the
    artifacts on every load) and kept. A folder that cannot be written just means loading from the store."""
    folder = model_cache_folder()
    entry = folder / _version_key(mv) if folder is not None else None
    if entry is not None:
        try:
            meta = json.loads((entry / _MODEL_META).read_text())
            if meta["name"] == mv.name and meta["version"] == str(mv.version) and meta["run_id"] == mv.run_id \
                    and meta["sha256"] == _file_digest(entry / _MODEL_FILE):
                model = joblib.load(entry / _MODEL_FILE)
                os.utime(entry)  # recently used: pruned last
                return model
        except (OSError, ValueError, KeyError, EOFError):
            pass
        shutil.rmtree(entry, ignore_errors=True)  # none, or not whole: kept again below
    import mlflow

    connect()
    model = mlflow.pyfunc.load_model(f"models:/{mv.name}/{mv.version}").unwrap_python_model().model
    if entry is not None:
        _keep_model(entry, model, mv)
    return model


def _keep_model(entry: Path, model: Any, mv: _Version) -> None:
    """Write ``model`` to ``entry`` atomically (a reader sees a whole entry or none)."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
    except OSError:
        return
    try:
        joblib.dump(model, tmp / _MODEL_FILE)
        meta = {"name": mv.name, "version": str(mv.version), "run_id": mv.run_id,
                "sha256": _file_digest(tmp / _MODEL_FILE)}
        (tmp / _MODEL_META).write_text(json.dumps(meta))
        os.replace(tmp, entry)
    except OSError:  # another process kept the same version first, or the disk is full
        shutil.rmtree(tmp, ignore_errors=True)
        return
    _prune_models(entry.parent)


def _prune_models(folder: Path) -> None:
    """Keep the ``KEEP_MODELS`` most recently used versions of a store; drop what a killed writer left."""
    try:
        dirs = sorted(((p, p.stat().st_mtime) for p in folder.iterdir() if p.is_dir()), key=lambda e: -e[1])
    except OSError:
        return
    kept = [p for p, _ in dirs if not p.name.startswith(".tmp-")]
    stale = [p for p, t in dirs if p.name.startswith(".tmp-") and t < time.time() - 86_400]
    for old in kept[KEEP_MODELS:] + stale:
        shutil.rmtree(old, ignore_errors=True)


def champion_or_none(family: str, company: str) -> Champion | None:
    """The company's champion, or None when there is none or it cannot be loaded (recorded on the run)."""
    try:
        return load_champion(family, company)
    except LookupError:
        return None
    except Exception as e:  # noqa: BLE001 - an unloadable champion cannot block a new model
        import mlflow

        mlflow.set_tag(f"gate.{family}.champion_error", str(e)[:500])
        return None


# --- the gate ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    metric: str
    candidate: float
    champion: float | None
    reason: str


@dataclass(frozen=True)
class GateRule:
    """Which holdout metric decides, which way is better, and how much worse is still "not worse"."""

    metric: str
    lower_is_better: bool = True
    tolerance: float = 0.0


def gate(metric: str, candidate: float, champion: float | None, lower_is_better: bool = True,
         tolerance: float = 0.0) -> GateDecision:
    """Promote a candidate unless it is worse than the champion on the same holdout."""
    if champion is None:
        return GateDecision(True, metric, candidate, None, "no champion yet")
    worse = candidate > champion + tolerance if lower_is_better else candidate < champion - tolerance
    verdict = "worse than" if worse else "not worse than"
    return GateDecision(not worse, metric, candidate, champion,
                        f"candidate {metric} {candidate:.4f} is {verdict} champion's recipe's {champion:.4f}")


def record_gate(family: str, company: str, version_: str, decision: GateDecision) -> None:
    """Record the decision on the active run and the new version; move the champion alias if promoted."""
    import mlflow

    client = connect()
    name = model_name(family, company)
    mlflow.set_tags({"gate.decision": "promote" if decision.promote else "keep",
                     "gate.reason": decision.reason, "gate.metric": decision.metric,
                     "registered_model": name, "registered_version": str(version_)})
    mlflow.log_metric(f"gate_candidate_{decision.metric}", decision.candidate)
    if decision.champion is not None:
        mlflow.log_metric(f"gate_champion_{decision.metric}", decision.champion)
    client.set_model_version_tag(name, version_, "gate", "promote" if decision.promote else "keep")
    client.set_model_version_tag(name, version_, "gate_reason", decision.reason)
    if decision.promote:
        promote(family, company, version_)


# --- the recipe ----------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """A model and its baselines on the same holdout rows: ``table`` (rows: scorers, columns: metrics),
    the gate's figure of the model, params to log (row counts...) and artifact files written."""

    table: pd.DataFrame
    metric: float
    params: dict = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # extra metrics (e.g. stepped silhouettes)


class Family(Protocol):
    """What ``run_recipe`` needs of a model family; the modules ``training.late_payment``,
    ``payment_timing``, ``customers`` and ``cash`` each provide one."""

    name: str
    rule: GateRule
    holdout_days: int

    def settings(self) -> dict:
        """The recipe's settings (JSON-able): logged as params and recorded on the version."""

    def definition(self) -> dict:
        """The definition of the target the recipe learns (grace, month end): scoring must match it."""

    def with_settings(self, settings: dict) -> Family:
        """The same family with a recorded recipe (the champion's); ``ValueError`` if it cannot be rebuilt."""

    def examples(self, company, date: pd.Timestamp) -> Any:
        """What the model learns from, as known at ``date``."""

    def fit(self, examples: Any) -> Any:
        """The fitted model (scikit-learn style: a ``build_*()`` factory, then ``fit``)."""

    def holdout(self, company, origin: pd.Timestamp, at: pd.Timestamp) -> Any:
        """The rows after ``origin``, with outcomes as known at ``at``; ``ValueError`` when too few."""

    def evaluate(self, model: Any, examples: Any, holdout: Any, out: Path) -> Evaluation:
        """The origin model against the baselines on ``holdout`` (baselines fitted on ``examples``)."""

    def measure(self, model: Any, holdout: Any) -> float:
        """The gate's metric of a model on ``holdout``."""

    def input_example(self, model: Any, company, at: pd.Timestamp) -> pd.DataFrame:
        """A few rows for the pyfunc signature and input example."""

    def output(self, model: Any, frame: pd.DataFrame) -> pd.DataFrame:
        """The pyfunc's predict; a module-level function (pickled by reference)."""


@dataclass
class RecipeResult:
    """One family's training: holdout figures of the origin model, the gate, the registered refit model."""

    family: str
    company: str
    origin: pd.Timestamp
    at: pd.Timestamp
    evaluation: Evaluation
    decision: GateDecision
    version: str
    model: Any  # fitted on everything known at ``at``: what was registered
    origin_model: Any  # fitted at ``origin``: what the figures are of
    run_id: str


def _json(value: dict) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _decide(family: Family, company, company_key: str, origin: pd.Timestamp, holdout: Any, candidate: float,
            progress: Progress) -> GateDecision:
    rule = family.rule
    champion = champion_or_none(family.name, company_key)
    if champion is None:
        return gate(rule.metric, candidate, None)
    if _json(champion.features) != _json(family.definition()):
        return GateDecision(True, rule.metric, candidate, None,
                            f"the champion (v{champion.version}) learned another definition of late "
                            f"({_json(champion.features)}); promoted without comparison")
    if _json(champion.settings) == _json(family.settings()):
        return GateDecision(True, rule.metric, candidate, candidate,
                            f"same recipe as the champion (v{champion.version}): its refit at the origin is this "
                            f"model, {rule.metric} {candidate:.4f} on the same holdout")
    try:
        theirs = family.with_settings(champion.settings)
    except (ValueError, TypeError) as e:
        return GateDecision(True, rule.metric, candidate, None,
                            f"the champion's (v{champion.version}) recipe cannot be rebuilt ({e}); "
                            "promoted without comparison")
    progress(f"{family.name}: refitting the champion's recipe (v{champion.version}) at the origin")
    figure = theirs.measure(theirs.fit(theirs.examples(company, origin)), holdout)
    return gate(rule.metric, candidate, figure, rule.lower_is_better, rule.tolerance)


def run_recipe(family: Family, company, company_key: str, data: str, at: pd.Timestamp,
               progress: Progress = lambda _: None, params: dict | None = None) -> RecipeResult:
    """Train one family for ``company_key``: fit at the origin (``at`` minus the holdout), evaluate against
    the baselines on the holdout, log, refit on everything known at ``at``, register that refit model,
    gate against the champion's recipe at the same origin and promote (see the module docstring)."""
    import mlflow

    connect()
    origin = at - pd.Timedelta(days=family.holdout_days)
    progress(f"{family.name}: building examples as known at the origin {origin:%Y-%m-%d}")
    examples = family.examples(company, origin)
    holdout = family.holdout(company, origin, at)
    progress(f"{family.name}: fitting at the origin and evaluating on the holdout")
    origin_model = family.fit(examples)
    mlflow.set_experiment(family.name)
    with mlflow.start_run(run_name=family.name.removeprefix("likvid-")) as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({COMPANY_TAG: company_key, FAMILY_TAG: family.name,
                         "mlflow.note.content": f"Metrics are the holdout figures of the model fitted at the "
                         f"evaluated_origin {origin:%Y-%m-%d}; the registered model was refitted on everything "
                         f"known at fitted_as_of {at:%Y-%m-%d}."})
        evaluation = family.evaluate(origin_model, examples, holdout, Path(tmp))
        flat = {f"model.{k}": v for k, v in _flatten(family.settings()).items()}
        mlflow.log_params({**flat, **{f"features.{k}": v for k, v in family.definition().items()},
                           **(params or {}), **evaluation.params, "data": data, "company": company_key,
                           "as_of": f"{at:%Y-%m-%d}", "fitted_as_of": f"{at:%Y-%m-%d}",
                           "evaluated_origin": f"{origin:%Y-%m-%d}", "origin": f"{origin:%Y-%m-%d}"})
        scorer = evaluation.table.index[0]
        for name, row in evaluation.table.iterrows():
            mlflow.log_metrics({(k if name == scorer else f"{k}_{name}"): float(v) for k, v in row.items()
                                if pd.notna(v)})
        if evaluation.metrics:
            mlflow.log_metrics(evaluation.metrics)
        for path in evaluation.artifacts:
            mlflow.log_artifact(str(path))
        decision = _decide(family, company, company_key, origin, holdout, evaluation.metric, progress)
        progress(f"{family.name}: refitting on everything known at {at:%Y-%m-%d}")
        model = family.fit(family.examples(company, at))
        progress(f"{family.name}: registering for company {company_key}")
        tags = {SETTINGS_TAG: _json(family.settings()), FEATURES_TAG: _json(family.definition()),
                FITTED_TAG: f"{at:%Y-%m-%d}", ORIGIN_TAG: f"{origin:%Y-%m-%d}"}
        info = log_model(model, family.name, company_key, family.input_example(model, company, at), family.output,
                         tags)
        version_ = str(info.registered_model_version)
        record_gate(family.name, company_key, version_, decision)
        return RecipeResult(family.name, company_key, origin, at, evaluation, decision, version_, model,
                            origin_model, run.info.run_id)


def _flatten(settings: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in settings.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def rebuild(cls: type, values: dict):
    """A frozen config dataclass from its recorded ``asdict`` (nested configs and tuples restored);
    ``ValueError`` naming an unknown or missing setting."""
    default = cls()
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"{cls.__name__} has no setting {', '.join(sorted(unknown))}")
    kwargs = {}
    for name in names & set(values):
        current, value = getattr(default, name), values[name]
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            value = rebuild(type(current), value)
        elif isinstance(current, tuple) and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
