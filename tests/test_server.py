"""The live HTTP server as a browser, a hostile web page and a careless script meet it: a real server on
loopback, a real HTTP client, real sockets."""
import gc
import http.client
import json
import logging
import socket
import sys
import threading
import time

import numpy as np
import pytest

import stylecam
from stylecam.live import Controls
from stylecam.server import MJPEGServer, host_name, printable

FRAME = np.full((48, 64, 3), 128, np.uint8)


@pytest.fixture(scope="module")
def stylizer():
    return stylecam.Stylizer("candy_nano", backend="onnxruntime", threads=1)


@pytest.fixture
def server(stylizer, tmp_path):
    controls = Controls(stylizer, styles=["candy_nano", "wave_nano"], screenshot_dir=tmp_path)
    srv = MJPEGServer("127.0.0.1", 0, controls, timeout=2.0, max_clients=6)
    srv.write(FRAME, None)
    yield srv
    srv.close()
    stylizer.strength = 1.0
    stylizer.set_mix(None)


def request(srv, method, path, headers=None, body=None, host="127.0.0.1"):
    conn = http.client.HTTPConnection(host, srv.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, (json.loads(data) if data.startswith(b"{") else data), resp


def control(srv, cmd, **headers):
    return request(srv, "POST", "/control", {"X-Stylecam-Token": srv.token,
                                             "Content-Type": "application/x-www-form-urlencoded", **headers},
                   body=f"cmd={cmd}")


def still_serving(srv):
    status, body, _ = request(srv, "GET", "/status")
    return status == 200 and body["frames"] >= 1


def test_the_served_page_carries_the_token_and_its_controls_work(server):
    status, page, _ = request(server, "GET", "/")
    assert status == 200 and server.token.encode() in page and b"X-Stylecam-Token" in page
    origin = f"http://127.0.0.1:{server.port}"
    status, body, _ = control(server, "strength=0.5", Origin=origin)  # what the page's fetch sends
    assert status == 200 and body["strength"] == 0.5
    status, body, _ = request(server, "POST", f"/control?cmd=weaker&token={server.token}")  # a script
    assert status == 200 and body["strength"] == 0.4


def test_cross_site_control_is_refused_and_the_server_keeps_running(server, stylizer):
    status, body, _ = control(server, "quit", Origin="http://evil.example")  # even with a stolen token
    assert status == 403 and "cross-origin" in body["error"]
    status, body, _ = request(server, "POST", "/control", {"Content-Type": "application/x-www-form-urlencoded"},
                              body="cmd=quit")  # a form posted from another site: no token
    assert status == 403 and "token" in body["error"]
    status, body, resp = request(server, "GET", "/control?cmd=quit")  # an <img src> on another site
    assert status == 405 and resp.getheader("Allow") == "POST"
    assert not server.controls.quit_requested and still_serving(server)
    status, body, _ = request(server, "POST", "/control?cmd=strength=0.3&token=wrong")
    assert status == 403 and stylizer.strength == 1.0


def test_a_foreign_host_header_is_refused_so_dns_rebinding_cannot_read_the_camera(server):
    for path in ("/frame.jpg", "/stream.mjpg", "/status", "/"):
        status, body, _ = request(server, "GET", path, {"Host": f"rebind.example:{server.port}"})
        assert status == 403 and "rebind.example" in body["error"] and "--http-allow-host" in body["error"]
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}"):
        status, jpeg, _ = request(server, "GET", "/frame.jpg", {"Host": host})
        assert status == 200 and jpeg[:2] == b"\xff\xd8"


def test_an_allowed_proxy_name_is_served(stylizer):
    srv = MJPEGServer("127.0.0.1", 0, None, allowed_hosts=("cam.example",))
    srv.write(FRAME, None)
    try:
        assert request(srv, "GET", "/status", {"Host": "cam.example"})[0] == 200
        assert request(srv, "GET", "/status", {"Host": "other.example"})[0] == 403
    finally:
        srv.close()


