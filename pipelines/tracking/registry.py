"""The model registry: the version every export registers, the rule that moves `champion`, and the
history of every move of an alias.

Every export registers a version and moves `candidate` to it. `champion` moves only for a production
run (:func:`production_run`: not inside `dvc exp run`, on a branch of PIPELINES_PRODUCTION_BRANCHES),
so an experiment or a sweep trial never replaces the model serving uses; `registry promote` adopts
one by hand. It moves to the new version only when its primary test metric is at least the
champion's, in the metric's direction, on the same test data: the champion's own recorded
metric when it was scored on the same test split, else the champion's model scored again on this
split (``score_champion``). A champion that cannot be loaded any more is never replaced silently:
``export.unloadable_champion`` says whether it is kept or the new version promoted, and the reason
says which happened.

What the registry remembers, visible in the MLflow UI and printed by
``python -m pipelines registry <project>``:
- each move of an alias is a tag of the registered model, ``history.<time>.<alias>``, whose value
  names the version, the one before, the reason and who moved it (``export`` or a user by hand);
- each version carries its decision in ``decision.*`` tags (moved or kept, the champion it was
  compared with, both scores, how the champion was scored) beside ``metric_*`` and
  ``test_data_hash``.

Two exports deciding at once: on one machine a lock serialises them. Machines sharing one tracking
server cannot share that lock, and MLflow has no compare-and-set on an alias, so an export re-reads
the alias just before it moves it, and after the move waits PIPELINES_REGISTRY_SETTLE_SECONDS,
reads it again, and takes it back from a worse version that moved it at the same moment (or gives
way to a better one). Ties go to the newer version, so two exports agree on who wins.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pipelines.core import settings
from pipelines.core.paths import repo_root
from pipelines.tracking.registry_lock import _registry_lock, lock_dir  # noqa: F401  (lock_dir: where the locks are)
from pipelines.tracking import runs as tracking
from pipelines.tracking.promotion import PROMOTE_RULES, Score, _verdict  # noqa: F401  (Score: tests build one)
from pipelines.core.errors import ConfigError, TrackingError

logger = logging.getLogger(__name__)

CANDIDATE = "candidate"
CHAMPION = "champion"
ALIASES = (CHAMPION, CANDIDATE)
HISTORY_PREFIX = "history."
EXPORT_STATUS = "export_status"
ABANDONED_NOTE = ("[abandoned: the export that registered this version was stopped before its champion "
                  "decision; it was never compared with the champion. Delete it, or re-run the export.]")
UNLOADABLE_CHOICES = ("keep", "promote")
# Rounds of "compare, move, re-read" before an export gives up correcting a concurrent one; each
# round is one other export that moved the alias in between, so a handful is plenty.
MAX_ROUNDS = 8
# MLflow keeps tag values up to 5000 characters; a reason is cut well below.
REASON_CHARS = 1000


class ChampionUnloadable(Exception):
    """Raised by a ``score_champion`` callable when the champion's model cannot be loaded or run."""




# --------------------------------------------------------------------------- history
def _user() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # no user name in a container without a passwd entry
        return f"uid {os.getuid()}@{socket.gethostname()}"


def _version(mv) -> int | None:
    return int(mv.version) if mv is not None else None


def _alias(client, name: str, alias: str):
    """The version holding ``alias``, or None when no version does."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def move_alias(client, name: str, alias: str, version: int | str, previous: int | None, reason: str,
               by: str) -> None:
    """Point ``alias`` at ``version`` and record the move in the registered model's history."""
    client.set_registered_model_alias(name, alias, str(version))
    now = time.time_ns()
    stamp = datetime.fromtimestamp(now / 1e9, timezone.utc).isoformat(timespec="seconds")
    event = {"alias": alias, "version": int(version), "previous": previous, "reason": reason[:REASON_CHARS],
             "by": by, "time": stamp}
    # The key orders the events (nanoseconds, zero-padded) and never collides between two exports.
    client.set_registered_model_tag(name, f"{HISTORY_PREFIX}{now:020d}.{alias}.{int(version)}", json.dumps(event))


