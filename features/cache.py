"""The validated company kept as Parquet beside its data, so that an unchanged folder is validated once.

``features.load.validate`` looks here first. An entry lives in ``DATA/.likvid-cache/<key>/`` and its key
covers everything validation reads: each table file's name, size, mtime and content hash, the mapping (its
renames and format), the base currency asked for and the folder's ``likvid.yaml``, and the contract version
(the source of the modules that define a validated company, and the pandas and pyarrow that write it). A
change to any of them is another key, so a stale entry is never read; old entries are pruned. A file's content
hash is kept beside the entries with the file's identity (device, inode, size, mtime and ctime), and read again only
when that identity changes: every write changes the ctime, which no tool sets back, so an unchanged identity is
unchanged content (for hashes taken well after the file's last change, see ``RACY_SECONDS``).

Validation also reads the clock: a payment dated after today is rejected. An entry made on a day that
rejected nothing for being "after today" stays valid on any later day (a date that was not in the future
then is not in the future now); otherwise only on the very day it was made.

This is the one place besides reading a data folder where ``features`` touches the disk: the cache is a
copy of what reading the folder gives, kept in the folder, and a folder that cannot be written (read-only,
full) is simply validated every time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pyarrow

from features.asof import last_known_date
from features.company import Company

T = TypeVar("T")

CACHE_DIR = ".likvid-cache"
LAYOUT = 1  # how an entry is laid out on disk; bump when it changes
KEEP = 3  # entries kept per folder (several mappings or configs in use at once)
_META = "meta.json"
_FRAMES = ("rejects", "summary", "diagnosis")  # the Validation's frames besides the company's tables
_CHUNK = 1 << 20
_STALE_SECONDS = 86_400
# The modules whose code decides what a validated company is: a change to any of them is a new contract version.
_DEFINING = ("company", "contract", "formats", "ledger", "load", "policy", "cache")
_AFTER_TODAY = "is after today ("  # how validation words a date rejected for lying in the future


def contract_version() -> str:
    """A digest of the code that defines a validated company and of the libraries that store it."""
    digest = hashlib.blake2b(digest_size=16)
    here = Path(__file__).parent
    for name in _DEFINING:
        digest.update((here / f"{name}.py").read_bytes())
    digest.update(f"{LAYOUT} {pd.__version__} {pyarrow.__version__}".encode())
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_HASHES = "hashes.json"
RACY_SECONDS = 2  # a hash taken sooner than this after the file's last change (its ctime) is not kept: a second write
# within the same tick of the file system's clock would leave the identity as it was


def _identity(s: os.stat_result) -> list[int]:
    return [s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns]


def file_hashes(folder: Path, paths: list[Path]) -> dict[Path, str]:
    """The content hash of each file, read from the folder's kept hashes where the file's identity is the one they
    were taken at, else hashed (and kept, in a folder that can be written)."""
    store = folder / CACHE_DIR / _HASHES
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    out, changed = {}, False
    for path in paths:
        identity = _identity(path.stat())
        entry = known.get(path.name)
        if isinstance(entry, dict) and entry.get("identity") == identity:
            out[path] = entry["hash"]
            continue
        started = time.time_ns()
        out[path] = file_hash(path)
        if started - identity[4] >= RACY_SECONDS * 1_000_000_000 and _identity(path.stat()) == identity:
            known[path.name], changed = {"identity": identity, "hash": out[path]}, True
    if changed:
        _write_text(store, json.dumps(known))
    return out


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically; a folder that cannot be written is left as it is."""
    try:
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        return


