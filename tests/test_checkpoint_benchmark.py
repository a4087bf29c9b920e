"""Smoke tests of benchmarks/checkpoint_io.py: its options, each way's save
and restore on a tiny tree, and its section of RESULTS.md. No timings."""

from __future__ import annotations

import pytest

from benchmarks import checkpoint_io


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as info:
        checkpoint_io.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--repeats", "--depth", "--width", "--quick", "--dir", "--write-results"):
        assert option in text


@pytest.mark.parametrize("way", checkpoint_io.WAYS)
def test_each_way_saves_and_restores_a_tiny_tree(tmp_path, way):
    saved = checkpoint_io._sample("save", way, str(tmp_path), 2, 8)
    assert saved["seconds"] > 0 and saved["peak_growth_bytes"] >= 0
    for restore in (r for r in checkpoint_io.RESTORES if r.startswith(way)):
        restored = checkpoint_io._sample("restore", restore, str(tmp_path), 2, 8)
        assert restored["seconds"] > 0


def test_the_results_section_replaces_its_previous_version(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\n## Other\n\ntext\n")
    section = f"{checkpoint_io.SECTION} (old)\n\nold table\n"
    checkpoint_io.write_section(str(results), section)
    checkpoint_io.write_section(str(results), section.replace("old", "new"))
    text = results.read_text()
    assert text.count(checkpoint_io.SECTION) == 1 and "new table" in text
    assert text.startswith("# Results\n\n## Other\n\ntext\n")
