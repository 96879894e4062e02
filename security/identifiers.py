"""One normalisation for every personal identifier: validation, blind indexes and lookups
all see the same string, so one person never gets a second index or a second personId.

* **ID numbers** (GB 11643): Unicode NFKC (full-width ``３３０…`` becomes ``330…``),
  whitespace removed, ``x`` upper-cased; then only ASCII digits count. Python's ``\\d``
  matches any Unicode digit (``٣``, ``३``), which is why the patterns here are ASCII-only.
* **Phones**: NFKC, separators (spaces, ``-``, ``.``, brackets) removed, then E.164 with the
  Chinese country code: ``+86`` followed by the national number (an 11-digit mobile, or a
  fixed line without its trunk ``0``). ``0086…``, ``86…`` with 13 digits and ``+86 …`` all
  give the same string. Numbers of other countries keep their ``+`` form.
"""

from __future__ import annotations

import re
import unicodedata

from security.errors import MedfedError

ID_NUMBER_RE = re.compile(r"^[0-9]{17}[0-9X]$", re.ASCII)
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$", re.ASCII)
_MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$", re.ASCII)
_FIXED_RE = re.compile(r"^0[1-9][0-9]{8,10}$", re.ASCII)  # trunk 0, area code, number
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")


class IdentifierError(MedfedError, ValueError):
    """Not a valid identifier of its kind; the message never repeats the value."""


def normalise_id_number(value: str) -> str:
    """The canonical form of an ID number (not validated: see ``codes.validate_id_number``)."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def normalise_phone(value: str) -> str:
    """The E.164 form of a phone number; :class:`IdentifierError` if it is not one."""
    text = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+") and len(text) == 13 and text.startswith("86"):
        text = "+" + text
    if not text.startswith("+"):
        if _MOBILE_RE.match(text):
            text = "+86" + text
        elif _FIXED_RE.match(text):
            text = "+86" + text[1:]
    if text.startswith("+86") and text[3:4] == "0":
        text = "+86" + text[4:]  # a trunk 0 written after the country code
    if not E164_RE.match(text):
        raise IdentifierError("not a phone number (11-digit mobile, or +country code)")
    return text
