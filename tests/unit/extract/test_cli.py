import json

from curate.cli import main
from curate.extract.synthetic import WatPage, img, write_wat


def test_curate_extract(tmp_path, capsys):
    path = tmp_path / "CC-MAIN-2024-10-x.warc.wat.gz"
    write_wat(str(path), [WatPage("https://example.com/p.html", links=(img("/a.jpg", alt="a cat"), img("data:x")))])
    run = str(tmp_path / "run")
    assert main(["extract", run, "--input", str(path), "--engine", "local"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["stage"], stats["kept"], stats["rejected"], stats["files"]) == \
        ("extract", 1, {"bad_scheme": 1}, 1)
    assert main(["extract", run, "--input", str(path)]) == 0  # finished: no engine, the same stats
    assert json.loads(capsys.readouterr().out) == stats


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "run"), "--input", str(tmp_path / "none-*.wat.gz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("curate: error: extract: no files match") and err.count("\n") == 1
