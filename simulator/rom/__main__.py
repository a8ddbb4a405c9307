"""`python -m simulator.rom --chip esp32c3 --flash FILE`: one virtual board,
its pty and RFC 2217 port printed, until Ctrl-C."""
import argparse
import signal
import sys

from simulator.rom.board import MODES, BoardError, VirtualBoard
from simulator.rom.chips import CHIPS


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m simulator.rom",
                                description="a virtual ESP32 / ESP32-C3 in download mode")
    p.add_argument("--chip", required=True, choices=sorted(CHIPS))
    p.add_argument("--flash", required=True, help="flash image file (made, 4 MB of 0xFF, if missing)")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="start in download mode or running the app (default: download, "
                        "or app with --rfc2217-port, where DTR/RTS reset it)")
    p.add_argument("--rfc2217-port", type=int, help="serve RFC 2217 on 127.0.0.1:PORT (0: any)")
    args = p.parse_args(argv)
    mode = args.mode or ("app" if args.rfc2217_port is not None else "download")
    try:
        board = VirtualBoard(args.chip, args.flash, mode=mode)
    except (BoardError, OSError) as exc:
        print("virtual board: error: %s" % exc, file=sys.stderr)
        return 2
    print("pty %s" % board.port, flush=True)
    if args.rfc2217_port is not None:
        print(board.serve_rfc2217(port=args.rfc2217_port), flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        board.close()
        print("commands: %s" % " ".join(board.commands))
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
