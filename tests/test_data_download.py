"""Downloads against a real HTTP server on 127.0.0.1 (Range support, like the official host)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tagpr_eval.data import load_task
from tagpr_eval.data.download import DownloadError, download, official_urls, sha256_file
from tagpr_eval.data.synthetic import generate_task

pytestmark = pytest.mark.integration


class _Server:
    """Serves a dict path -> bytes with HTTP Range support; records the requests it saw."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.end_headers()
                        return
                    part = body[start:]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    part = body
                    self.send_response(200)
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                self.wfile.write(part)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/LaMP"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[_Server]:
    srv = _Server()
    # official layout: LaMP_2/new/dev/..., LaMP_3/dev/..., time/LaMP_3/dev/...
    src = tmp_path / "src"
    for task in ("LaMP-2", "LaMP-3"):
        d = generate_task(task, n_users=4, questions_per_user=2, profile_size=3).data
        from tagpr_eval.data import write_task

        paths = write_task(d, src)
        for kind, url in official_urls(task, "dev", base_url=srv.url).items():
            srv.files[_path(url)] = paths[kind].read_bytes()
        for kind, url in official_urls(task, "dev", time_split=True, base_url=srv.url).items():
            srv.files[_path(url)] = paths[kind].read_bytes()
    yield srv
    srv.close()


def _path(url: str) -> str:
    return "/" + url.split(":", 2)[2].split("/", 1)[1]


def test_download_then_load(server: _Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    data_dir = download(["LaMP-2", "LaMP-3"], "dev", cache, base_url=server.url, progress=False)
    assert data_dir == cache
    d = load_task(data_dir, "LaMP-2", "dev")
    assert len(d) == 8 and d.has_golds
    assert ("/LaMP/LaMP_2/new/dev/dev_questions.json", None) in server.requests
    manifest = json.loads((cache / "manifest.json").read_text())
    rec = manifest["LaMP-2/dev_questions.json"]
    assert rec["sha256"] == sha256_file(cache / "LaMP-2" / "dev_questions.json")
    assert rec["url"].endswith("/LaMP_2/new/dev/dev_questions.json")
    assert not list(cache.rglob("*.part"))
    # reuse: nothing is fetched again
    n = len(server.requests)
    download("LaMP-2", "dev", cache, base_url=server.url, progress=True)
    assert len(server.requests) == n


def test_time_split_goes_under_time(server: _Server, tmp_path: Path) -> None:
    data_dir = download("LaMP-3", "dev", tmp_path, base_url=server.url, time_split=True, progress=False)
    assert data_dir == tmp_path / "time"
    assert len(load_task(data_dir, "LaMP-3")) == 8
    assert ("/LaMP/time/LaMP_3/dev/dev_outputs.json", None) in server.requests


def test_resumes_a_partial_download_with_range(server: _Server, tmp_path: Path) -> None:
    body = server.files["/LaMP/LaMP_3/dev/dev_questions.json"]
    dest = tmp_path / "LaMP-3" / "dev_questions.json"
    dest.parent.mkdir(parents=True)
    Path(str(dest) + ".part").write_bytes(body[:100])
    download("LaMP-3", "dev", tmp_path, base_url=server.url, progress=False)
    assert ("/LaMP/LaMP_3/dev/dev_questions.json", "bytes=100-") in server.requests
    assert dest.read_bytes() == body
    assert not Path(str(dest) + ".part").exists()


def test_corrupted_cached_file_is_detected_and_fetched_again(server: _Server, tmp_path: Path) -> None:
    download("LaMP-3", "dev", tmp_path, base_url=server.url, progress=False)
    f = tmp_path / "LaMP-3" / "dev_outputs.json"
    good = f.read_bytes()
    f.write_bytes(good.replace(b'"output": "', b'"output": "9', 1))
    n = len(server.requests)
    download("LaMP-3", "dev", tmp_path, base_url=server.url, progress=False)
    assert f.read_bytes() == good
    assert [p for p, _ in server.requests[n:]] == ["/LaMP/LaMP_3/dev/dev_outputs.json"]


def test_changed_server_file_fails_the_checksum(server: _Server, tmp_path: Path) -> None:
    download("LaMP-3", "dev", tmp_path, base_url=server.url, progress=False)
    key = "/LaMP/LaMP_3/dev/dev_outputs.json"
    server.files[key] = server.files[key].replace(b'"output": "', b'"output": " ', 1)
    (tmp_path / "LaMP-3" / "dev_outputs.json").unlink()
    with pytest.raises(DownloadError, match="does not match .* recorded"):
        download("LaMP-3", "dev", tmp_path, base_url=server.url, progress=False)
    download("LaMP-3", "dev", tmp_path, base_url=server.url, progress=False, refresh=True)
    assert (tmp_path / "LaMP-3" / "dev_outputs.json").read_bytes() == server.files[key]


def test_missing_file_and_unlicensed_task(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download("LaMP-4", "dev", tmp_path, base_url=server.url, progress=False)
    with pytest.raises(DownloadError, match="LDC licence"):
        download("LaMP-6", "dev", tmp_path, base_url=server.url, progress=False)


def test_test_split_has_no_outputs_url() -> None:
    assert set(official_urls("LaMP-1", "test")) == {"questions"}
    assert official_urls("LaMP-1", "test")["questions"].endswith("/LaMP_1/test/test_questions.json")
