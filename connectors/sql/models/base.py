"""Column helpers shared by the source models."""

from __future__ import annotations

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import mapped_column

SOURCE_KINDS = ("bureau", "hospital", "pharmacy", "platform", "directory")


def encrypted(nullable: bool = False):
    """A column holding one field ciphertext."""
    return mapped_column(LargeBinary, nullable=nullable)


def blind_index(nullable: bool = False):
    return mapped_column(String(32), index=True, nullable=nullable)


def person_ref():
    return mapped_column(String(32), index=True, nullable=False)


def region():
    return mapped_column(String(6), nullable=False)


def code(length: int = 12, nullable: bool = False, index: bool = False):
    return mapped_column(String(length), nullable=nullable, index=index)
