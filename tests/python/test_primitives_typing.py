"""mypy --strict on the primitives' modules (meshcore.http, .route,
.balance, .tls) and on a small embedder using all four, so the stubs of
meshcore._core (python/meshcore/_core.pyi) are exercised as users see them."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULES = ["python/meshcore/http.py", "python/meshcore/route.py", "python/meshcore/balance.py",
           "python/meshcore/tls.py"]

EMBEDDER = '''
from meshcore.balance import RingHashPicker, WeightedPicker
from meshcore.errors import HttpParseError, TLSPeerError
from meshcore.http import HttpRequestParser, parse_request
from meshcore.route import Router
from meshcore.tls import ClientContext


class Proto:
    def on_url(self, url: bytes) -> None:
        print(url.decode())


def main() -> None:
    req = parse_request(b"GET / HTTP/1.1\\\\r\\\\nHost: a\\\\r\\\\n\\\\r\\\\n")
    if req is not None:
        host: bytes | None = req.authority
        print(host, req.headers[0][0].decode(), req.body == "none")
    HttpRequestParser(Proto()).feed_data(b"GET / HTTP/1.1\\\\r\\\\nHost: a\\\\r\\\\n\\\\r\\\\n")
    router = Router({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "c"}}]}]})
    m = router.match("GET", "a", "/", {"x": "y"})
    cluster: str | None = m.cluster if m else None
    picker: WeightedPicker[str] = WeightedPicker({"a": 90, "b": 10})
    key: str = picker.pick()
    ring: RingHashPicker[str] = RingHashPicker({"10.0.0.1:80": 1})
    print(cluster, key, ring.pick("user"))
    try:
        ClientContext(trust_bundle=b"")
    except (HttpParseError, TLSPeerError, ValueError) as e:
        print(e)


main()
'''


def test_mypy_strict(tmp_path):
    mypy = shutil.which("mypy", path=os.path.dirname(sys.executable)) or shutil.which("mypy")
    if mypy is None:
        pytest.skip("mypy not installed (pip install -e .[test])")
    example = tmp_path / "embedder.py"
    example.write_text(EMBEDDER)
    env = dict(os.environ, MYPYPATH=str(ROOT / "python"))
    r = subprocess.run([mypy, "--strict", "--cache-dir", str(tmp_path / "cache"), *MODULES, str(example)],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
