"""The permissions read models: SQL tables a projector keeps, the reader asks.

- `schema`: table names, DDL, and the shadow copies a rebuild fills;
- `bulk`: the statements that write the tables, once for both dialects;
- `writer`: ledger entries -> rows, the projection's one write path;
- `pair_tips`: the one-statement batch read behind `filter`;
- `view`: `PermissionsView`, the tables and their tracking record (apply, reads,
  shadow rebuild and swap), with `sqlite` and `postgres` dialect subclasses;
- `model`: `ReadModel`, which opens the view on first use.
"""

from projections.read_models.model import ReadModel
from projections.read_models.pair_tips import PairTips
from projections.read_models.schema import TABLE_NAMES
from projections.read_models.view import PermissionsView, ViewConflictError

__all__ = ["TABLE_NAMES", "PairTips", "PermissionsView", "ReadModel", "ViewConflictError"]