def events(client, name: str) -> list[dict]:
    """Every recorded move of an alias of ``name``, oldest first."""
    model = client.get_registered_model(name)
    found = []
    for key, value in sorted((model.tags or {}).items()):
        if key.startswith(HISTORY_PREFIX):
            try:
                found.append(json.loads(value))
            except ValueError:
                logger.warning("registered model %s: tag %s is not a history event; ignored", name, key)
    return found


# --------------------------------------------------------------------------- export's registration
def _mark_abandoned_versions(client, name: str, current: str) -> None:
    """Versions an earlier export left behind: created (tagged ``export_status: incomplete``) but
    never completed, because the export was killed before its champion decision.

    They are tagged ``export_status: abandoned`` with a note in front of their description, so no
    one mistakes them for vetted models; the champion is only ever moved to a completed version.
    Called under the registry lock: an export still running on this machine waits for the lock
    before it completes its version (and then sets it complete again), so the tag is re-read just
    before it is written."""
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception:  # a registry without the model yet
        return
    for v in versions:
        if v.version == current or (v.tags or {}).get(EXPORT_STATUS) != "incomplete":
            continue
        fresh = client.get_model_version(name, v.version)
        if (fresh.tags or {}).get(EXPORT_STATUS) != "incomplete":
            continue
        client.set_model_version_tag(name, v.version, EXPORT_STATUS, "abandoned")
        client.update_model_version(name, v.version, description=f"{ABANDONED_NOTE} {fresh.description or ''}".strip())
        logger.warning("registered model %s version %s was left by an export that did not finish; marked "
                       "export_status=abandoned (delete it in the MLflow UI if you like)", name, v.version)


def register(params, project: str, run_id: str, *, python_model, artifacts: dict[str, str],
             code_paths: list[str], pip_requirements: list[str], metric_name: str, metric_value: float,
             test_data_hash: str, description: str, version_tags: dict[str, str],
             score_champion: Callable[[str], float] | None = None, signature=None, input_example=None,
             unloadable_champion: str = "keep", greater_is_better: bool = True,
             production: tuple[bool, str] = (True, ""),
             compare: Callable[[str, str], dict | None] | None = None, promote: str = "not_worse") -> dict:
    """Log the model as a pyfunc in the run, register a version, set `candidate`, maybe move `champion`.

    ``python_model`` is a PythonModel, or the path of a models-from-code file (nothing pickled);
    ``signature`` is the input the served model declares (an MLflow ModelSignature), if any, and
    ``input_example`` a request it answers (shown in the MLflow UI and checked when logged).
    ``score_champion(model_uri)`` scores a champion registered on other test data on this version's
    test data (raising ChampionUnloadable when it cannot load it); without it such a champion stays.
    ``greater_is_better`` is the direction of ``metric_name`` (False for a loss, a perplexity, an error rate).
    ``production`` is :func:`production_run`'s answer: when it is no, champion stays where it is.
    ``compare(model_uri, how)`` pairs this version with a scored champion example by example (None
    when it cannot); ``promote`` is the rule that reads the comparison (PROMOTE_RULES).
    """
    import mlflow
    from mlflow import MlflowClient

    tracking.configure()
    name = tracking.registered_name(params, project)
    client = MlflowClient()
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=python_model, artifacts=artifacts, code_paths=code_paths,
            pip_requirements=pip_requirements, signature=signature, input_example=input_example,
        )
    try:
        client.get_registered_model(name)
    except Exception:
        try:
            client.create_registered_model(name, description=f"{project} model of the NLP pipeline")
        except Exception as exc:  # a concurrent export may have created it
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
    experiment = os.environ.get("DVC_EXP_NAME")
    if experiment:
        version_tags = {**version_tags, "experiment": experiment}  # which experiment made this version
    tags = {**version_tags, "metric_name": metric_name, "metric_value": repr(float(metric_value)),
            "metric_greater_is_better": str(bool(greater_is_better)).lower(), "test_data_hash": test_data_hash}
    # The version is created already tagged incomplete, in one call, so an export killed before the
    # end leaves a version that says what it is; the tag turns complete once the aliases are decided.
    # model_id: a tracking server accepts a models:/m-... source only with the logged model's id.
    mv = client.create_model_version(name, info.model_uri, run_id=run_id, description=description,
                                     tags={**{k: str(v) for k, v in tags.items()}, EXPORT_STATUS: "incomplete"},
                                     model_id=info.model_id)
    move_alias(client, name, CANDIDATE, mv.version, _version(_alias(client, name, CANDIDATE)),
               "registered by export", by="export")

    with _registry_lock(name):
        _mark_abandoned_versions(client, name, mv.version)
        if production[0]:
            decision = _decide(client, name, int(mv.version), metric_name, float(metric_value), test_data_hash,
                               score_champion, unloadable_champion, greater_is_better, compare, promote)
        else:
            previous = _version(_alias(client, name, CHAMPION))
            decision = {"moved": False, "reason": production[1], "previous_champion": previous,
                        "compared_with": None, "champion_score": None, "champion_scored": "none"}
        for key, value in decision_tags(decision).items():
            client.set_model_version_tag(name, mv.version, key, value)
        client.set_model_version_tag(name, mv.version, EXPORT_STATUS, "complete")
        client.update_model_version(name, mv.version, description=description)  # if another export marked it
    champion = _alias(client, name, CHAMPION)
    result = {
        "registered_model": name, "version": int(mv.version), "model_uri": info.model_uri,
        "champion_moved": decision["moved"], "champion_version": _version(champion), "reason": decision["reason"],
        "previous_champion": decision["previous_champion"], "previous_champion_score": decision["champion_score"],
        "champion_scored": decision["champion_scored"], "comparison": decision.get("comparison"),
    }
    logger.info("registered %s version %s; champion %s (%s)", name, mv.version,
                "moved" if decision["moved"] else "kept", decision["reason"])
    return result


