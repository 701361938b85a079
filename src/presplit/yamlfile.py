"""Reading one small YAML file into its top-level mapping, with errors that name the file and what was wrong.

Scenario files (:mod:`presplit.scenarios.loader`) and failure files
(``--failures FILE``, :mod:`presplit.sim.failures`) are both "a mapping of
keys in a YAML file of a few KB"; they share this reader so that a binary
file, a file too large, bad YAML or a top level that is not a mapping gets the
same one-line answer everywhere. It sits in the bottom layer so that the
simulator can read a failures file without importing the scenario package
above it.
"""

from __future__ import annotations

from pathlib import Path

from presplit.errors import InputError

MAX_YAML_BYTES = 10 * 2**20  # these files are a few KB; anything this large is not one


class FileFormatError(InputError):
    """``file: key.path: message (expected ...)``."""

    def __init__(self, file: str | Path, key: str, message: str, expected: str | None = None) -> None:
        self.file, self.key, self.message, self.expected = str(file), key, message, expected
        text = f"{file}: {key or '(top level)'}: {message}"
        super().__init__(text + (f" (expected {expected})" if expected else ""))

    def __reduce__(self):
        # Rebuilt from its parts across processes (``--jobs N``), not from the formatted text.
        return type(self), (self.file, self.key, self.message, self.expected)


def yaml_mapping(path: Path, *, what: str = "scenario", keys: str = "scenario keys (name, engine, hosts, guests, ...)",
                 error: type[FileFormatError] = FileFormatError) -> dict:
    """The top-level mapping of one YAML file, or ``error`` saying why it is not one.

    ``what`` names the kind of file in messages ("a YAML scenario file"), ``keys`` what its mapping holds.
    """
    import yaml

    kind = f"a YAML {what} file"
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise error(path, "", f"{size:,} bytes: too large for a {what} file", f"{kind} of a few KB")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(path, "", f"not a UTF-8 YAML file (byte {exc.start} is {raw[exc.start]:#04x}; binary data?)",
                    kind) from None
    if "\x00" in text:
        raise error(path, "", f"not a YAML file (NUL byte at offset {text.index(chr(0))}; binary data?)", kind)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(path, "", f"not valid YAML{where}: {problem}", kind) from None
    except RecursionError:
        raise error(path, "", "not valid YAML: nested too deeply", kind) from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"{type(data).__name__} at top level"
        raise error(path, "", got, f"a mapping of {keys}")
    return data
