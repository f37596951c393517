"""deploy/nginx/paychan.conf with a real nginx (Debian's package) on loopback, a self-signed certificate made
by openssl, in front of the real three services: README's curl walk-through through TLS, channel URLs naming
the proxy (listen.trust_forwarded_headers), no query string in nginx's access log, the 308 to https."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.functional.readme_replay import replay_walkthrough
from tests.support.plugin import ServicesFactory
from tests.support.ports import reserve_port
from tests.support.regtest import wait_for
from tests.support.services import PROJECT_ROOT, Services

pytestmark = pytest.mark.functional
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _config(tmp: Path, https: int, http: int, upstream: int) -> Path:
    """The example file with test ports, paths and certificate, inside a minimal nginx.conf."""
    site = (PROJECT_ROOT / "deploy" / "nginx" / "paychan.conf").read_text()
    site = re.sub(r"^\s*listen \[::\]:.*$", "", site, flags=re.M)  # loopback IPv4 only
    for old, new in (("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;"), ("listen 80;", f"listen 127.0.0.1:{http};"),
                     ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream};"),
                     ("/etc/ssl/paychan/fullchain.pem", str(tmp / "cert.pem")),
                     ("/etc/ssl/paychan/privkey.pem", str(tmp / "key.pem")),
                     ("/var/log/nginx/paychan.access.log", str(tmp / "access.log"))):
        assert old in site, old
        site = site.replace(old, new)
    (tmp / "paychan.conf").write_text(site)
    temp = "".join(f"{kind}_temp_path {tmp / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = (f"daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'} notice;\n"
            f"events {{ worker_connections 64; }}\n"
            f"http {{\n{temp}access_log off;\ninclude {tmp / 'paychan.conf'};\n}}\n")
    (tmp / "nginx.conf").write_text(main)
    return tmp / "nginx.conf"


@pytest.fixture
def proxied(services_factory: ServicesFactory, tmp_path: Path) -> Iterator[tuple[Services, str, Path, int]]:
    """The stack behind nginx; yields (services, https base URL, certificate, http port)."""
    if NGINX is None:
        pytest.fail("nginx missing: scripts/bootstrap.sh installs Debian's nginx")
    svc = services_factory(server={"listen": {"trust_forwarded_headers": True}})
    tls = tmp_path / "nginx"
    tls.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")], check=True, capture_output=True)
    https, http = reserve_port(), reserve_port()
    conf = _config(tls, https, http, svc.port)
    test = subprocess.run([NGINX, "-t", "-p", str(tls), "-c", str(conf)], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen([NGINX, "-p", str(tls), "-c", str(conf)], stderr=subprocess.PIPE)
    base = f"https://127.0.0.1:{https}"
    trust = ssl.create_default_context(cafile=str(tls / "cert.pem"))

    def up() -> bool:
        try:
            return httpx.get(base + "/health", verify=trust, timeout=1).status_code == 200
        except httpx.HTTPError:
            assert proc.poll() is None, (tls / "error.log").read_text()
            return False

    try:
        wait_for(up, timeout=20, interval=0.05, description="nginx")
        yield svc, base, tls / "cert.pem", http
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_readme_walkthrough_through_nginx_tls(proxied: tuple[Services, str, Path, int]) -> None:
    svc, base, cert, http = proxied
    bodies = replay_walkthrough(base, f"--cacert {cert}")
    uris = [str(b["channel_uri"]) for b in bodies if "channel_uri" in b]
    assert uris and all(u.startswith(base + "/v2/channels/") for u in uris), uris  # the proxy's scheme and host
    r = httpx.get(f"http://127.0.0.1:{http}/health", timeout=5)
    assert r.status_code == 308 and r.headers["location"] == "https://127.0.0.1/health"
    r = httpx.get(base + "/health", verify=ssl.create_default_context(cafile=str(cert)), timeout=5)
    assert r.headers["strict-transport-security"].startswith("max-age=")
    log = (cert.parent / "access.log").read_text()
    assert "PUT /v1/channels/" in log and "payment=" not in log and "secret=" not in log
    direct = httpx.get(f"{svc.url}/v2/funding/{'02' + '11' * 32}/2000000001/begin_open", timeout=5)
    assert direct.status_code in (200, 400) and "https://" not in direct.text  # no proxy, no rewrite
