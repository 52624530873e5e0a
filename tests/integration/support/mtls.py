"""Helpers for the mTLS tests (tests/integration/test_mtls_*.py): a CA made by
meshcore.ca in a temporary directory, certificates it would never issue
(expired, no clientAuth), a mesh directory with sidecars on loopback,
`meshcore proxy --mesh-dir ... --ca-dir ...` processes, plaintext
applications, and openssl / curl / tcpdump as real clients."""
from __future__ import annotations

import datetime as dt
import http.server
import pathlib
import re
import shutil
import socket
import subprocess
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from meshcore import ca

from .proxy import ProxyProcess

INBOUND = "sidecar.meshcore.dev/inbound-ports"


def make_ca(directory, trust_domain="cluster.local", intermediate=True) -> ca.CertificateAuthority:
    return ca.CertificateAuthority.init(str(directory), trust_domain, intermediate=intermediate)


def write_svid(authority, out_dir, ns, sa, ttl="1h") -> dict:
    """key.pem, cert-chain.pem, trust-bundle.pem for spiffe://<td>/ns/<ns>/sa/<sa>."""
    return ca.write_workload_dir(authority, str(out_dir), ns, sa, ttl)


def write_odd_svid(authority, out_dir, ns, sa, *, expired=False, client_auth=True, extra_uris=()) -> dict:
    """A certificate meshcore's CA would not issue, signed by its key: expired,
    without the clientAuth extended key usage, or with more URI SANs (extra_uris)."""
    key = ca.generate_key("ec-p256")
    now = dt.datetime.now(dt.timezone.utc)
    start, end = (now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)) if expired else \
        (now - dt.timedelta(minutes=1), now + dt.timedelta(hours=1))
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])
    signer = authority.signing_cert
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.ORGANIZATION_NAME, "meshcore")]))
            .issuer_name(signer.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(ca.workload_id(authority.trust_domain, ns, sa)),
                 *(x509.UniformResourceIdentifier(u) for u in extra_uris)]), critical=False)
            .sign(authority._signing_key, hashes.SHA256()))
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"key.pem": out / "key.pem", "cert-chain.pem": out / "cert-chain.pem",
             "trust-bundle.pem": out / "trust-bundle.pem"}
    paths["key.pem"].write_bytes(ca.key_to_pem(key))
    paths["cert-chain.pem"].write_bytes(ca.certs_to_pem([cert, *authority.intermediates]))
    paths["trust-bundle.pem"].write_bytes(authority.trust_bundle_pem)
    return {k: str(v) for k, v in paths.items()}


# ---- the mesh directory ---------------------------------------------------------------------------


def workload_entry(name, sa, labels, ports=None, inbound=None, ns="default", address="127.0.0.1") -> str:
    ann = f'\n  annotations: {{"{INBOUND}": "{inbound}"}}' if inbound else ""
    ports_line = f"\n  ports: {ports}" if ports else ""
    return (f"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
            f"metadata:\n  name: {name}\n  namespace: {ns}{ann}\n"
            f"spec:\n  address: {address}{ports_line}\n  labels: {labels}\n  serviceAccount: {sa}\n")


def service(name, ports: dict, selector: dict, ns="default") -> str:
    items = "".join(f"  - {{name: {n}, port: {p}}}\n" for n, p in ports.items())
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  selector: {selector}\n  ports:\n{items}")


def peer_authentication(mode, ns="istio-system", name="default") -> str:
    return (f"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n  mtls: {{mode: {mode}}}\n")


def write_mesh(directory, *docs) -> pathlib.Path:
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / ".mesh.yaml.tmp"
    tmp.write_text("\n---\n".join(docs))
    tmp.rename(d / "mesh.yaml")
    return d


# ---- processes ------------------------------------------------------------------------------------


class Sidecar(ProxyProcess):
    """`meshcore proxy --mesh-dir DIR --workload NS/NAME --ca-dir CADIR` as a real process."""

    def __init__(self, mesh_dir, workload, ca_dir, log_path, *, outbound_address="127.0.0.1", cert_ttl=None,
                 concurrency=2, extra_args=()):
        super().__init__(mesh_dir, log_path, concurrency=concurrency, extra_args=extra_args)
        args = ["--log-level", "info", "proxy", "--mesh-dir", str(mesh_dir), "--workload", workload,
                "--outbound-address", outbound_address, "--concurrency", str(concurrency),
                "--admin-address", "127.0.0.1:0"]
        if ca_dir is not None:
            args += ["--ca-dir", str(ca_dir)]
        if cert_ttl:
            args += ["--cert-ttl", cert_ttl]
        self.args = args + list(extra_args)


