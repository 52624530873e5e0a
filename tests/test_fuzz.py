"""The libFuzzer targets (tests/fuzz/fuzz_*.c, docs/fuzzing.md), built by
`make fuzz` with clang under ASan + UBSan and run briefly each: every seed in
tests/fuzz/corpus/<target>/, then mutations for a few seconds. Any crash,
sanitizer report, leak or broken invariant fails the test. New inputs go to
a temporary directory, never into the repository. Reproducers of known,
unfixed crashes live in tests/fuzz/crashes/<target>/ and are not run here.
Skips, saying why, when clang or its libFuzzer is missing (scripts/setup.sh
installs clang)."""
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "tests", "fuzz")
TARGETS = sorted(os.path.basename(p)[:-2] for p in glob.glob(os.path.join(FUZZ, "fuzz_*.c")))
SECONDS = int(os.environ.get("MESHCORE_FUZZ_SECONDS", "8"))


def _libfuzzer_missing(tmp):
    if shutil.which("make") is None:
        return "make not installed"
    if shutil.which("clang") is None:
        return "clang not installed (scripts/setup.sh installs it)"
    src = os.path.join(tmp, "probe.c")
    with open(src, "w") as f:
        f.write("#include <stdint.h>\n#include <stddef.h>\n"
                "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
    r = subprocess.run(["clang", "-fsanitize=fuzzer,address,undefined", src, "-o", os.path.join(tmp, "probe")],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return f"clang cannot link libFuzzer: {r.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    why = _libfuzzer_missing(str(tmp_path_factory.mktemp("probe")))
    if why:
        pytest.skip(why)
    r = subprocess.run(["make", "-s", "-C", ROOT, "-j2", "fuzz"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"make fuzz failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
    return os.path.join(ROOT, "build", "fuzz")


def test_every_target_has_a_seed_corpus():
    assert TARGETS, "no tests/fuzz/fuzz_*.c"
    for t in TARGETS:
        seeds = glob.glob(os.path.join(FUZZ, "corpus", t, "*"))
        assert seeds, f"tests/fuzz/corpus/{t}/ has no seeds"


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target(built, target, tmp_path):
    work = tmp_path / "corpus"
    work.mkdir()
    cmd = [os.path.join(built, target), f"-max_total_time={SECONDS}", "-timeout=10", "-rss_limit_mb=2048",
           f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(work), os.path.join(FUZZ, "corpus", target)]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 120, env=env, cwd=str(tmp_path))
    out = r.stdout + r.stderr
    artifacts = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    assert r.returncode == 0 and not artifacts, (
        f"{target} failed (rc {r.returncode}, artifacts {artifacts}); reproduce with "
        f"build/fuzz/{target} <artifact>:\n{out[-6000:]}")
    assert "runtime error:" not in out and "ERROR: AddressSanitizer" not in out, out[-6000:]
    assert "Done " in out, out[-3000:]
