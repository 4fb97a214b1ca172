"""``python -m emulator --world samples/world.json [--port 0] [--time-scale 1] [--latency 0] [--env-file F]``

Prints the endpoints and the environment to export, then serves until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .core import Emulator
from .world import World, WorldError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.strip().splitlines()[0])
    p.add_argument("--world", default="samples/world.json", help="world JSON file (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="ARM HTTPS port (0 = any free port)")
    p.add_argument("--identity-port", type=int, default=0, help="managed-identity HTTP port (0 = any)")
    p.add_argument("--time-scale", type=float, default=1.0, help="emulated seconds per real second")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every ARM call")
    p.add_argument("--page-size", type=int, default=50, help="items per list page")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After on LRO responses (0 = omit)")
    p.add_argument("--cert-dir", default=None, help="where to keep the TLS cert/key (default: a temp dir)")
    p.add_argument("--identity-header", default=None, help="IDENTITY_HEADER value (default: random)")
    p.add_argument("--env-file", default=None, help="also write the environment as KEY=VALUE lines here")
    p.add_argument("-v", "--verbose", action="store_true", help="log each request")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
    try:
        world = World.from_file(args.world)
    except (OSError, WorldError) as exc:
        print(f"error: cannot load world {args.world}: {exc}", file=sys.stderr)
        return 2
    emu = Emulator(
        world,
        host=args.host,
        port=args.port,
        identity_port=args.identity_port,
        time_scale=args.time_scale,
        latency=args.latency,
        page_size=args.page_size,
        retry_after=args.retry_after,
        cert_dir=args.cert_dir,
        identity_header=args.identity_header,
    )
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    emu.start()
    env_file: Path | None = Path(args.env_file) if args.env_file else None
    try:
        env = emu.env()
        print(f"ARM (HTTPS):        {emu.arm_endpoint}")
        print(f"Managed identity:   {emu.identity_endpoint}")
        print(f"Subscription:       {emu.subscription_id}  (tenant {emu.tenant_id})")
        print(f"CA certificate:     {emu.ca_cert_path}")
        print("Environment:")
        for key, value in env.items():
            print(f"export {key}={shlex.quote(value)}")
        if env_file is not None:
            tmp = env_file.with_name(env_file.name + ".tmp")
            tmp.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
            os.replace(tmp, env_file)
            print(f"Wrote {env_file}")
        print("Serving; Ctrl-C to stop.", flush=True)
        while not done.wait(0.5):
            pass
    finally:
        emu.stop()
        if env_file is not None:
            env_file.unlink(missing_ok=True)
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
