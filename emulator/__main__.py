"""Run the emulator.

python -m emulator --port 8099 --api-key demo --scenario office
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .scenarios import SCENARIOS
from .server import DEFAULT_DEVICE_ID, SpRecordEmulator


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
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="traffic to play")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="scenario pace multiplier"
    )
    parser.add_argument("--seed", type=int, help="random seed of the scenario")
    parser.add_argument(
        "--keepalive",
        type=float,
        default=15.0,
        help="seconds between keep-alive comments (0: off)",
    )
    parser.add_argument(
        "--max-streams", type=int, default=3, help="concurrent streams per key"
    )
    parser.add_argument("--no-replay", action="store_true", help="ignore Last-Event-ID")
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    keys = args.api_keys or ["demo"]
    accounts = {
        key: f"{args.device_id}" if i == 0 else f"device-{i}"
        for i, key in enumerate(keys)
    }
    emulator = SpRecordEmulator(
        accounts=accounts,
        max_streams=args.max_streams,
        keepalive=args.keepalive,
        replay=not args.no_replay,
    )
    url = await emulator.start(args.host, args.port)
    print(f"SpRecord emulator on {url} (keys: {', '.join(keys)})", flush=True)
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
