"""Where the ZetaSQL compliance files are read from: a checkout or a bare git mirror."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pulse_local.errors import PulseError

DEFAULT_MIRROR = "/work/.mirror/google+zetasql/repo"
TESTDATA = "zetasql/compliance/testdata"


class ComplianceMirrorMissing(PulseError):
    """The ZetaSQL compliance files are not where PULSE_ZETASQL_DIR points."""

    def __init__(self, path: str, detail: str = "") -> None:
        super().__init__(
            f"ZetaSQL compliance files not found at {path}{f' ({detail})' if detail else ''}. "
            "Get them with `git clone --depth 1 https://github.com/google/zetasql` and set "
            "PULSE_ZETASQL_DIR to that directory (a work tree or a bare git directory)."
        )


class ComplianceSource:
    """Reads ``<name>.test`` files from a work tree or, through git, from a bare mirror."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        raw = str(path or os.environ.get("PULSE_ZETASQL_DIR") or DEFAULT_MIRROR)
        root = Path(raw)
        if not root.exists():
            raise ComplianceMirrorMissing(raw)
        self.path = root
        self._worktree: Path | None = None
        for candidate in (root / TESTDATA, root):
            if candidate.is_dir() and any(candidate.glob("*.test")):
                self._worktree = candidate
                break
        if self._worktree is None:
            if not ((root / "HEAD").is_file() and (root / "objects").is_dir()):
                raise ComplianceMirrorMissing(raw, f"neither a checkout with {TESTDATA} nor a git directory")
            if not self.names():
                raise ComplianceMirrorMissing(raw, f"the git directory has no {TESTDATA}/*.test at HEAD")

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(
                ["git", f"--git-dir={self.path}", *args], capture_output=True, text=True, check=True,
                encoding="utf-8", errors="replace",
            )
        except (OSError, subprocess.CalledProcessError) as err:
            raise ComplianceMirrorMissing(str(self.path), f"git {' '.join(args)} failed: {err}") from err
        return done.stdout

    def names(self) -> list[str]:
        """Names of the available files, without ``.test``."""
        if self._worktree is not None:
            return sorted(p.stem for p in self._worktree.glob("*.test"))
        listing = self._git("ls-tree", "--name-only", "HEAD", f"{TESTDATA}/")
        return sorted(Path(line).stem for line in listing.split() if line.endswith(".test"))

    def read(self, name: str) -> str:
        """The text of ``<name>.test``."""
        if self._worktree is not None:
            path = self._worktree / f"{name}.test"
            if not path.is_file():
                raise ComplianceMirrorMissing(str(self.path), f"no {name}.test")
            return path.read_text(encoding="utf-8")
        return self._git("show", f"HEAD:{TESTDATA}/{name}.test")
