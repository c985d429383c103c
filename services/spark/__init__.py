"""Filter a data lake's candidate set against a consent snapshot with PySpark.

`filter_dataframe(df, snapshot_dir)` verifies the snapshot on the driver and
broadcast-joins its rows to a DataFrame of candidates (columns `subject`, `content`,
any others carried through); `python -m services.spark` (or `spark-submit
services/spark/__main__.py`) runs it from Parquet to Parquet. See docs/training-lineage.md.
"""

from services.spark.filter import filter_dataframe

__all__ = ["filter_dataframe"]
