"""The PySpark entry point answers as the CLI's snapshot filter, in Spark local mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from ledger.snapshot import DATA_FILE, SnapshotError, SnapshotQuestion
from projections.snapshots.filter import CandidateError, SnapshotFilter, filter_parquet
from projections.snapshots.verify import load_table
from projections.snapshots.writer import create_snapshot
from services.bootstrap import Services, bootstrap
from services.settings import Settings

pytestmark = pytest.mark.spark


@pytest.fixture
def wired(sqlite_url: str, tmp_path: Path) -> Iterator[Services]:
    services = bootstrap(Settings(database_url=sqlite_url, data_dir=tmp_path / "data"))
    yield services
    services.close()


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = (
        SparkSession.builder.master("local[1]")
        .appName("consent-ledger-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.adaptive.enabled", "false")
        # a short-lived test JVM: the C1 compiler only and a serial GC start fastest
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_filter_keeps_the_rows_the_cli_filter_keeps(
    wired: Services, spark: SparkSession, tmp_path: Path
) -> None:
    from services.spark import filter_dataframe
    from services.spark.filter import run

    ledger = wired.ledger
    ledger.publish_terms(
        "v1", ledger.clock.now(), [{"purpose": "ai-training", "default": "granted"}]
    )
    for n in range(30):
        ledger.accept_terms(f"s{n}", "v1")
        if n % 3 == 0:
            ledger.revoke(f"s{n}", "ai-training", content_ids=[f"t{n}"])
        if n % 5 == 0:
            ledger.revoke(f"s{n}", "ai-training")
            ledger.grant(f"s{n}", "ai-training", content_ids=[f"t{n + 1}"])
    asked = ledger.question("-", "ai-training")
    snap = tmp_path / "snap"
    create_snapshot(
        ledger,
        wired.log,
        snap,
        SnapshotQuestion(asked.purpose, asked.party, asked.aspect, asked.at, asked.known_at),
    )
    candidates = pa.table(
        {
            "subject": [f"s{n % 35}" for n in range(400)],
            "content": [f"t{n % 33}" for n in range(400)],
            "row": list(range(400)),
        }
    )
    pq.write_table(candidates, tmp_path / "cand.parquet")
    filter_parquet(
        SnapshotFilter(load_table(snap)), tmp_path / "cand.parquet", tmp_path / "cli.parquet"
    )
    expected = pq.read_table(tmp_path / "cli.parquet").to_pylist()
    assert 0 < len(expected) < 400

    run(spark, str(snap), str(tmp_path / "cand.parquet"), str(tmp_path / "spark"))
    got = pq.read_table(tmp_path / "spark").to_pylist()
    assert sorted(got, key=lambda r: r["row"]) == expected

    frame = spark.createDataFrame(candidates.select(["subject", "row"]))
    with pytest.raises(CandidateError, match="lack column"):
        filter_dataframe(frame, snap)
    data = bytearray((snap / DATA_FILE).read_bytes())
    data[-20] ^= 0xFF
    (snap / DATA_FILE).write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="altered"):
        filter_dataframe(spark.read.parquet(str(tmp_path / "cand.parquet")), snap)
