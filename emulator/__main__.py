"""Run the emulator.

python -m emulator --port 8099 --api-key demo --scenario office

`--pbxs N` gives the first key N PBXs (one account, several PBXs): the first
has `--device-id`, the others made-up ids, the same on every run (see
`make_device_id`), and a scenario spreads its traffic over them. Every other
key has one PBX with a made-up id. The PBXs of each key are printed at start.

`--idle-cut SECONDS` puts an idle-cutting proxy in front: a stream that
sent nothing (no event, no keep-alive) for that long is ended, as nginx
(60 s), some routers (55 s) and office proxies do; pair it with
`--keepalive 0` for a server that sends no keep-alives.

`--autodial-port PORT` also serves the PBX's local auto-dial API (see
`autodial.py`) on that port of the same host, the vendor's being 9000; each
call then takes `--autodial-step` seconds. It is off by default (0): the cloud
emulator alone binds one port, so runs side by side do not collide on a fixed
second one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import signal

from .autodial import AutoDialEmulator
from .scenarios import SCENARIOS
from .server import (
    DEFAULT_DEVICE_ID,
    KEEPALIVE_STYLES,
    SpRecordEmulator,
    make_device_id,
)


def _positive(text: str) -> int:
    """Parse a positive integer argument."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _port_or_off(text: str) -> int:
    """Parse a port argument where 0 means off."""
    number = int(text)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("must be 0 (off) or a port 1..65535")
    return number


def _seconds(text: str) -> float:
    """Parse a non-negative number of seconds."""
    number = float(text)
    if not number >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description="Serve an emulated SpRecord cloud event API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8099, help="port (0: any free)")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted API key (repeat for more accounts; default: demo)",
    )
    parser.add_argument(
        "--device-id", default=DEFAULT_DEVICE_ID, help="PBX id of the first key"
    )
    parser.add_argument(
        "--pbxs",
        type=_positive,
        default=1,
        metavar="N",
        help="PBXs of the first key (default: 1); the others get made-up ids",
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="traffic to play")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="scenario pace multiplier"
    )
    parser.add_argument("--seed", type=int, help="random seed of the scenario")
    parser.add_argument(
        "--keepalive",
        type=float,
        default=15.0,
        help="seconds between keep-alives (0: a server that sends none)",
    )
    parser.add_argument(
        "--keepalive-style",
        choices=KEEPALIVE_STYLES,
        default="comment",
        help="keep-alive form: a comment line or an event with empty data",
    )
    parser.add_argument(
        "--max-streams", type=int, default=3, help="concurrent streams per key"
    )
    parser.add_argument("--no-replay", action="store_true", help="ignore Last-Event-ID")
    parser.add_argument(
        "--idle-cut",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="end a stream silent for this long, as a proxy does (default 0: never)",
    )
    parser.add_argument(
        "--auth-scheme",
        default="bearer",
        help="how the key is taken: bearer, header:NAME or query:NAME",
    )
    parser.add_argument(
        "--openapi", action="store_true", help="serve /openapi.json declaring it"
    )
    parser.add_argument(
        "--autodial-port",
        type=_port_or_off,
        default=0,
        metavar="PORT",
        help="also serve the PBX's local auto-dial API on this port "
        "(the vendor's is 9000; default 0: off)",
    )
    parser.add_argument(
        "--autodial-step",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="seconds one auto-dial call takes (default: 2)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    keys = args.api_keys or ["demo"]
    # Made-up ids are numbered on: the first key's extra PBXs, then one a key.
    made_up = (make_device_id(n) for n in itertools.count(1))
    accounts: dict[str, list[str]] = {
        keys[0]: [args.device_id, *itertools.islice(made_up, args.pbxs - 1)]
    }
    for key in keys[1:]:
        accounts.setdefault(key, [next(made_up)])
    emulator = SpRecordEmulator(
        accounts=accounts,
        max_streams=args.max_streams,
        keepalive=args.keepalive,
        keepalive_style=args.keepalive_style,
        replay=not args.no_replay,
        auth_scheme=args.auth_scheme,
        openapi=args.openapi,
        idle_cut=args.idle_cut,
    )
    url = await emulator.start(args.host, args.port)
    print(f"SpRecord emulator on {url} (keys: {', '.join(keys)})", flush=True)
    for key, pbxs in emulator.all_pbxs().items():
        print(f"  key {key}: PBX {', PBX '.join(pbxs)}", flush=True)
    if emulator.idle_cut:
        print(f"streams silent for {emulator.idle_cut:g} s are cut", flush=True)
    autodial: AutoDialEmulator | None = None
    if args.autodial_port:
        autodial = AutoDialEmulator(step=args.autodial_step)
        autodial_url = await autodial.start(args.host, args.autodial_port)
        tasks = ", ".join(
            f"{t['name']} (id {t['id']})" for t in autodial.state()["tasks"]
        )
        print(f"auto-dial API on {autodial_url} (tasks: {tasks})", flush=True)
    if args.scenario:
        emulator.play(args.scenario, speed=args.speed, seed=args.seed)
        print(f"playing scenario {args.scenario!r} at speed {args.speed:g}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if autodial is not None:
            await autodial.stop()
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(
        logging.INFO if args.verbose else logging.WARNING
    )
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
