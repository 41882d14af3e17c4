"""Files the user gave and files we write: nothing is ever lost or half-written.

- ``atomic_path``: every output is written under a temporary name beside it and renamed into
  place only when complete. A lock file beside the output tells a second writer of the same path
  that one is at work; temporaries of a killed run are removed by the next run that writes there;
  an existing folder output (zarr) is renamed aside before the new one moves in, so a kill between
  the two renames leaves the old one, which the next run puts back.
- ``check_outputs``: no output may be an input, or another output of the same run.
- ``mask_paths``: unique mask names for many images written into one folder.
- ``check_input``: inputs must be regular files (or zarr folders): a FIFO or a device would block.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from ..errors import UserInputError

MAX_NAME = 200  # bytes: most file systems allow 255 per name, and temporaries add a prefix and suffix


def check_input(path) -> Path:
    """``path`` if it is a regular file or a folder (zarr); else one line naming the problem."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserInputError(f"{path} does not exist; check the path") from None
    except OSError as exc:
        raise UserInputError(f"cannot open {path} ({exc.strerror}); check the path") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserInputError(f"{path} is not a regular file (a pipe, socket or device); give an image file")
    return path


def same_path(a, b) -> bool:
    """Whether two paths name the same file or folder (links, '..' and existing hard links too)."""
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_outputs(inputs, outputs) -> None:
    """Refuse a run whose outputs would replace one of its inputs or one another.

    inputs: paths the run reads; outputs: (what, path) pairs, e.g. ("--out", Path("m.tif")).
    """
    inputs = [Path(p) for p in inputs if p is not None]
    outputs = [(what, Path(p)) for what, p in outputs if p is not None]
    for what, out in outputs:
        for source in inputs:
            if same_path(out, source):
                raise UserInputError(f"{what} {out} is also an input of this run and would be replaced; "
                                     "write the result under another name")
    for i, (what, out) in enumerate(outputs):
        for other, out2 in outputs[i + 1:]:
            if same_path(out, out2):
                raise UserInputError(f"{what} and {other} are the same file ({out}); give each output its own name")


def mask_paths(images, folder, tail: str = "_masks.tif") -> list[Path]:
    """One mask path in ``folder`` per image, ``<stem><tail>``, unique however the images are named.

    Images whose stems collide get their extension in the name when that tells them apart
    (``cells.tif``, ``cells.png`` -> ``cells_tif_masks.tif``, ``cells_png_masks.tif``), else their
    folder's name (``plate1/A01.tif`` -> ``plate1_A01_masks.tif``), else both, else a number.
    """
    images = [Path(p) for p in images]
    stems = [p.stem for p in images]

    def name(p: Path, level: int) -> str:
        parts = [p.stem]
        if level in (1, 3):
            parts.append(p.suffix.lstrip(".").lower() or "noext")
        if level >= 2:
            parts.insert(0, p.resolve().parent.name or "root")
        return "_".join(parts)

    names = []
    for i, p in enumerate(images):
        group = [q for q, s in zip(images, stems) if s == p.stem]
        for level in range(4):
            candidate = name(p, level)
            if len(group) == 1 or sum(name(q, level) == candidate for q in group) == 1:
                break
        else:
            candidate = f"{name(p, 3)}_{i + 1}"
        names.append(Path(folder) / f"{candidate}{tail}")
    return names


def check_writable_folder(path) -> None:
    """Refuse (before any work) an output whose folder is missing, not a folder, or not writable."""
    path = Path(path)
    parent = path.parent
    if path.is_dir() and path.suffix.lower() != ".zarr":
        raise UserInputError(f"{path} is a folder; give a file name for the output")
    if not parent.is_dir():
        raise UserInputError(f"folder {parent} does not exist; create it or choose another place")
    if len(os.fsencode(path.name)) > MAX_NAME:
        raise UserInputError(f"the output name {path.name[:40]}... is too long for most file systems; use a shorter one")
    try:
        fd, name = tempfile.mkstemp(prefix=".napari-unet-check.", dir=parent)
    except OSError as exc:
        raise UserInputError(f"cannot write in {parent} ({exc.strerror}); choose another place") from None
    os.close(fd)
    os.unlink(name)


def atomic_path(path) -> "AtomicPath":
    """Context manager: a temporary path beside ``path``, renamed onto it on success."""
    return AtomicPath(Path(path))


class AtomicPath:
    """A temporary path beside ``path`` while a writer fills it; renamed onto ``path`` on success.

    While open, ``.<name>.lock`` beside the output holds the writer's process id: a second
    writer of the same output is refused with a message; a lock left by a killed run (its
    process gone) is taken over, and that run's temporaries (``.<name>.*.part*``) are removed.
    """

    def __init__(self, path: Path):
        self.path = path
        self.lock = path.parent / f".{path.name}.lock"

    def __enter__(self) -> Path:
        parent = self.path.parent
        if not parent.is_dir():
            raise UserInputError(f"folder {parent} does not exist; create it or choose another place")
        self._take_lock()
        try:
            self._clean_up_after_killed_runs()
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part" + self.path.suffix, dir=parent)
        except OSError as exc:
            self._release_lock()
            raise UserInputError(f"cannot write in {parent} ({exc.strerror}); choose another place") from None
        os.close(fd)
        os.unlink(name)  # writers (zarr) want to create it themselves
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._move_into_place()
                return False
            _remove(self.tmp)
        finally:
            self._release_lock()
        if isinstance(exc, OSError) and not isinstance(exc, UserInputError):
            raise UserInputError(f"could not write {self.path} ({exc.strerror or exc}); nothing was written") from None
        return False

    def _move_into_place(self) -> None:
        if self.path.is_dir() and self.tmp.is_dir():
            aside = self.path.parent / f".{self.path.name}.{os.getpid()}.old"
            os.replace(self.path, aside)  # a kill after this leaves the old store aside, never neither
            os.replace(self.tmp, self.path)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(self.tmp, self.path)

    def _take_lock(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _lock_owner(self.lock)
                if owner is not None and _alive(owner):
                    raise UserInputError(f"another napari-unet run (process {owner}) is writing {self.path}; wait "
                                         f"for it to finish or write elsewhere (if none runs, delete {self.lock})") from None
                with contextlib.suppress(FileNotFoundError):
                    self.lock.unlink()  # its writer was killed: take over
                continue
            except OSError as exc:
                raise UserInputError(f"cannot write in {self.path.parent} ({exc.strerror}); "
                                     "choose another place") from None
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return
        raise UserInputError(f"another napari-unet run is writing {self.path}; wait for it or write elsewhere")

    def _release_lock(self) -> None:
        with contextlib.suppress(OSError):
            self.lock.unlink()

    def _clean_up_after_killed_runs(self) -> None:
        """Under our lock no one else writes here: temporaries of this output are a killed run's.
        A store renamed aside with nothing in its place goes back."""
        parent, name = self.path.parent, self.path.name
        for aside in sorted(parent.glob(f".{glob_escape(name)}.*.old")):
            if not self.path.exists():
                os.replace(aside, self.path)
            else:
                _remove(aside)
        for part in parent.glob(f".{glob_escape(name)}.*.part*"):
            _remove(part)


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _lock_owner(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip() or "x")
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # (Windows: os.kill would end the process; assume alive)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