def test_an_exposed_bind_needs_the_token_for_everything():
    srv = MJPEGServer("0.0.0.0", 0, None, token="s3cret")
    srv.write(FRAME, None)
    try:
        assert srv.exposed and srv.url.endswith("/?token=s3cret")
        for path in ("/", "/frame.jpg", "/stream.mjpg", "/status"):
            status, body, _ = request(srv, "GET", path)
            assert status == 401 and "token" in body["error"]
        assert request(srv, "GET", "/status?token=s3cret")[0] == 200
        assert request(srv, "GET", "/frame.jpg", {"X-Stylecam-Token": "s3cret"})[0] == 200
        status, page, _ = request(srv, "GET", "/?token=s3cret")
        assert status == 200 and b"/stream.mjpg?token=s3cret" in page
    finally:
        srv.close()


def test_styles_over_http_are_names_not_paths_and_bad_values_answer_400(server, stylizer):
    for cmd in ("style=../../etc/passwd", "style=/tmp", "mix=nosuchstyle", "strength=abc", "strength=2",
                "scale=nan", "mix_amount=0.5", "bogus"):
        status, body, _ = control(server, cmd)
        assert status == 400, (cmd, body)
        assert body["error"]
    assert stylizer.style == "candy_nano" and stylizer.loading is None and still_serving(server)
    status, body, _ = control(server, "mix=wave_nano")  # a bundled name is fine
    assert status == 200 and body["mix"] == "wave_nano"


