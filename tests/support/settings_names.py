"""The environment variables the settings object reads, from its own naming rule."""

from __future__ import annotations

import dataclasses

from services.settings import Settings, env_name


def settings_variables() -> set[str]:
    """Return every environment variable `Settings.from_env` reads (one per field)."""
    return {env_name(field.name) for field in dataclasses.fields(Settings)}
