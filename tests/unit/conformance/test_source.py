"""Where the compliance files come from: a checkout, a bare git directory, or a named error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pulse_local.conformance.source import TESTDATA, ComplianceMirrorMissing, ComplianceSource

SAMPLE = "[name=one]\nSELECT 1\n--\nARRAY<STRUCT<INT64>>[{1}]\n"


def test_missing_mirror_names_the_clone_command(tmp_path: Path) -> None:
    with pytest.raises(ComplianceMirrorMissing, match="git clone --depth 1 https://github.com/google/zetasql"):
        ComplianceSource(tmp_path / "nowhere")


def test_directory_without_tests_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ComplianceMirrorMissing, match="PULSE_ZETASQL_DIR"):
        ComplianceSource(tmp_path)


def test_checkout_work_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    testdata = tmp_path / TESTDATA
    testdata.mkdir(parents=True)
    (testdata / "sample.test").write_text(SAMPLE, encoding="utf-8")
    monkeypatch.setenv("PULSE_ZETASQL_DIR", str(tmp_path))
    source = ComplianceSource()
    assert source.names() == ["sample"]
    assert source.read("sample") == SAMPLE


def test_bare_git_directory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / TESTDATA).mkdir(parents=True)
    (work / TESTDATA / "sample.test").write_text(SAMPLE, encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-q", "-m", "sample"], check=True)
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    source = ComplianceSource(bare)
    assert source.names() == ["sample"]
    assert source.read("sample") == SAMPLE
