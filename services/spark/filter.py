"""The PySpark filter: a verified snapshot, broadcast-joined to a candidates DataFrame.

Same answers as `projections.snapshots.filter` (and so as per-pair `check`): the row of
the pair's content if the snapshot has one, else the subject's catalogue row, else
denied. The snapshot is read and verified on the driver, then shipped to every executor
once as two broadcast tables (content rows, catalogue rows): candidates are never
shuffled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from projections.snapshots.filter import CandidateError
from projections.snapshots.verify import load_table, open_snapshot

_CONTENT_ALLOWED = "__consent_content_allowed"
_SUBJECT_ALLOWED = "__consent_subject_allowed"
_SUBJECT = "__consent_subject"
_CONTENT = "__consent_content"


def filter_dataframe(
    candidates: DataFrame, snapshot: Path | str, *, public_key: bytes | None = None
) -> DataFrame:
    """Return the candidates the snapshot in `snapshot` allows, every column carried through.

    Raises SnapshotError if the snapshot does not verify (signature, digests, purpose)
    and CandidateError if `subject` or `content` is missing.
    """
    missing = [c for c in ("subject", "content") if c not in candidates.columns]
    if missing:
        raise CandidateError(
            f"candidates lack column(s) {', '.join(missing)}: want subject and content"
        )
    directory = Path(snapshot)
    open_snapshot(directory, public_key=public_key)
    table = load_table(directory)
    spark = candidates.sparkSession
    content_rows = table.filter(pc.is_valid(table["content"])).select(
        ["subject", "content", "allowed"]
    )
    catalogue_rows = table.filter(pc.is_null(table["content"])).select(["subject", "allowed"])
    specific = _frame(spark, content_rows).toDF(_SUBJECT, _CONTENT, _CONTENT_ALLOWED)
    catalogue = _frame(spark, catalogue_rows).toDF(_SUBJECT, _SUBJECT_ALLOWED)
    joined = candidates.join(
        F.broadcast(specific),
        (candidates["subject"] == specific[_SUBJECT])
        & (candidates["content"] == specific[_CONTENT]),
        "left",
    ).drop(_SUBJECT, _CONTENT)
    joined = joined.join(
        F.broadcast(catalogue), joined["subject"] == catalogue[_SUBJECT], "left"
    ).drop(_SUBJECT)
    allowed = F.coalesce(F.col(_CONTENT_ALLOWED), F.col(_SUBJECT_ALLOWED), F.lit(False))
    return joined.filter(allowed).select(*candidates.columns)


def _frame(spark: SparkSession, table: Any) -> DataFrame:
    return spark.createDataFrame(table)


def run(spark: SparkSession, snapshot: str, source: str, target: str) -> None:
    """Filter the Parquet candidates at `source` into `target` (which must not exist)."""
    allowed = filter_dataframe(spark.read.parquet(source), snapshot)
    allowed.write.mode("errorifexists").parquet(target)
