"""An OpenGait tree full of crafted and fuzzed pkls: the real CLI imports every good sequence,
names every bad file, exits 1, runs nothing and stays small. Run in a subprocess so that a crash
or a gigabyte allocation shows as a failed test (exit code, peak RSS of the child)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
from hostile_pickles import CORPUS, EXPECTED

from pipeline.formats.aligned import AlignedReader
from pipeline.interop.safe_pickle import PickleLoadError, dump_array, load_pickle
from pipeline.manifest import SequenceId

ROOT = Path(__file__).parents[1]
MAX_RSS_MB = 900
MARKER = Path("/tmp/depthgait-pwned")  # what os_system.pkl would touch


def _mutants(rng: np.random.Generator, sil: np.ndarray, count: int) -> list[bytes]:
    seeds = [pickle.dumps(sil, protocol=p) for p in (2, 4, 5)]
    out = []
    for i in range(count):
        data = bytearray(seeds[i % len(seeds)])
        at = int(rng.integers(0, 200))  # the header: where a flip changes structure, not pixels
        if i % 3 == 0:
            data[at] ^= 1 << int(rng.integers(8))
        elif i % 3 == 1:
            data[at] = int(rng.integers(256))
        else:
            del data[at : at + int(rng.integers(1, 5))]
        out.append(bytes(data))
    return out


def test_hostile_tree_imports_the_good_and_names_the_bad(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    tree = tmp_path / "tree"
    good = {}
    for i in range(6):
        sil = rng.integers(0, 256, size=(6 + i, 64, 64), dtype=np.uint8)
        folder = tree / f"{i:03d}" / "nm-01" / "090"
        folder.mkdir(parents=True)
        if i % 2:
            dump_array(sil, folder / "00-sil-090.pkl")
        else:
            (folder / "090.pkl").write_bytes(pickle.dumps(sil, protocol=i % 5))
        good[SequenceId(f"{i:03d}", "nm-01", "090")] = sil
    bad_files = []
    for name in sorted(json.loads((CORPUS / EXPECTED).read_text())):
        folder = tree / "bad" / Path(name).stem / "000"
        folder.mkdir(parents=True)
        (folder / name).write_bytes((CORPUS / name).read_bytes())
        bad_files.append(folder / name)
    template = rng.integers(0, 256, size=(8, 64, 64), dtype=np.uint8)
    fuzzed = []
    for k, blob in enumerate(_mutants(rng, template, 60)):
        folder = tree / "fuzz" / f"m{k:02d}" / "000"
        folder.mkdir(parents=True)
        (folder / "000.pkl").write_bytes(blob)
        fuzzed.append(folder / "000.pkl")
    MARKER.unlink(missing_ok=True)

    out = tmp_path / "out.h5"
    cli = [sys.executable, "-m", "cli.prep", "import", str(tree), "--out", str(out), "-q"]
    wrapper = (
        "import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]);"
        "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", wrapper, *cli], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)

    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and not MARKER.exists()
    rss_mb = int(done.stderr.rsplit("maxrss_kb", 1)[1].split()[0]) / 1024
    assert rss_mb < MAX_RSS_MB, f"peak RSS {rss_mb:.0f} MB"
    skipped = [line for line in done.stderr.splitlines() if line.startswith("skipped: ")]
    for path in bad_files:  # every crafted file named, with its reason
        reason = json.loads((CORPUS / EXPECTED).read_text())[path.name]
        assert any(str(path) in line and reason in line for line in skipped), path.name
    fuzz_bad = 0
    for path in fuzzed:  # a mutant either imports (its flip hit pixels) or is named
        try:
            ok = load_pickle(path).shape == (8, 64, 64)
        except (PickleLoadError, AttributeError):
            ok = False
        fuzz_bad += not ok
        assert ok or any(str(path) in line for line in skipped), path
    assert len(skipped) == len(bad_files) + fuzz_bad and fuzz_bad > 20
    assert f"{len(skipped)} sequences skipped" in done.stderr
    with AlignedReader(out) as reader:
        ids = set(reader.ids())
        assert set(good) <= ids and not any(i.subject == "bad" for i in ids)
        for seq_id, sil in good.items():
            assert np.array_equal(reader.load(seq_id).sil, sil)