def production_run(root: Path | None = None) -> tuple[bool, str]:
    """Whether this export may move champion, and if not, why: a run inside `dvc exp run` (every
    sweep trial is one) is an experiment, and so is a run on a branch that PIPELINES_PRODUCTION_BRANCHES
    does not name (``*`` names every branch; a checkout with no branch, as a worker's may be, counts
    as production)."""
    import subprocess

    experiment = os.environ.get("DVC_EXP_NAME")
    if experiment:
        return False, (f"a run of the DVC experiment {experiment!r}: an experiment never moves champion; adopt "
                       "its version with `nlp-pipelines registry <project> promote <version>`")
    allowed = [b.strip() for b in settings.get("PIPELINES_PRODUCTION_BRANCHES").split(",") if b.strip()]
    try:
        found = subprocess.run(["git", "branch", "--show-current"], cwd=root or repo_root(),
                               capture_output=True, text=True, timeout=10)
        branch = found.stdout.strip() if found.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        branch = ""
    if branch and "*" not in allowed and branch not in allowed:
        return False, (f"a run on branch {branch!r}, which PIPELINES_PRODUCTION_BRANCHES ({', '.join(allowed)}) "
                       "does not name: its version is a candidate; promote it by hand or merge it into a "
                       "production branch")
    return True, ""


def decision_tags(decision: dict) -> dict[str, str]:
    """The decision as the version's ``decision.*`` tags (the MLflow UI lists them on the version)."""
    tags = {"decision": "moved" if decision["moved"] else "kept", "decision.reason": decision["reason"][:REASON_CHARS],
            "decision.champion_scored": decision["champion_scored"]}
    if decision["compared_with"] is not None:
        tags["decision.compared_with_version"] = str(decision["compared_with"])
    if decision["champion_score"] is not None:
        tags["decision.champion_score"] = repr(decision["champion_score"])
    comparison = decision.get("comparison")
    if comparison:
        tags.update({"decision.rule": decision["rule"], "decision.difference": repr(comparison["difference"]),
                     "decision.ci95": json.dumps(comparison["ci95"]), "decision.p_value": repr(comparison["p_value"]),
                     "decision.paired": comparison["verdict"]})
    return tags


