"""Records that are torn anyway: written whole (jobs/engine/atomic.py), a record can still be cut short by a copy
that stopped half-way or be edited by hand. A resume never trusts one: it names it in one line, moves it aside (it
is never deleted: it may be all that is left of a run) and redoes what it recorded. A report leaves it out."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.engine.train.progress import say


def why_torn(path: Path, read: Callable[[Path], Any]) -> str | None:
    """Why PATH is not a whole record that READ (which raises ValueError/TypeError on a record of the wrong kind)
    accepts; None when it is whole. A missing PATH is not torn: None."""
    path = Path(path)
    try:
        read(path)
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return "not text"
    except json.JSONDecodeError as exc:
        return "empty" if not exc.doc.strip() else f"not whole JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"not the right type: {str(exc)[:120]}"
    return None


def set_aside(path: Path, why: str) -> Path:
    """Move the torn record PATH to PATH.torn-<n> (the first n free) and say so in one line; returns where it went."""
    path = Path(path)
    n = 1
    while (aside := path.with_name(f"{path.name}.torn-{n}")).exists():
        n += 1
    os.replace(path, aside)
    say(f"{path}: torn record ({why}), moved aside to {aside}; redoing it")
    return aside


def left_out(path: Path, why: str) -> None:
    """The line a report says for a torn record it leaves out: a report only reads a sweep, it moves nothing."""
    say(f"{path}: torn record ({why}), left out of this report; `python -m jobs.sweep --resume` of the sweep "
        "redoes it")
