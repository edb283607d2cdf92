"""What the two spreadsheet imports share: one meaning of a row's outcome, Norwegian values and headers, and the
uploaded file kept between the preview and the import.

Both imports ("Importer kunder", "Importer personer"), on the page, in a background job and from the command line,
go the same way: every row is classified as **created** (on the preview: will be created), **duplicate** (it is
already there, or an earlier row of the file is the same: skipped, never an error) or **refused** (with the reason).
The preview runs the very same import in a savepoint that is rolled back, so it says what the import will do; the
import then runs it again for real (the data may have changed in between) and says when the counts differ. Importing
a corrected file again therefore just works: the rows created the first time are duplicates and are skipped.

Values are accepted in Norwegian beside the codes (``ja``/``nei``, ``bruker``, ``daglig leder``, …, any case), and
each column's header in Norwegian (as in the downloadable templates) or by its code name.
"""

from __future__ import annotations

import enum
import json
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _

from services.errors import DomainError

UPLOAD_LIFETIME = 24 * 3600  # seconds an uploaded file waits for its "Importer N rader"


class RowStatus(enum.StrEnum):
    CREATED = "created"  # on a preview: will be created
    DUPLICATE = "duplicate"  # already there (or earlier in the file): skipped
    REFUSED = "refused"


@dataclass
class RowResult:
    row: int  # the spreadsheet's row number (the header is row 1)
    status: RowStatus
    message: str
    target_id: int | None = None  # the created client, or the client a person was added to
    invited: bool = False

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"row": self.row, "status": str(self.status), "message": self.message}
        if self.invited:
            data["invited"] = True
        return data


@dataclass(frozen=True)
class ImportCounts:
    created: int = 0
    duplicate: int = 0
    refused: int = 0
    invited: int = 0

    @classmethod
    def of(cls, results: Sequence[RowResult]) -> ImportCounts:
        counts = Counter(str(result.status) for result in results)
        return cls(
            created=counts["created"],
            duplicate=counts["duplicate"],
            refused=counts["refused"],
            invited=sum(1 for result in results if result.invited),
        )

    def as_list(self) -> list[int]:
        return [self.created, self.duplicate, self.refused]


def changed_since_preview(previewed: ImportCounts, counts: ImportCounts) -> str | None:
    """Why the import did not do what its preview said (the data changed in between), or None when it did."""
    if previewed.as_list() == counts.as_list():
        return None
    return str(
        _(
            "The data changed after the preview: it showed %(p_created)s to import, %(p_duplicate)s duplicate(s) "
            "and %(p_refused)s refused; the import found %(created)s, %(duplicate)s and %(refused)s.",
            p_created=previewed.created,
            p_duplicate=previewed.duplicate,
            p_refused=previewed.refused,
            created=counts.created,
            duplicate=counts.duplicate,
            refused=counts.refused,
        )
    )


# --- Norwegian values and headers ------------------------------------------------------------------------------------


def _plain(value: str) -> str:
    """Lower case, ``_`` as a space, runs of spaces as one: how values and headers compare."""
    return re.sub(r"\s+", " ", value.replace("_", " ").strip().lower())


YES = frozenset({"ja", "j", "yes", "y", "true", "sann", "1", "x"})
NO = frozenset({"", "nei", "n", "no", "false", "usann", "0"})


def yes_no(value: str | None) -> bool | None:
    """``ja``/``nei`` (and yes/no, true/false, 1/0; an empty cell is no), any case; None for anything else."""
    plain = _plain(value or "")
    if plain in YES:
        return True
    if plain in NO:
        return False
    return None


def choose(value: str | None, choices: dict[str, Any]) -> Any:
    """The choice a cell names, by its code or one of its Norwegian names (``choices`` keys), any case; else None."""
    plain = _plain(value or "")
    table = {_plain(key): choice for key, choice in choices.items()}
    return table.get(plain)


def column_labels(columns: dict[str, Sequence[str]]) -> dict[str, str]:
    """Each column's name in a row's messages: its header in the template (Norwegian)."""
    return {code: names[0] for code, names in columns.items()}


def problems_text(problems: Sequence[object]) -> str:
    """A row's problems as one sentence-like text: "type: … ; inviter: …."."""
    return "; ".join(str(problem).rstrip(".") for problem in problems) + "."


def header_aliases(columns: dict[str, Sequence[str]]) -> dict[str, str]:
    """A lookup from every accepted header (code name and Norwegian names, compared plainly) to its code name."""
    aliases = {}
    for code, names in columns.items():
        aliases[_plain(code)] = code
        for name in names:
            aliases[_plain(name)] = code
    return aliases


def plain_header(value: str) -> str:
    return _plain(value)


# --- the uploaded file between preview and import --------------------------------------------------------------------


class UploadGone(DomainError):
    """The previewed file is no longer kept (imported already, too old, or another user's)."""


def _upload_dir(folder: str) -> Path:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(folder: str, *, owner: dict[str, Any], filename: str, rows: list[dict[str, str]]) -> str:
    """Keep the rows of an uploaded file on the server for its import; the key to find them again.

    ``owner`` (user, bureau, which import, which client) is stored with them and must match when they are read.
    Files older than a day are deleted on the way.
    """
    directory = _upload_dir(folder)
    forget_old_uploads(directory)
    key = secrets.token_urlsafe(24)
    path = directory / f"{key}.json"
    temporary = directory / f".{key}.tmp"
    temporary.write_text(json.dumps({"owner": owner, "filename": filename, "rows": rows}), encoding="utf-8")
    os.replace(temporary, path)
    return key


def load_upload(folder: str, key: str | None, *, owner: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    """The file name and rows kept under ``key`` for this owner, or UploadGone."""
    gone = UploadGone(_("The uploaded file is no longer waiting to be imported. Upload it again."))
    if not key or not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", key):
        raise gone
    path = Path(folder) / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise gone from None
    if data.get("owner") != owner or time.time() - path.stat().st_mtime > UPLOAD_LIFETIME:
        raise gone
    return data.get("filename") or "", data.get("rows") or []


def discard_upload(folder: str, key: str) -> None:
    """Forget an imported file (a repeat of its import finds the first one's result instead)."""
    if re.fullmatch(r"[A-Za-z0-9_-]{20,64}", key or ""):
        (Path(folder) / f"{key}.json").unlink(missing_ok=True)


def forget_old_uploads(directory: Path) -> None:
    cutoff = time.time() - UPLOAD_LIFETIME
    for path in directory.glob("*.json"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        except OSError:
            continue
