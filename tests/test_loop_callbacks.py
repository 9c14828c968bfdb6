"""The loop-callback check finds functions Home Assistant would call in a thread."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from homeassistant.core import HassJob, HassJobType, callback
import pytest

from .helpers import load_script


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    """Load `scripts/loop_callbacks.py`."""
    return load_script("loop_callbacks")


def test_what_the_check_is_for() -> None:
    """Home Assistant runs a plain function or `list.append` in a thread."""
    events: list[object] = []

    def plain(event: object) -> None:
        events.append(event)

    assert HassJob(events.append).job_type is HassJobType.Executor
    assert HassJob(plain).job_type is HassJobType.Executor
    assert HassJob(callback(plain)).job_type is HassJobType.Callback


def test_the_project_has_no_thread_listener(
    checker: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert checker.main([]) == 0
    assert "all called back in the loop" in capsys.readouterr().out


@pytest.mark.parametrize(
    "code",
    [
        "events = []\nhass.bus.async_listen('x', events.append)\n",
        "hass.bus.async_listen('x', lambda event: None)\n",
        "def plain(event):\n    pass\nhass.bus.async_listen('x', plain)\n",
        "from elsewhere import imported\nhass.bus.async_listen_once('x', imported)\n",
        "hass.bus.async_listen('x', listener=print)\n",
        "def moved():\n    pass\nasync_dispatcher_connect(hass, 'signal', moved)\n",
        "async_track_state_change_event(hass, ['sensor.x'], lambda e: None)\n",
        "async_call_later(hass, 5, action=print)\n",
        "event.async_track_point_in_utc_time(hass, print, when)\n",
        (
            "class C:\n    def on(self, event):\n        pass\n"
            "    def start(self):\n        self.hass.bus.async_listen('x', self.on)\n"
        ),
        # A name defined twice, once as a plain function: it may be that one.
        (
            "@callback\ndef on(event):\n    pass\ndef on(event):\n    pass\n"
            "hass.bus.async_listen('x', on)\n"
        ),
    ],
)
def test_a_listener_that_may_run_in_a_thread_is_found(
    checker: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: str,
) -> None:
    (tmp_path / "listens.py").write_text(code)
    assert checker.main([str(tmp_path)]) == 1
    assert "listens.py:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "code",
    [
        "@callback\ndef on(event):\n    pass\nhass.bus.async_listen('x', on)\n",
        "@core.callback\ndef on(event):\n    pass\nhass.bus.async_listen('x', on)\n",
        "async def on(event):\n    pass\nhass.bus.async_listen_once('x', on)\n",
        (
            "class C:\n    @callback\n    def on(self, event):\n        pass\n"
            "    def start(self):\n        self.hass.bus.async_listen('x', self.on)\n"
        ),
        "@callback\ndef fire(now):\n    pass\nasync_call_later(hass, 5, fire)\n",
        "hass.bus.async_listen('x')\n",  # no listener: not this check's business
        "other.async_listen(print)\n",  # too few arguments: another API
    ],
)
def test_a_listener_in_the_loop_passes(
    checker: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: str,
) -> None:
    (tmp_path / "listens.py").write_text(code)
    assert checker.main([str(tmp_path)]) == 0
    assert "1 files" in capsys.readouterr().out
