"""JSONL input and output that never destroys data and never drops a line silently.

Reading (:func:`read_jsonl`): the file is opened at once (an unreadable file is an error
before any output exists); each line is decoded on its own, so an invalid UTF-8 byte or
bad JSON on one line is a :class:`~copilot.errors.Problem` ``PATH: line N: ...`` and the
other lines are still read.

Writing (:func:`atomic_output`): to a temporary file beside the output, renamed over it
only when the run finished, so a previous output survives any failure (what was written
before an interruption is kept as ``OUTPUT.partial``). :func:`refuse_overwriting_inputs`
refuses an output that is an input: the same path, a hard link or a symbolic link to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any, TextIO

from copilot.errors import CopilotError, Problem

_BOM = b"\xef\xbb\xbf"


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    """``(line_number, object)`` or ``(line_number, Problem)`` for each non-blank line.

    The file is opened when this is called: a file that cannot be opened raises
    :class:`CopilotError` (exit 2) before anything is read or written. Invalid UTF-8,
    invalid JSON or a line that is not a JSON object is a problem of that line only.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CopilotError(
            f"{path}: cannot read file: {exc.strerror or exc}", exit_code=2
        ) from None
    return _lines(path, handle)


def read_objects(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[Problem]]:
    """A labelled file read whole: ``(line_number, object)`` for every JSON-object line, and
    the :class:`Problem` of every other non-blank line (a file that cannot be opened is one
    problem on line 1). The loaders of training and test sets check fields on top of this."""
    try:
        lines = read_jsonl(path)
    except CopilotError as exc:
        return [], [Problem(str(path), 1, str(exc).removeprefix(f"{path}: "))]
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    for number, item in lines:
        if isinstance(item, Problem):
            problems.append(item)
        else:
            rows.append((number, item))
    return rows, problems


def check_readable(path: Path) -> None:
    """Raise :class:`CopilotError` (exit 2) now when ``path`` cannot be opened for reading."""
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise CopilotError(
            f"{path}: cannot read file: {exc.strerror or exc}", exit_code=2
        ) from None


def _lines(path: Path, handle: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    with handle:
        number = 0
        while True:
            try:
                raw = handle.readline()
            except OSError as exc:
                raise CopilotError(
                    f"{path}: line {number + 1}: cannot read file: {exc.strerror or exc}",
                    exit_code=2,
                ) from None
            if not raw:
                return
            number += 1
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            item = parse_line(raw, str(path), number)
            if item is not None:
                yield number, item


def parse_line(raw: bytes, path: str, number: int) -> dict[str, Any] | Problem | None:
    """One line's bytes as a JSON object, the :class:`Problem` with it, or None when blank."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
        return Problem(
            path,
            number,
            f"not UTF-8 text: invalid byte 0x{raw[exc.start]:02x} at column {column}",
        )
    if not text.strip():
        return None
    try:
        obj = json.loads(text.rstrip("\r\n"))  # columns count on this line, not the next
    except json.JSONDecodeError as exc:
        return Problem(path, number, f"not valid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return Problem(path, number, "not valid JSON: nested too deeply")
    if not isinstance(obj, dict):
        return Problem(path, number, "each line must be a JSON object")
    return obj


def require_str(
    obj: dict[str, Any], name: str, path: Path, line: int, *, optional: bool = False
) -> str | None:
    """The string field ``name`` or a :class:`LineError` naming file, line and field."""
    value = obj.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        what = (
            "missing" if value is None else f"must be non-empty text, got {json.dumps(value)[:40]}"
        )
        raise LineError(Problem(str(path), line, f"field '{name}': {what}"))
    return value


def too_long(name: str, value: str, limit: int, setting: str) -> str | None:
    """The message for a field over its size limit (``None`` when it fits)."""
    if len(value) <= limit:
        return None
    return f"field '{name}': {len(value)} characters is over the limit of {limit} ({setting})"


class LineError(Exception):
    """A problem with one input line; the run goes on with the next line."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def write_line(handle: TextIO, obj: dict[str, Any]) -> None:
    """Write one JSON object as a line and flush, so an interrupted run keeps what it wrote.

    Text that cannot be written as UTF-8 (a lone surrogate from a ``\\ud800`` escape in the
    input) is written with JSON escapes instead of failing the run.
    """
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, ensure_ascii=True)
    handle.write(line + "\n")
    handle.flush()


# ---- outputs that never destroy an input or a previous output --------------------------------
def refuse_overwriting_inputs(
    output: Path | None, inputs: Mapping[str, Path | None], output_flag: str = "--output"
) -> None:
    """Raise :class:`CopilotError` when ``output`` is one of ``inputs`` (flag -> path).

    Caught: the same path, a hard link to the file, and a symbolic link either way. Nothing
    has been written when this raises.
    """
    if output is None or str(output) == "-":
        return
    for flag, source in inputs.items():
        if source is None or str(source) == "-":
            continue
        how = _same_file(output, source)
        if how is not None:
            raise CopilotError(
                f"{output_flag} {output} is {how} the {flag} file {source}: writing it would "
                f"destroy the input; choose another {output_flag} (nothing was written)",
                exit_code=2,
            )


def _same_file(output: Path, source: Path) -> str | None:
    """How ``output`` would overwrite ``source`` ("the same file as", ...), or None."""
    try:
        if not output.exists() or not source.exists():
            return None
        if not os.path.samefile(output, source):
            return None
    except OSError:
        return None
    if output.is_symlink() or source.is_symlink():
        return "a symbolic link to" if output.is_symlink() else "the target of"
    if output.resolve() == source.resolve():
        return "the same file as"
    return "a hard link to"


@cache
def _umask() -> int:
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


@contextmanager
def atomic_output(path: Path | None) -> Iterator[TextIO]:
    """A text handle that becomes ``path`` only when the block ends without an error.

    ``None`` or ``-`` is standard output (written as it goes). The data goes to a temporary
    file in the output's folder (a symbolic link is followed: its target is replaced), which
    is renamed over the output at the end. On any failure, Ctrl-C included, the previous
    output is left as it was; lines already written are kept as ``OUTPUT.partial``.
    """
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    target = path.resolve() if path.is_symlink() else path
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise CopilotError(f"{path}: cannot write: {exc.strerror or exc}", exit_code=2) from None
    tmp = Path(tmp_name)
    try:
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
    except OSError:
        pass
    handle = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            handle.close()
        _keep_partial(tmp, target)
        raise


def _keep_partial(tmp: Path, target: Path) -> None:
    try:
        if tmp.stat().st_size == 0:
            tmp.unlink()
            return
        partial = target.with_name(target.name + ".partial")
        os.replace(tmp, partial)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return
    print(
        f"{target} is unchanged; the lines written before the failure are in {partial}",
        file=sys.stderr,
    )


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (all or nothing)."""
    with atomic_output(path) as handle:
        handle.write(text)
