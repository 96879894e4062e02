"""C2SP signed notes and tlog checkpoints (https://c2sp.org/signed-note, /tlog-checkpoint).

A checkpoint body is ``<origin>\\n<size>\\n<base64 root>\\n``; the signed note appends a blank
line and one ``— <key name> <base64(key hash || signature)>`` line per signature. Parsing is
strict and fails closed: a note whose signature by a known key does not verify is rejected
even if another signature does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from security.audit.merkle import HASH_SIZE, MAX_TREE_SIZE
from security.audit.signer import Signer, Verifier, key_hash
from security.errors import MedfedError

SIGNATURE_PREFIX = "\u2014 "  # em dash and a space
MAX_SIGNATURES = 100
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,19})$")


class NoteError(MedfedError):
    """A note or checkpoint that is malformed or whose signatures do not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "".join(f"{line}\n" for line in lines)


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise NoteError("note text must be non-empty lines each ending in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note text must not contain control characters")


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    _check_text(text)
    lines = []
    for signer in signers:
        signature = signer.sign(text.encode("utf-8"))
        blob = base64.b64encode(key_hash(signer) + signature).decode()
        lines.append(f"{SIGNATURE_PREFIX}{signer.name} {blob}\n")
    if not lines:
        raise NoteError("a signed note needs at least one signature")
    return f"{text}\n{''.join(lines)}"


def open_note(note: str, verifiers: Iterable[Verifier]) -> str:
    """The note's text, if at least one known key signed it and no known key's signature
    fails; signatures by unknown keys are ignored, as the format requires."""
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("not a signed note: no blank line before the signatures")
    text, signature_block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    if not signature_block.endswith("\n"):
        raise NoteError("signature lines must end with a newline")
    known = {(v.name, key_hash(v)): v for v in verifiers}
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    verified = 0
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line!r}")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise NoteError(f"signature by {name!r} is not base64") from None
        if not name or " " in blob or len(raw) < 5:
            raise NoteError(f"malformed signature line {line!r}")
        verifier = known.get((name, raw[:4]))
        if verifier is None:
            continue
        if not verifier.verify(text.encode("utf-8"), raw[4:]):
            raise NoteError(
                f"the signature by {name} does not verify: the note was altered "
                f"or signed by another key"
            )
        verified += 1
    if not verified:
        raise NoteError("no signature by a trusted key")
    return text


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the text of a note, already opened)."""
    _check_text(text)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin, a size and a root hash line")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError("checkpoint origin is empty")
    if not _DECIMAL.match(size_text):
        raise NoteError(f"checkpoint size {size_text[:24]!r} is not a decimal number")
    # C2SP tlog-checkpoint: the size is a uint64. Longer text is refused before int() runs.
    if len(size_text) > len(str(MAX_TREE_SIZE)) or int(size_text) > MAX_TREE_SIZE:
        raise NoteError("checkpoint size is larger than 2^64 - 1")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        root = b""
    if len(root) != HASH_SIZE:
        raise NoteError("checkpoint root is not a base64 SHA-256 hash")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    return sign_note(checkpoint.body(), [signer])


def open_checkpoint(
    note: str, verifiers: Iterable[Verifier], origin: str | None = None
) -> Checkpoint:
    """A checkpoint from a signed note, after checking signature and (optionally) origin."""
    checkpoint = parse_checkpoint(open_note(note, verifiers))
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