def _decide(client, name: str, me: int, metric_name: str, value: float, test_hash: str,
            score_champion: Callable[[str], float] | None, unloadable: str, greater_is_better: bool = True,
            compare: Callable[[str, str], dict | None] | None = None, promote: str = "not_worse") -> dict:
    """Compare this version with the champion and move `champion` to it when the rule says so;
    then make sure the move holds against an export deciding at the same moment on another machine."""
    if unloadable not in UNLOADABLE_CHOICES:
        raise ValueError(f"unloadable_champion must be one of {UNLOADABLE_CHOICES}, not {unloadable!r}")
    if promote not in PROMOTE_RULES:
        raise ValueError(f"promote must be one of {', '.join(PROMOTE_RULES)}, not {promote!r}")
    scores: dict[int, Score] = {}

    def score_of(mv) -> Score:
        version = int(mv.version)
        if version not in scores:
            tags = mv.tags or {}
            if (tags.get("test_data_hash") == test_hash and tags.get("metric_name") == metric_name
                    and "metric_value" in tags):
                scores[version] = Score(float(tags["metric_value"]), "recorded")
            elif score_champion is None:
                scores[version] = Score(None, "unscored")
            else:
                try:
                    scores[version] = Score(float(score_champion(f"models:/{name}/{version}")), "rescored")
                except ChampionUnloadable as exc:
                    scores[version] = Score(None, "unloadable", str(exc))
            if compare is not None and scores[version].how in ("recorded", "rescored"):
                scores[version].comparison = compare(f"models:/{name}/{version}", scores[version].how)
        return scores[version]

    settle = settings.get("PIPELINES_REGISTRY_SETTLE_SECONDS") if tracking.is_server(tracking.tracking_uri()) else 0
    previous = champion = _alias(client, name, CHAMPION)
    moved, reason, score = False, "", Score(None, "none")
    for _ in range(MAX_ROUNDS):
        if champion is None:
            move, reason, score = True, "no champion yet", Score(None, "none")
        elif int(champion.version) == me:
            moved = True  # it holds: nothing took it since
            break
        else:
            score = score_of(champion)
            move, reason = _verdict(me, value, int(champion.version), score, metric_name, unloadable,
                                    greater_is_better, promote)
        if not move:
            moved = False
            break
        latest = _alias(client, name, CHAMPION)
        if _version(latest) != _version(champion):  # it moved while this export scored: compare again
            champion = latest
            continue
        move_alias(client, name, CHAMPION, me, _version(champion), reason, by="export")
        moved = True
        if not settle:
            break
        time.sleep(settle)
        champion = _alias(client, name, CHAMPION)
        if _version(champion) == me:
            break
        logger.info("another export moved champion of %s to version %s at the same moment; comparing with it",
                    name, _version(champion))
    else:
        logger.warning("champion of %s kept moving between exports for %d rounds; it stays at version %s",
                       name, MAX_ROUNDS, _version(_alias(client, name, CHAMPION)))
    compared = champion if champion is not None and int(champion.version) != me else previous
    return {"moved": moved, "reason": reason, "previous_champion": _version(previous),
            "compared_with": _version(compared) if compared is not None and int(compared.version) != me else None,
            "champion_score": score.value, "champion_scored": score.how, "comparison": score.comparison,
            "rule": promote}


def version_info(name: str, alias: str) -> dict | None:
    """A registered version by alias, as a plain dict, or None."""
    from mlflow import MlflowClient

    tracking.configure()
    try:
        mv = MlflowClient().get_model_version_by_alias(name, alias)
    except Exception:
        return None
    return {"name": name, "version": int(mv.version), "run_id": mv.run_id, "tags": dict(mv.tags or {}),
            "description": mv.description}