def key(files: dict[str, Path], mapping: object, base_currency: str | None, config: Path | None) -> str:
    """The cache key of a folder's validation: the files (size, mtime, content), the mapping (a dataclass),
    the base currency asked for, the configuration file's content and the contract version."""
    config = config if config is not None and config.is_file() else None
    paths = sorted(files.values()) + ([config] if config is not None else [])
    hashes = file_hashes(paths[0].parent, paths) if paths else {}
    parts = {
        "contract": contract_version(),
        "files": {name: [path.name, (s := path.stat()).st_size, s.st_mtime_ns, hashes[path]]
                  for name, path in sorted(files.items())},
        "mapping": asdict(mapping),
        "base_currency": base_currency,
        "config": hashes[config] if config is not None else None,
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def read(folder: Path, entry_key: str, today: pd.Timestamp) -> dict | None:
    """The ``Validation`` fields stored under ``entry_key`` when they hold for ``today``; None otherwise
    (no entry, another day's future rejects, or an entry that cannot be read)."""
    entry = folder / CACHE_DIR / entry_key
    try:
        meta = json.loads((entry / _META).read_text())
        made = pd.Timestamp(meta["today"])
        if today != made and (today < made or meta["rejected_after_today"]):
            return None
        objects = meta["object_columns"]
        tables = {name: _read_frame(entry / f"table.{name}.parquet", objects[f"table.{name}"])
                  for name in meta["tables"]}
        frames = {name: _read_frame(entry / f"{name}.parquet", objects[name]) for name in _FRAMES}
    except (OSError, ValueError, KeyError, pyarrow.ArrowException):
        return None
    try:
        os.utime(entry)  # recently used: pruned last
    except OSError:
        pass
    supplied = {name: frozenset(cols) for name, cols in meta["supplied"].items()}
    return {"company": Company(tables, supplied, meta["base_currency"], cache=entry), **frames,
            "ignored": meta["ignored"], "detected": meta["detected"], "mapping": meta["mapping"]}


def _read_frame(path: Path, objects: list[str]) -> pd.DataFrame:
    """A stored frame with its object columns object again (Parquet reads text back as pandas' string)."""
    frame = pd.read_parquet(path)
    return frame.astype({c: object for c in objects}) if objects else frame


def write(folder: Path, entry_key: str, today: pd.Timestamp, company: Company, rejects: pd.DataFrame,
          summary: pd.DataFrame, diagnosis: pd.DataFrame, ignored: dict, detected: dict,
          mapping: str | None) -> Path | None:
    """Store a validation under ``entry_key`` (atomically: a reader sees a whole entry or none) and prune
    the oldest entries; the entry (None: a folder that cannot be written, left as it is)."""
    root = folder / CACHE_DIR
    try:
        root.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError:
        return None
    frames = {**{f"table.{name}": frame for name, frame in company.tables.items()},
              "rejects": rejects, "summary": summary, "diagnosis": diagnosis}
    try:
        for name, frame in frames.items():
            frame.to_parquet(tmp / f"{name}.parquet")
        meta = {"object_columns": {name: [str(c) for c in frame.columns if frame[c].dtype == object]
                                   for name, frame in frames.items()},"today": f"{today:%Y-%m-%d}",
                "rejected_after_today": bool(rejects["problem"].astype(str).str.contains(_AFTER_TODAY,
                                                                                         regex=False).any()),
                "tables": list(company.tables), "supplied": {n: sorted(c) for n, c in company.supplied.items()},
                "base_currency": company.base_currency, "ignored": ignored, "detected": detected, "mapping": mapping}
        (tmp / _META).write_text(json.dumps(meta))
        os.replace(tmp, root / entry_key)
    except (OSError, ValueError, pyarrow.ArrowException):
        shutil.rmtree(tmp, ignore_errors=True)  # another process wrote the same entry first, or the disk is full
        return root / entry_key if (root / entry_key / _META).is_file() else None
    _prune(root)
    return root / entry_key


# --- state derived from a validated company ------------------------------------------------------------------
# What the read commands compute from the whole company before anything else (the ledger pass, and the history and
# customer features at the last known date) is kept in the company's entry, keyed by what it was computed with and
# by the source of the ``features`` package, so that a second command on an unchanged folder reads it back
# (``kept``). It is pickled: the entry lives in the data folder, whose writer the product trusts already (it reads
# its CSV files).

DERIVED_KEEP = 2  # files kept per entry and kind (the most recently used): a couple of settings in use at once
_DERIVED = ".pkl"


@functools.cache
def features_version() -> str:
    """A digest of the ``features`` package's source: derived state from other code is never read."""
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def derived_path(company: Company, kind: str, parts: dict, date: pd.Timestamp | None = None,
                 any_date: bool = False) -> Path | None:
    """Where ``company``'s ``kind`` of derived state computed with ``parts`` is kept; None when it has no entry,
    and, for state as of a ``date``, at any date but the company's last known one (the read commands' and the
    service's as-of: training looks at many dates, each once) unless ``any_date`` (a read command's second day)."""
    if company.cache is None or (date is not None and not any_date and date != last_known_date(company)):
        return None
    dated = {} if date is None else {"date": f"{date:%Y-%m-%d}"}
    text = json.dumps({"features": features_version(), **dated, **parts}, sort_keys=True, default=str)
    return company.cache / f"{kind}-{hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}{_DERIVED}"


def kept(path: Path | None, kind: type[T], compute: Callable[[], T]) -> T:
    """What is kept at ``path`` when it is a whole ``kind``, else ``compute()``, then kept there (``path`` None: only
    computed)."""
    if path is not None and isinstance(value := read_derived(path), kind):
        return value
    value = compute()
    if path is not None:
        write_derived(path, value)
    return value


def read_derived(path: Path) -> object | None:
    """What ``write_derived`` kept at ``path``; None when nothing whole is there."""
    try:
        with path.open("rb") as f:
            value = pickle.load(f)
        os.utime(path)  # recently used: pruned last
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
        return None
    return value


def write_derived(path: Path, value: object) -> None:
    """Keep ``value`` at ``path`` (atomically) and prune the entry's other files of that kind past ``DERIVED_KEEP``;
    an entry that cannot be written (pruned meanwhile, a full disk) is left as it is."""
    kind, tmp = path.name.rsplit("-", 1)[0], None
    try:
        fd, name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
        kept = sorted(path.parent.glob(f"{kind}-*{_DERIVED}"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[DERIVED_KEEP:]:
            old.unlink(missing_ok=True)
    except (OSError, pickle.PicklingError):
        pass
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _prune(root: Path) -> None:
    """Keep the ``KEEP`` most recently used entries; drop what a killed writer left behind a day ago."""
    try:
        dirs = [(p, p.stat().st_mtime) for p in root.iterdir() if p.is_dir()]
    except OSError:
        return
    entries = sorted(((p, t) for p, t in dirs if not p.name.startswith(".tmp-")), key=lambda e: e[1], reverse=True)
    stale = [p for p, t in dirs if p.name.startswith(".tmp-") and t < time.time() - _STALE_SECONDS]
    for old in [p for p, _ in entries[KEEP:]] + stale:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["CACHE_DIR", "contract_version", "derived_path", "features_version", "file_hashes", "kept", "key", "read",
           "read_derived", "write", "write_derived"]