class PlainApp:
    """A plaintext HTTP/1.1 application: answers every request with its name and path,
    records what it received (bytes of the request head, and bodies)."""

    def __init__(self, name="app"):
        self.name = name
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer.lock:
                    outer.received.append(self.requestline.encode() + b"\n" + bytes(self.headers) + body)
                out = f"{outer.name} {self.command} {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                # One request per connection: no idle request thread outlives a test
                # (the sidecar's pool opens a new one; its downstream keeps alive).
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = False
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"plain-app-{name}", daemon=True)
        self._thread.start()

    def saw(self, marker: bytes) -> bool:
        with self.lock:
            return any(marker in r for r in self.received)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)


class TcpEcho:
    """A plaintext TCP application that echoes what it reads."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads = []
        self._thread = threading.Thread(target=self._accept, name="tcp-echo", daemon=True)
        self._thread.start()

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            t = threading.Thread(target=self._echo, args=(conn,), name="tcp-echo-conn", daemon=True)
            t.start()
            self._threads.append(t)

    def _echo(self, conn):
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        for t in self._threads:
            t.join(timeout=10)
        self.sock.close()


# ---- real clients ---------------------------------------------------------------------------------


def openssl_connect(port, svid=None, ca_file=None, *, send=b"", timeout=15, extra=()):
    """`openssl s_client -connect 127.0.0.1:PORT -cert -key -CAfile -showcerts`: (returncode, output)."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts", "-verify_return_error",
            "-servername", "checkout"]
    if svid:
        args += ["-cert", svid["cert-chain.pem"], "-cert_chain", svid["cert-chain.pem"], "-key", svid["key.pem"]]
    if ca_file:
        args += ["-CAfile", ca_file]
    if send:
        args.append("-ign_eof")  # wait for the server's answer (it closes: Connection: close)
    p = subprocess.run(args + list(extra), input=send, capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def served_chain(output: str) -> list[x509.Certificate]:
    """The certificates of `openssl s_client -showcerts` output, in the order served."""
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", output, re.S)
    return [x509.load_pem_x509_certificate(p.encode()) for p in pems]


def x509_san(cert_pem: bytes) -> str:
    """`openssl x509 -noout -ext subjectAltName` of a certificate."""
    p = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=cert_pem,
                       capture_output=True, check=True)
    return p.stdout.decode()


def curl(url, svid=None, *, host="checkout", method="GET", data=None, timeout=15, extra=()):
    """(status code or 0, body, curl's exit code); with svid: mTLS with that identity.
    The server's SPIFFE certificate has no DNS or IP name, so curl's host name check is off
    (-k); who the server is gets checked with openssl instead."""
    args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-m", str(timeout), "-H", f"Host: {host}",
            "-X", method]
    if svid:
        args += ["--cert", svid["cert-chain.pem"], "--key", svid["key.pem"], "--cacert", svid["trust-bundle.pem"],
                 "-k"]
    if data is not None:
        args += ["--data-binary", data]
    p = subprocess.run(args + list(extra) + [url], capture_output=True, timeout=timeout + 5)
    out = p.stdout.decode(errors="replace")
    body, _, code = out.rpartition("\n")
    return int(code or 0), body, p.returncode


def tcpdump_available() -> bool:
    return shutil.which("tcpdump") is not None


class Capture:
    """`tcpdump -i lo -U -w FILE port P` for the duration of a with-block."""

    def __init__(self, path, port):
        self.path, self.port = pathlib.Path(path), port

    def __enter__(self):
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-s", "0", "-w", str(self.path),
                                      f"tcp port {self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # tcpdump says "listening on lo" once it captures
        line = self.proc.stderr.readline()
        if b"listening" not in line:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"tcpdump did not start: {line!r}")
        return self

    def __exit__(self, *exc):
        import time

        time.sleep(0.3)  # the last packets reach the file
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stderr.close()

    def payloads(self) -> list[bytes]:
        """The TCP payloads of the captured packets (pcap, Ethernet/loopback + IPv4)."""
        data = self.path.read_bytes()
        import struct

        magic = struct.unpack("<I", data[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        linktype = struct.unpack(endian + "I", data[20:24])[0]
        off, out = 24, []
        while off + 16 <= len(data):
            _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
            pkt = data[off + 16: off + 16 + incl]
            off += 16 + incl
            l2 = 14 if linktype == 1 else (16 if linktype == 113 else 4 if linktype == 0 else 0)
            ip = pkt[l2:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
                continue
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[ihl:total]
            if len(tcp) < 20:
                continue
            doff = (tcp[12] >> 4) * 4
            if tcp[doff:]:
                out.append(bytes(tcp[doff:]))
        return out


def is_tls_handshake(payload: bytes, handshake_type: int) -> bool:
    """A TLS record of type handshake (22) starting with the given message (1 ClientHello, 2 ServerHello)."""
    return len(payload) > 5 and payload[0] == 0x16 and payload[1] == 0x03 and payload[5] == handshake_type
