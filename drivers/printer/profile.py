"""Printer profiles and the settings that pin what goes on the wire.

Capabilities come from python-escpos's printer database (escpos-printer-db) as data, so a new
model is a config change, not code.  The code page is *pinned* from config instead of letting
python-escpos guess one per character: cheap printers disagree on the ESC t slot number of
CP866, and a wrong guess garbles every Cyrillic receipt.
"""

from __future__ import annotations

import codecs
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PaperWidth = Literal[58, 80]
FontName = Literal["a", "b"]

# Columns of the two ROM fonts on the usual 384-dot (58 mm) and 576-dot (80 mm) heads.
STANDARD_COLUMNS: Mapping[tuple[int, str], int] = {
    (58, "a"): 32,
    (58, "b"): 42,
    (80, "a"): 48,
    (80, "b"): 64,
}


class ProfileError(ValueError):
    """A profile or code page named in config is unknown or unusable; the message says which."""


def _database() -> dict[str, Any]:
    """python-escpos's printer database, parsed afresh (the caller keeps what it needs).

    Read here rather than through `escpos.capabilities`: that module parses the whole
    file with PyYAML on import (a fresh parse in every process: its pickle cache lives
    in a new temporary directory each time) and keeps all of it, ~5.5 MB of RSS for the
    one profile a register uses.  The file is JSON, so the standard parser reads it in a
    fraction of the time; a replacement named by ESCPOS_CAPABILITIES_FILE, as
    python-escpos allows, may be YAML and goes through PyYAML as there.
    """
    custom = os.environ.get("ESCPOS_CAPABILITIES_FILE")
    raw = (
        Path(custom).read_bytes()
        if custom
        else resources.files("escpos").joinpath("capabilities.json").read_bytes()
    )
    try:
        data = json.loads(raw)
    except ValueError:
        import yaml  # type: ignore[import-untyped]  # lazy: only for a YAML database (env var)

        data = yaml.safe_load(raw)
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        raise ProfileError(f"the printer database {custom or 'of python-escpos'} has no profiles")
    return data


def profile_names() -> list[str]:
    return sorted(_database()["profiles"])


@functools.lru_cache(maxsize=16)
def _named(name: str) -> PrinterProfile:
    """One profile, kept; the rest of the database is dropped once it is read."""
    profiles = _database()["profiles"]
    if name not in profiles:
        raise ProfileError(
            f"unknown printer profile {name!r}; known profiles: {', '.join(sorted(profiles))}"
        )
    return PrinterProfile.from_data(name, profiles[name])


@dataclass(frozen=True)
class PrinterProfile:
    """What one printer model can do, read from the capabilities database."""

    name: str
    vendor: str
    media_width_mm: float | None
    font_columns: Mapping[int, int]
    code_pages: Mapping[str, tuple[int, ...]]  # code page name -> ESC t slots, lowest first
    features: frozenset[str]

    @classmethod
    def named(cls, name: str) -> PrinterProfile:
        return _named(name)

    @classmethod
    def from_data(cls, name: str, data: Mapping[str, Any]) -> PrinterProfile:
        width = data.get("media", {}).get("width", {}).get("mm")
        slots: dict[str, list[int]] = {}
        for slot, page in data.get("codePages", {}).items():
            slots.setdefault(str(page).upper(), []).append(int(slot))
        return cls(
            name=name,
            vendor=str(data.get("vendor", "")),
            media_width_mm=float(width) if isinstance(width, int | float) else None,
            font_columns={
                int(font): int(spec["columns"]) for font, spec in data.get("fonts", {}).items()
            },
            code_pages={page: tuple(sorted(nums)) for page, nums in slots.items()},
            features=frozenset(k for k, v in data.get("features", {}).items() if v),
        )

    def supports(self, feature: str) -> bool:
        return feature in self.features

    def slot_for(self, code_page: str) -> int | None:
        found = self.code_pages.get(code_page.upper())
        return found[0] if found else None

    def paper_class(self) -> int | None:
        """58 or 80 when the database names the paper, else None (many entries say Unknown)."""
        if self.media_width_mm is None:
            return None
        return 58 if self.media_width_mm < 65 else 80


class PrinterConfig(BaseModel):
    """One printer's settings as they appear in posbridge's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = "default"
    paper_width_mm: PaperWidth = 80
    font: FontName = "a"
    code_page: str = "CP866"
    code_page_slot: int | None = Field(default=None, ge=0, le=255)
    columns: int | None = Field(default=None, ge=8, le=128)

    @field_validator("code_page")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"code page {value!r} has no Python codec (try CP866)") from None
        return value.upper()


@dataclass(frozen=True)
class RenderTarget:
    """Everything a document needs to become bytes for one printer."""

    profile: PrinterProfile
    columns: int
    font: FontName
    code_page: str
    code_page_slot: int

    @property
    def codec(self) -> str:
        return self.code_page.lower()

    @classmethod
    def from_config(cls, config: PrinterConfig) -> RenderTarget:
        profile = PrinterProfile.named(config.profile)
        slot = config.code_page_slot
        if slot is None:
            slot = profile.slot_for(config.code_page)
        if slot is None:
            raise ProfileError(
                f"profile {profile.name!r} lists no ESC t slot for {config.code_page}; "
                "set code_page_slot in the printer config"
            )
        return cls(
            profile=profile,
            columns=columns_for(config, profile),
            font=config.font,
            code_page=config.code_page,
            code_page_slot=slot,
        )


def columns_for(config: PrinterConfig, profile: PrinterProfile) -> int:
    """Explicit columns; else the profile's own count for this paper; else 32/42/48/64."""
    if config.columns is not None:
        return config.columns
    font_index = 0 if config.font == "a" else 1
    if profile.paper_class() == config.paper_width_mm and font_index in profile.font_columns:
        columns = profile.font_columns[font_index]
        if columns >= 16:  # some entries store a dot width here instead of columns
            return columns
    return STANDARD_COLUMNS[(config.paper_width_mm, config.font)]
