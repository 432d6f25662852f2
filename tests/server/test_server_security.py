"""Security by default: loopback only, the token on every route, cross-site refusals, upload limits."""

from __future__ import annotations

import io
import struct
import zlib

import httpx
import openai
import pytest
from conftest import STEPS, Served, wait_job
from PIL import Image
from test_server_api import CSRF, png_bytes, scene

from mediagen.errors import RequestError
from mediagen.schema import GenerationRequest
from mediagen.server.app import main
from mediagen.server.config import ServerConfig
from mediagen.server.files import DataDir
from mediagen.server.uploads import Limits, localise_request

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """A server with a token and a 1 MiB body limit."""
    s = Served(tmp_path_factory.mktemp("locked") / "data", "--max-upload-mb", "1", token=TOKEN).start()
    yield s
    s.stop()


def test_refuses_to_listen_beyond_loopback_without_a_token(tmp_path, capsys):
    assert main(["--host", "0.0.0.0", "--data", str(tmp_path / "d")]) == 2
    assert "without a token" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    for host in ("192.168.1.5", "::", "example.com"):
        with pytest.raises(RequestError):
            ServerConfig(data_dir=tmp_path, host=host).check_bind()
    ServerConfig(data_dir=tmp_path, host="0.0.0.0", token="t").check_bind()
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        ServerConfig(data_dir=tmp_path, host=host).check_bind()


