"""The README of tests/design lists every design document in this folder."""

import pathlib

HERE = pathlib.Path(__file__).parent


def test_the_readme_links_every_design_file():
    readme = (HERE / "README.md").read_text()
    files = {p.name for p in HERE.glob("test_*.py")} - {pathlib.Path(__file__).name}
    assert files and all(f"[{name}]({name})" in readme for name in files)
