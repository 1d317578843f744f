"""The step-by-step page in a real headless browser, and one canvas for every step.

The browser is Debian's Chromium, installed by the test command as it installs ``dot``;
the test drives it over the DevTools protocol on a pipe (``--remote-debugging-pipe``,
standard library only): it loads ``index.html``, presses → and ← and checks which
frame is shown, and takes a screenshot whose pixels must show the circuit.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import graphc

STAGED = "sigy = 1/(1+exp(-y)); num = x + sigy; f = num / (sigmoid(x) + (x+y)^2)"
AT = {"x": 3, "y": -4}

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("GRAPHC_SKIP_BROWSER") == "1",
    reason="GRAPHC_SKIP_BROWSER=1 and no chromium",
)
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None and os.environ.get("GRAPHC_SKIP_DOT") == "1",
    reason="GRAPHC_SKIP_DOT=1 and no dot program",
)


@pytest.mark.dot
@needs_dot
def test_every_step_has_one_canvas(tmp_path):
    written = graphc.render_steps(graphc.parse(STAGED), AT, tmp_path)
    sizes = {re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', p.read_text()).groups()
             for p in written[:-1]}  # fmt: skip
    assert len(written) == 13 and len(sizes) == 1, sizes


def _high(fd: int) -> int:
    import fcntl

    new = fcntl.fcntl(fd, fcntl.F_DUPFD, 20)
    os.close(fd)
    return new


class _Browser:
    """Headless Chromium over the DevTools protocol on fds 3 (to it) and 4 (from it)."""

    def __init__(self, profile: Path) -> None:
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()
        # the child's ends on high fds, so that moving them to 3 and 4 cannot clash
        to_r, from_w = (_high(fd) for fd in (to_r, from_w))
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--remote-debugging-pipe",
                f"--user-data-dir={profile}", "--window-size=1400,900"]  # fmt: skip
        os.set_inheritable(to_r, True)
        os.set_inheritable(from_w, True)
        # bash puts the pipes on fds 3 and 4, where Chromium looks for them (dash cannot
        # redirect from fds above 9)
        shell = ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{to_r} 4>&{from_w}', *args]
        self.proc = subprocess.Popen(
            shell, pass_fds=(to_r, from_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, timeout: float = 20.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" not in self._buf:
                chunk = os.read(self._from_r, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && document.images[0].complete")

    def eval(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.eval(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(expression)
            time.sleep(0.05)

    def key(self, key: str, code: str) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code})

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self._to_w)
        os.close(self._from_r)


@pytest.mark.browser
@pytest.mark.dot
@needs_browser
@needs_dot
def test_steps_page_in_a_headless_browser(tmp_path):
    if CHROMIUM is None:
        pytest.fail("chromium is missing: the test command installs it (apt-get install chromium)")
    written = graphc.render_steps(graphc.parse(STAGED), AT, tmp_path / "steps", fmt="png")
    browser = _Browser(tmp_path / "profile")
    try:
        browser.open(written[-1].resolve().as_uri())
        shown = "document.getElementById('pic').getAttribute('src')"
        assert browser.eval(shown) == "step_00.png"
        assert browser.eval("document.getElementById('count').textContent") == "1 / 12"
        browser.key("ArrowRight", "ArrowRight")
        browser.key("ArrowRight", "ArrowRight")
        browser.wait_for(f"{shown} === 'step_02.png' && document.images[0].complete")
        assert "step 1 of 10" in browser.eval("document.getElementById('note').textContent")
        browser.key("ArrowLeft", "ArrowLeft")
        browser.wait_for(f"{shown} === 'step_01.png'")
        browser.key("End", "End")
        browser.wait_for(f"{shown} === 'step_11.png' && document.images[0].complete")
        width = browser.eval("document.images[0].naturalWidth")
        assert width > 500  # the circuit, not a broken-image icon
        png = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
    finally:
        browser.close()
    (tmp_path / "screenshot.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the screenshot shows the circuit: the diagram's green and red numbers are there
    import zlib

    colours = _colours(png, zlib)
    assert any(_near(c, (0x1A, 0x7F, 0x37)) for c in colours), "no green values on screen"
    assert any(_near(c, (0xD1, 0x24, 0x2F)) for c in colours), "no red gradients on screen"


def _near(c: tuple[int, int, int], want: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(c, want, strict=True))


def _colours(png: bytes, zlib) -> set[tuple[int, int, int]]:
    """The set of RGB colours of an 8-bit RGB or RGBA PNG (filters undone)."""
    pos, idat, width = 8, b"", 0
    channels = 3
    while pos < len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width = int.from_bytes(data[0:4], "big")
            channels = {2: 3, 6: 4}[data[9]]
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    prev = bytearray(stride)
    colours = set()
    for row in range(len(raw) // (stride + 1)):
        f = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if row % 3 == 0:
            for i in range(0, stride, channels * 2):
                colours.add((line[i], line[i + 1], line[i + 2]))
        prev = line
    return colours