# --------------------------------------------------------------------------- by hand
def _model(client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException:
        raise TrackingError(f"no registered model {name!r} at {tracking.display_uri()}; run the project's "
                            "export first (dvc repro), or set MLFLOW_TRACKING_URI to the store that has it") from None


def history(params, project: str) -> dict:
    """Every version of the project's registered model with what it is, the periods it held each
    alias and the reason of each move, from the versions' tags and the recorded history."""
    from mlflow import MlflowClient

    tracking.configure()
    client = MlflowClient()
    name = tracking.registered_name(params, project)
    model = _model(client, name)
    moves = events(client, name)
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    rows = []
    for v in versions:
        tags = dict(v.tags or {})
        periods = {alias: [] for alias in ALIASES}
        for i, e in enumerate(moves):
            if e["version"] != int(v.version):
                continue
            until = next((later["time"] for later in moves[i + 1:] if later["alias"] == e["alias"]), None)
            periods.setdefault(e["alias"], []).append({"from": e["time"], "until": until, "reason": e["reason"],
                                                       "by": e["by"]})
        rows.append({
            "version": int(v.version), "variant": tags.get("variant"), "metric_name": tags.get("metric_name"),
            "metric_value": float(tags["metric_value"]) if "metric_value" in tags else None,
            "test_data_hash": tags.get("test_data_hash"), "status": tags.get(EXPORT_STATUS, "registered by hand"),
            "created": datetime.fromtimestamp(v.creation_timestamp / 1000, timezone.utc).isoformat(timespec="seconds"),
            "aliases": sorted(a for a, n in (model.aliases or {}).items() if int(n) == int(v.version)),
            "decision": tags.get("decision.reason"), "periods": periods,
        })
    return {"registered_model": name, "tracking_uri": tracking.display_uri(), "versions": rows, "events": moves}


def format_history(found: dict) -> str:
    lines = [f"{found['registered_model']} at {found['tracking_uri']}: {len(found['versions'])} version(s)"]
    for row in found["versions"]:
        metric = (f"{row['metric_name']} {row['metric_value']:.4f}" if row["metric_value"] is not None
                  else "no metric recorded")
        held = f"  [{', '.join(row['aliases'])}]" if row["aliases"] else ""
        test = (row["test_data_hash"] or "-")[:12]
        lines.append(f"version {row['version']}: {row['variant'] or '-'}, {metric}, test data {test}, "
                     f"{row['status']}, registered {row['created']}{held}")
        if row["decision"]:
            lines.append(f"    decision: {row['decision']}")
        for alias, spans in row["periods"].items():
            for span in spans:
                until = span["until"] or "now"
                lines.append(f"    {alias} {span['from']} to {until}, by {span['by']}: {span['reason']}")
    return "\n".join(lines)


def promote(params, project: str, version: int, reason: str, *, rollback: bool = False) -> dict:
    """Move `champion` to ``version`` by hand, recorded with the user's reason."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not reason.strip():
        raise TrackingError("give the reason for moving champion by hand (--reason TEXT); it is recorded in the "
                            "registry's history")
    tracking.configure()
    client = MlflowClient()
    name = tracking.registered_name(params, project)
    _model(client, name)
    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException:
        known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        raise ConfigError(f"{name} has no version {version}; its versions are "
                            f"{', '.join(map(str, known)) or 'none'} (python -m pipelines registry {project})") from None
    status = (mv.tags or {}).get(EXPORT_STATUS)
    if status in ("incomplete", "abandoned"):
        raise TrackingError(f"{name} version {version} is {status}: its export never finished its checks, so it "
                            "cannot be champion; re-run the export")
    with _registry_lock(name):
        current = _alias(client, name, CHAMPION)
        if _version(current) == int(version):
            return {"registered_model": name, "champion_version": int(version), "moved": False,
                    "reason": f"version {version} already holds champion"}
        what = "rollback" if rollback else "promoted by hand"
        move_alias(client, name, CHAMPION, version, _version(current), f"{what}: {reason.strip()}", by=_user())
    logger.info("champion of %s moved from version %s to %s by hand", name, _version(current), version)
    return {"registered_model": name, "champion_version": int(version), "previous_champion": _version(current),
            "moved": True, "reason": f"{what}: {reason.strip()}"}


def rollback(params, project: str, reason: str) -> dict:
    """Move `champion` back to the version that held it before the current one."""
    from mlflow import MlflowClient

    tracking.configure()
    client = MlflowClient()
    name = tracking.registered_name(params, project)
    _model(client, name)
    current = _version(_alias(client, name, CHAMPION))
    # The champions in turn, as a stack: each move pushes its version, each rollback pops one, so a
    # second rollback goes further back instead of undoing the first.
    held: list[int] = []
    for event in events(client, name):
        if event["alias"] != CHAMPION:
            continue
        if str(event.get("reason", "")).startswith("rollback:") and len(held) > 1 and held[-1] == event["previous"]:
            held.pop()
        else:
            held.append(event["version"])
    previous = held[-2] if len(held) > 1 and held[-1] == current else None
    if previous is None:
        raise TrackingError(f"{name}: the registry's history has no champion before version {current}; name the "
                            f"version to promote instead (python -m pipelines registry {project} promote VERSION)")
    return promote(params, project, previous, reason, rollback=True)
