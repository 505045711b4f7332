"""Files generated from the code (domain and seed references, the client's catalogue,
Citus SQL) are current, and ``stats-gateway generate`` names and rewrites the stale ones."""

from __future__ import annotations

import shutil

from stats_gateway.cli import CHECKOUT, generated_artefacts, main


def test_no_generated_file_is_stale(capsys):
    code = main(["generate", "--check"])
    err = capsys.readouterr().err
    assert code == 0, err  # names the stale files and the command that rewrites them


def _copy_checkout(tmp_path):
    for name in generated_artefacts():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CHECKOUT / name, tmp_path / name)
    return tmp_path


def test_check_names_each_stale_file_and_generate_rewrites_it(tmp_path, capsys):
    root = _copy_checkout(tmp_path)
    sql = root / "sql" / "citus" / "distribute.sql"
    sql.write_text(sql.read_text().replace("events_storage", "events_old_name"))
    reference = root / "docs" / "domains.md"
    reference.write_text(reference.read_text().replace("| `uplBytes` |", "| `uploadedBytes` |"))
    untouched = {name: (root / name).read_text() for name in generated_artefacts()}

    assert main(["generate", "--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "docs/domains.md" in err and "sql/citus/distribute.sql" in err, err
    assert "docs/seeds.md" not in err and "catalogue.json" not in err, err
    assert {name: (root / name).read_text() for name in untouched} == untouched  # wrote nothing

    assert main(["generate", "--root", str(root)]) == 0
    assert "rewrote: docs/domains.md, sql/citus/distribute.sql" in capsys.readouterr().out
    for name in generated_artefacts():
        assert (root / name).read_text() == (CHECKOUT / name).read_text(), name
    assert main(["generate", "--check", "--root", str(root)]) == 0


def test_only_the_stale_file_is_named(tmp_path, capsys):
    root = _copy_checkout(tmp_path)
    sql = root / "sql" / "citus" / "distribute.sql"
    sql.write_text(sql.read_text() + "-- a hand edit\n")
    assert main(["generate", "--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "sql/citus/distribute.sql" in err and "docs/domains.md" not in err, err
