"""No source file over ~800 lines (C, Cython and Python; tests and
benchmarks included): a file that long holds more than one concept. A file
that must stay longer is listed here with its reason, and the list may only
shrink (a listed file that got short enough fails too)."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIMIT = 800
DIRS = ["src", "ext", "python", "tests", "benchmarks", "scripts"]
SUFFIXES = {".c", ".h", ".py", ".pyx", ".pxi", ".pxd"}

# path -> why it is longer for now
EXCEPTIONS = {
    "src/meshcore/http/h1_parser.c": "the hot-path HTTP/1.1 parser, one scanner; to split with the HTTP/2 codec work",
}


def line_count(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def tracked_sources():
    """The repository's own source files (generated ones, like ext/_core.c, are not tracked)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *DIRS], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [p for p in out.splitlines() if pathlib.PurePosixPath(p).suffix in SUFFIXES and (ROOT / p).is_file()]


def test_no_file_over_the_limit():
    too_long = []
    for rel in tracked_sources():
        if rel in EXCEPTIONS:
            continue
        n = line_count(ROOT / rel)
        if n > LIMIT:
            too_long.append(f"{rel}: {n} lines")
    listing = "\n".join(too_long)
    assert not too_long, f"files over {LIMIT} lines (split them by concept):\n{listing}"


def test_exceptions_are_still_needed():
    stale = [p for p in EXCEPTIONS if not (ROOT / p).exists() or line_count(ROOT / p) <= LIMIT]
    assert not stale, f"listed as too long but no longer are (remove them from EXCEPTIONS): {stale}"
