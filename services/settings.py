"""The one settings object: every environment variable the ledger reads, in one place.

`Settings.from_env()` reads `LEDGER_*` and `KAFKA_BOOTSTRAP_SERVERS` with pydantic-settings,
typed and validated: a bad value raises `SettingsError`, one line naming the variable,
which the CLI prints and exits 2 on. `Settings(...)` built in code takes its arguments
alone (no environment), so a test's settings never depend on the shell that ran it.
Flags of the CLI override these; nothing else reads `os.environ`.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_type_hints

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, create_model
from pydantic.dataclasses import dataclass
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.errors import InvalidInputError

DEFAULT_DATABASE_URL: Final = "sqlite:///consent-ledger.db"
ENV_PREFIX: Final = "LEDGER_"
KAFKA_ENV: Final = "KAFKA_BOOTSTRAP_SERVERS"
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")


class SettingsError(InvalidInputError):
    """An environment variable holds a value the ledger cannot use."""

    title = "Invalid setting"


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise ValueError(f"want one of {', '.join(LOG_LEVELS)}")
    return value.lower()


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Settings:
    """Configuration of one ledger deployment, validated when it is made.

    Each field `name` is read from `LEDGER_<NAME>` (`kafka_bootstrap_servers` from
    `KAFKA_BOOTSTRAP_SERVERS`) by `from_env`; an empty variable means the default.
    """

    database_url: str = DEFAULT_DATABASE_URL  # sqlite:///path.db or postgresql://…
    data_dir: Path | None = None  # keys; default: beside the SQLite file, or ./ledger-data
    kafka_bootstrap_servers: str | None = None  # host:port[,host:port…]
    topic_prefix: str = ""
    log_format: Literal["json", "console", "auto"] = "auto"  # auto: console on a terminal
    log_level: Annotated[str, AfterValidator(_log_level)] = "info"
    log_id: Annotated[str, Field(min_length=1)] = "consent-ledger"
    purposes_file: Path | None = None
    checkpoint_every_events: Annotated[int, Field(ge=1)] = 1000
    checkpoint_every_seconds: Annotated[float, Field(gt=0)] = 60.0
    api_group_commit: bool = True  # HTTP writes share transactions (off: one per write)
    api_commit_max_batch: Annotated[int, Field(ge=1)] = 512  # most writes one commit appends
    check_index: bool = True  # a running projector keeps current checks in memory
    tdm_policy_url: str | None = None  # TDMRep `tdm-policy` served with AI signals
    content_url_template: str | None = None  # e.g. https://music.example/{subject}/{content}
    rate_limit_per_second: Annotated[float, Field(ge=0)] = 1000.0  # per key and process; 0: off
    rate_limit_burst: Annotated[float, Field(ge=0)] = 2000.0
    idempotency_lease_seconds: Annotated[float, Field(gt=0)] = (
        60.0  # a pending key is recovered after
    )

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment (pydantic-settings).

        Raises SettingsError naming the first variable whose value does not parse.
        """
        try:
            values = _environment_model()().model_dump()
        except ValidationError as error:
            raise SettingsError(_one_line(error)) from None
        return cls(**values)

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with the given fields replaced where the value is not None.

        Raises SettingsError when a replacement is not a valid value of its field.
        """
        given = {k: v for k, v in changes.items() if v is not None}
        try:
            return dataclasses.replace(self, **given)
        except ValidationError as error:
            raise SettingsError(_one_line(error)) from None

    def resolved_data_dir(self) -> Path:
        """Return the folder for keys: LEDGER_DATA_DIR, or beside the SQLite database."""
        if self.data_dir is not None:
            return self.data_dir
        if self.database_url.startswith("sqlite:///"):
            db = Path(self.database_url[len("sqlite:///") :])
            return db.parent / f"{db.stem}-data"
        return Path("ledger-data")


class _Environment(BaseSettings):
    """The environment variables of `Settings`: its fields, read with the LEDGER_ prefix."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # `LEDGER_X=` means the default, as it always did
        extra="ignore",
        populate_by_name=True,
    )


@cache
def _environment_model() -> type[BaseSettings]:
    """Return the pydantic-settings model of `Settings`' fields (declared once, above)."""
    hints = get_type_hints(Settings, include_extras=True)
    fields: dict[str, Any] = {
        f.name: (hints[f.name], f.default) for f in dataclasses.fields(Settings)
    }
    fields["kafka_bootstrap_servers"] = (
        hints["kafka_bootstrap_servers"],
        Field(None, validation_alias=KAFKA_ENV),
    )
    model: type[BaseSettings] = create_model("Environment", __base__=_Environment, **fields)
    return model


def env_name(field: str) -> str:
    """Return the environment variable a settings field is read from."""
    return KAFKA_ENV if field == "kafka_bootstrap_servers" else f"{ENV_PREFIX}{field.upper()}"


def _one_line(error: ValidationError) -> str:
    """Return the first problem of a settings validation as `VARIABLE='value': message`."""
    first = error.errors(include_url=False)[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    known = {f.name for f in dataclasses.fields(Settings)}
    name = env_name(field) if field in known else field
    message = first["msg"].removeprefix("Value error, ")
    return f"{name}={first['input']!r}: {message}"