def test_every_route_needs_the_token(locked):
    url = locked.url
    for path in ("/api/health", "/api/jobs", "/api/schema", "/api/models", "/openapi.json", "/static/app.js",
                 "/api/jobs/" + "0" * 32 + "/outputs/0", "/v1/models"):
        r = httpx.get(url + path)
        assert r.status_code == 401, path
        assert httpx.get(url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
    assert httpx.get(url + "/v1/models").json()["error"]["code"] == "invalid_api_key"
    page = httpx.get(url + "/", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert httpx.get(url + "/login").status_code == 200  # the login page itself is public
    assert httpx.get(url + "/api/health", headers=locked.headers()).status_code == 200
    assert httpx.post(url + "/api/jobs", json={"prompt": "x"}).status_code == 401


def test_ui_login_sets_a_session_cookie(locked):
    with httpx.Client(base_url=locked.url) as c:
        assert c.post("/api/login", json={"token": "nope"}).status_code == 401
        r = c.post("/api/login", json={"token": TOKEN})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
        assert c.get("/api/health").status_code == 200
        assert c.get("/", headers={"Accept": "text/html"}).status_code == 200
        c.post("/api/logout")
        assert c.get("/api/health").status_code == 401


def test_openai_client_uses_the_token_and_signed_urls(locked):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=locked.url + "/v1", api_key="wrong", max_retries=0).models.list()
    oa = openai.OpenAI(base_url=locked.url + "/v1", api_key=TOKEN, max_retries=0)
    r = oa.images.generate(prompt="x", size="64x64", response_format="url", n=2, extra_body={"steps": STEPS})
    first, second = r.data[0].url, r.data[1].url
    assert httpx.get(first).status_code == 200  # the signature stands in for the token
    assert httpx.get(first.replace("sig=", "sig=0")).status_code == 401
    sig = first.split("?", 1)[1]
    assert httpx.get(second.split("?", 1)[0] + "?" + sig).status_code == 401  # bound to its own path
    assert httpx.get(first.split("?", 1)[0]).status_code == 401
    exp = int(sig.split("exp=")[1].split("&")[0])
    assert httpx.get(first.replace(f"exp={exp}", f"exp={exp + 1}")).status_code == 401


def test_body_size_limit(locked):
    big = b"\0" * (2 * 2**20)
    r = httpx.post(locked.url + "/api/uploads", files={"file": ("a.png", big, "image/png")},
                   headers=locked.headers())
    assert r.status_code == 413

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = httpx.post(locked.url + "/api/jobs", content=chunks(),
                   headers={**locked.headers(), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert locked.health()["ok"]


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port on localhost is another site's app
])
def test_cross_site_posts_are_refused(client, headers):
    r = client.post("/api/jobs", json={"prompt": "csrf"}, headers=headers)
    assert r.status_code == 403 and r.json()["code"] == "cross_site"


def test_form_posts_need_the_csrf_header(client, server):
    r = client.post("/api/jobs", content=b'{"prompt": "csrf"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 403 and r.json()["code"] == "csrf"
    files = {"file": ("a.png", png_bytes(scene()), "image/png")}
    assert client.post("/api/uploads", files=files).status_code == 403
    assert client.post("/api/uploads", files=files, headers=CSRF).status_code == 201
    same = client.post("/api/jobs", json={"prompt": "fine", "steps": STEPS},
                       headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 202
    wait_job(client, same.json()["id"])


def test_other_host_names_are_refused_without_a_token(server):
    r = httpx.get(server.url + "/api/health", headers={"Host": "evil.example:7860"})
    assert r.status_code == 403 and r.json()["code"] == "host_not_allowed"
    assert httpx.get(server.url + "/api/health", headers={"Host": "localhost"}).status_code == 200


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(side: int) -> bytes:
    """A valid grey PNG of side x side zero pixels: a few hundred KB that would decode to side**2 bytes."""
    row = b"\0" * (side + 1)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def test_decompression_bombs_and_junk_are_refused(client, server):
    bomb = _bomb_png(12000)  # 144 MP
    small = _bomb_png(5000)  # 25 MP: under PIL's own guard, over the server's 16.8 MP limit
    r = client.post("/api/uploads", files={"file": ("big.png", small, "image/png")}, headers=CSRF)
    assert r.status_code == 422 and "5000x5000" in r.json()["detail"]
    assert len(bomb) < 1_000_000
    r = client.post("/api/uploads", files={"file": ("bomb.png", bomb, "image/png")}, headers=CSRF)
    assert r.status_code == 422 and "decompression bomb" in r.json()["detail"]
    header_only = bytearray(png_bytes(Image.new("RGB", (1, 1))))
    header_only[16:24] = struct.pack(">II", 100000, 100000)
    header_only[29:33] = struct.pack(">I", zlib.crc32(bytes(header_only[12:29])))
    r = client.post("/api/uploads", files={"file": ("b.png", bytes(header_only), "image/png")}, headers=CSRF)
    assert r.status_code == 422
    for junk in (b"GIF89a" + b"\0" * 20, b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"\x89PNG\r\n\x1a\n"):
        assert client.post("/api/uploads", files={"file": ("j", junk, "image/png")}, headers=CSRF).status_code == 422
    assert server.health()["ok"]


def test_uploads_are_re_encoded(client, server):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "private note"
    scene().save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    r = client.post("/api/uploads", files={"file": ("a.jpg", buf.getvalue(), "image/jpeg")}, headers=CSRF).json()
    stored = (server.data / r["ref"]).read_bytes()
    assert stored.startswith(b"\x89PNG") and b"private note" not in stored
    assert Image.open(io.BytesIO(stored)).size == (64, 64)


def test_lora_and_subject_names_cannot_reach_the_filesystem(tmp_path):
    data = DataDir.create(tmp_path / "data")
    loras = tmp_path / "loras"
    loras.mkdir()
    (loras / "style.safetensors").write_bytes(b"x")
    limits = Limits(2**20, 2**20, 4096)
    ok = localise_request(GenerationRequest(prompt="x", loras=[{"path": "style.safetensors"}]), data, limits, loras)
    assert ok.loras[0].path == str(loras / "style.safetensors")
    for bad in ("../loras/style.safetensors", "/etc/passwd", "missing.safetensors", "style.ckpt"):
        with pytest.raises(RequestError):
            localise_request(GenerationRequest(prompt="x", loras=[{"path": bad}]), data, limits, loras)
    with pytest.raises(RequestError):
        localise_request(GenerationRequest(prompt="x", subject="../../x"), data, limits, loras)
