"""The one settings object: every environment variable the ledger reads, in one place.

`Settings.from_env()` reads `LEDGER_*` and `KAFKA_BOOTSTRAP_SERVERS` with pydantic-settings,
typed and validated: a bad value raises `SettingsError`, one line naming the variable,
which the CLI prints and exits 2 on. `Settings(...)` built in code takes its arguments
alone (no environment), so a test's settings never depend on the shell that ran it.
Flags of the CLI override these; nothing else reads `os.environ`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ledger.errors import InvalidInputError

DEFAULT_DATABASE_URL: Final = "sqlite:///consent-ledger.db"
ENV_PREFIX: Final = "LEDGER_"
KAFKA_ENV: Final = "KAFKA_BOOTSTRAP_SERVERS"
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")


class SettingsError(InvalidInputError):
    """An environment variable holds a value the ledger cannot use."""

    title = "Invalid setting"


class Settings(BaseSettings):
    """Configuration of one ledger deployment (frozen; `with_overrides` makes a copy)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # `LEDGER_X=` means the default, as it always did
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        validate_default=False,
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL, description="`sqlite:///path.db` or `postgresql://…`"
    )
    data_dir: Path | None = Field(
        None, description="keys; default: beside the SQLite file, or ./ledger-data"
    )
    kafka_bootstrap_servers: str | None = Field(
        None,
        validation_alias=AliasChoices(KAFKA_ENV, "kafka_bootstrap_servers"),
        description="host:port[,host:port…] of the Kafka brokers",
    )
    topic_prefix: str = ""
    log_format: Literal["json", "console", "auto"] = "auto"  # auto: console on a terminal
    log_level: str = "info"
    log_id: str = Field("consent-ledger", min_length=1)
    purposes_file: Path | None = None
    checkpoint_every_events: int = Field(1000, ge=1)
    checkpoint_every_seconds: float = Field(60.0, gt=0)
    projection_fault: str | None = None  # tests only: crash `project` at POINT[:N]
    api_group_commit: bool = True  # HTTP writes share transactions (off: one per write)
    api_commit_max_batch: int = Field(512, ge=1)  # most writes one transaction appends
    tdm_policy_url: str | None = None  # TDMRep `tdm-policy` served with AI signals

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"want one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Take the constructor's arguments alone; `from_env` adds the environment."""
        return (init_settings,)

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment.

        Raises SettingsError naming the first variable whose value does not parse.
        """
        try:
            return _FromEnvironment()
        except ValidationError as error:
            raise SettingsError(_one_line(error)) from None

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with the given fields replaced where the value is not None."""
        given = {k: v for k, v in changes.items() if v is not None}
        try:
            return type(self).model_validate({**self.model_dump(), **given})
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


class _FromEnvironment(Settings):
    """Settings that also read the process environment (what `Settings.from_env` returns)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Take the constructor's arguments, then the environment."""
        return (init_settings, env_settings)


def env_name(field: str) -> str:
    """Return the environment variable a settings field is read from."""
    return KAFKA_ENV if field == "kafka_bootstrap_servers" else f"{ENV_PREFIX}{field.upper()}"


def _one_line(error: ValidationError) -> str:
    """Return the first problem of a settings validation as `VARIABLE=value: message`."""
    first: dict[str, Any] = dict(error.errors(include_url=False)[0])
    location = first.get("loc") or ("settings",)
    field = str(location[0])
    name = env_name(field) if field in Settings.model_fields else field
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{name}={first.get('input')!r}: {message}"
