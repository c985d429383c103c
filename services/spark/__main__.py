"""`spark-submit services/spark/__main__.py --snapshot DIR --input X --output Y` (or
`python -m services.spark ...` for local mode): filter Parquet candidates with a snapshot."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyspark.sql import SparkSession

from ledger.errors import LedgerError
from services.spark.filter import run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, run the filter on the active (or a new) Spark session."""
    parser = argparse.ArgumentParser(prog="consent-ledger-spark", description=__doc__)
    parser.add_argument("--snapshot", required=True, help="a signed snapshot directory")
    parser.add_argument("--input", required=True, help="candidates: Parquet with subject, content")
    parser.add_argument("--output", required=True, help="where to write the allowed rows")
    args = parser.parse_args(argv)
    spark = SparkSession.builder.appName("consent-ledger-filter").getOrCreate()
    try:
        run(spark, args.snapshot, args.input, args.output)
    except LedgerError as error:
        print(f"consent-ledger-spark: error: {error.detail}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(f"allowed rows written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