def test_a_failing_handler_answers_500_with_one_line(server, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("something\nbroke")

    monkeypatch.setattr(server.controls, "handle", broken)
    status, body, _ = control(server, "next")
    assert status == 500 and body["error"].startswith("internal error: KeyError") and "\n" not in body["error"]
    assert still_serving(server)


def test_control_characters_are_escaped_in_the_log(server, caplog):
    with caplog.at_level(logging.INFO, logger="stylecam"):
        control(server, "strength=0.9%0Astylecam: forged line")
    assert "\nstylecam: forged" not in caplog.text
    assert printable("a\nb\x1b[31m") == "a\\nb\\x1b[31m"


def test_screenshots_are_rate_limited_and_stop_on_a_full_disk(server, tmp_path):
    status, body, _ = control(server, "screenshot")
    assert status == 200
    status, body, resp = control(server, "screenshot")
    assert status == 429 and "one screenshot every" in body["error"] and int(resp.getheader("Retry-After")) >= 1
    server.controls.screenshot_interval, server.controls.min_free_bytes = 0.0, 1 << 62
    status, body, _ = control(server, "screenshot")
    assert status == 400 and "MB free" in body["error"]


def _stream_frames(srv, seconds):
    """Frames a real MJPEG reader receives in ``seconds``."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/stream.mjpg")
    resp = conn.getresponse()
    count, end = 0, time.time() + seconds
    while time.time() < end:
        if resp.fp.readline().startswith(b"--frame"):
            count += 1
    conn.close()
    return count


def _writer(srv, stop, fps=25):
    while not stop.is_set():
        srv.write(FRAME, None)
        time.sleep(1 / fps)


def test_idle_sockets_time_out_while_a_stream_keeps_its_frame_rate(server):
    stop = threading.Event()
    feeder = threading.Thread(target=_writer, args=(server, stop))
    feeder.start()
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(4)]
        frames = _stream_frames(server, 3.0)  # the server's timeout is 2 s
        for s in idle:
            assert s.recv(1) == b""  # closed by the server, not by us
            s.close()
    finally:
        stop.set()
        feeder.join()
    assert frames >= 0.6 * 25 * 3


def test_many_idle_sockets_are_capped_and_closed(stylizer):
    srv = MJPEGServer("127.0.0.1", 0, None, timeout=1.0, max_clients=5)
    srv.write(FRAME, None)
    try:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(20)]
        time.sleep(0.3)
        status, body, _ = request(srv, "GET", "/status")
        assert status == 503 and b"too many clients" in body  # the cap answers, it does not hang
        for s in idle:
            assert s.recv(4096) in (b"",) or s.recv(4096) == b""  # every one closed: the 503s or the timeout
            s.close()
        assert request(srv, "GET", "/status")[0] == 200  # room again
    finally:
        srv.close()


def test_a_stalled_stream_reader_is_dropped(stylizer):
    srv = MJPEGServer("127.0.0.1", 0, None, timeout=1.0)
    stop = threading.Event()
    big = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)  # ~1 MB JPEGs fill buffers
    feeder = threading.Thread(target=lambda: [srv.write(big, None) or time.sleep(0.02) for _ in iter(stop.is_set,
                                                                                                      True)])
    feeder.start()
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(4)  # never read: the server's writes stall, then time out
        s.settimeout(10)
        received = 0
        while chunk := s.recv(1 << 20):
            received += len(chunk)
        assert received < 50 << 20  # it ended: the connection was closed by the server
    finally:
        stop.set()
        feeder.join()
        srv.close()


def test_host_names_are_parsed_with_and_without_ports():
    assert host_name("LocalHost:8080") == "localhost" and host_name("[::1]:80") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1" and host_name("::1") == "::1"


def test_concurrent_next_commands_each_take_a_step(stylizer):
    names = ["candy_nano", "wave_nano", "udnie_nano", "the_scream_nano", "starry_night_nano"]
    controls = Controls(stylizer, styles=names)
    threads = [threading.Thread(target=controls.handle, args=("next",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stylizer.loading == names[4] or stylizer.style == names[4]
    deadline = time.time() + 60
    while stylizer.loading and time.time() < deadline:
        time.sleep(0.05)
    assert stylizer.style == names[4] and stylizer.loading is None
    stylizer.set_style("candy_nano")


def test_style_switches_do_not_keep_replaced_sessions_alive(stylizer, monkeypatch):
    import onnxruntime as ort

    from stylecam.backends.trt import unavailable_reason
    from stylecam.export.engine import probe_tensorrt

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # neither TensorRT imports: the ImportError path
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    probe_tensorrt.cache_clear()
    unavailable_reason.cache_clear()
    live = lambda: sum(isinstance(o, ort.InferenceSession) for o in gc.get_objects())  # noqa: E731
    s = stylecam.Stylizer("candy_nano", backend="auto", threads=1)
    controls = Controls(s, styles=["candy_nano"])
    gc.collect()
    gc.disable()  # a leak through reference cycles would now keep every replaced session
    try:
        before = live()
        for i in range(20):
            controls.handle(f"mix={'wave_nano' if i % 2 else 'udnie_nano'}", remote=True)
        after = live()
    finally:
        gc.enable()
        probe_tensorrt.cache_clear()
        unavailable_reason.cache_clear()
    assert after - before <= 1, f"{after - before} sessions kept alive by 20 switches"


def _chrome():
    """Headless Chromium through its WebDriver, or a skip that says what to install."""
    import os
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (the test extra has it)")
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if not (binary and driver):
        pytest.skip("needs Chromium and its driver: apt install chromium chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")  # never download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


def test_the_page_controls_work_in_a_real_browser_and_another_site_cannot_use_them(server, stylizer, tmp_path):
    """Headless Chromium opens the served page and clicks its buttons; then a page from another origin (another
    port) tries a form post and a fetch to /control, as a hostile site would: nothing changes."""
    import functools
    import http.server

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    stop = threading.Event()
    feeder = threading.Thread(target=_writer, args=(server, stop))
    feeder.start()
    (tmp_path / "evil.html").write_text(
        f'<form id="f" method="POST" action="http://127.0.0.1:{server.port}/control">'
        '<input name="cmd" value="strength=0.1"></form><script>'
        f'fetch("http://127.0.0.1:{server.port}/control", {{method: "POST", mode: "no-cors", '
        'headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "cmd=quit"});'
        'setTimeout(() => document.getElementById("f").submit(), 300);</script>')
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    browser = _chrome()
    try:
        browser.set_page_load_timeout(30)
        browser.get(server.url.replace("127.0.0.1", "localhost"))  # the page as a user opens it
        browser.find_element(By.XPATH, "//button[contains(., 'strength') and contains(., '−')]").click()
        WebDriverWait(browser, 10).until(lambda b: "strength" in b.find_element(By.ID, "s").text)
        assert stylizer.strength == 0.9
        browser.get(f"http://127.0.0.1:{evil.server_address[1]}/evil.html")  # another site
        time.sleep(2)
        assert stylizer.strength == 0.9 and not server.controls.quit_requested and still_serving(server)
    finally:
        browser.quit()
        evil.shutdown()
        stop.set()
        feeder.join()
