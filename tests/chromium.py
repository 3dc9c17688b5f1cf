"""Rendering a report in headless Chromium (Debian's package), for the report tests."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)"
)


class _DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe: NUL-terminated JSON messages
    on file descriptors 3 (commands in) and 4 (replies and events out). Standard library only."""

    def __init__(self, profile: Path):
        to_chrome, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome = os.pipe()
        # Move the child's ends above 3 and 4 so that placing them there cannot clobber each other.
        high_in, high_out = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome, from_chrome))

        def child_fds():
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        command = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            command,
            preexec_fn=child_fds,
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (to_chrome, from_chrome, high_in, high_out):
            os.close(fd)
        self.buffer, self.events, self.next_id = b"", [], 0

    def _read(self, timeout: float) -> dict:
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self._from_chrome], [], [], timeout)
            chunk = os.read(self._from_chrome, 1 << 20) if ready else b""
            assert chunk, "Chromium did not answer"
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, timeout: float = 60, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read(timeout))

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def assert_renders(index: Path, tmp_path: Path, min_images: int) -> None:
    """index.html loads in headless Chromium with every image, no error and no network request,
    and the page is not blank."""
    browser = _DevTools(tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=1280,
            height=2000,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.send("Page.navigate", session, url=index.as_uri())
        browser.wait_for("Page.loadEventFired")
        images = browser.send(
            "Runtime.evaluate",
            session,
            returnByValue=True,
            expression="Array.from(document.images, i => [i.complete, i.naturalWidth])",
        )["result"]["value"]
        shot = browser.send("Page.captureScreenshot", session, format="png")["data"]
    finally:
        browser.close()
    assert len(images) == index.read_text().count("<img ") >= min_images
    assert all(complete and width > 0 for complete, width in images), images
    errors = [
        e
        for e in browser.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (
            e.get("method") == "Runtime.consoleAPICalled"
            and e["params"]["type"] in ("error", "assert")
        )
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert errors == []
    requested = {
        e["params"]["request"]["url"].split(":", 1)[0]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    }
    assert requested <= {"file", "data"}  # nothing from the network
    (tmp_path / "screenshot.png").write_bytes(base64.b64decode(shot))
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(shot))).convert("L"))
    assert pixels.shape == (2000, 1280)
    assert 0.01 < (pixels < 200).mean() < 0.9  # text and figures on a white page: not blank
