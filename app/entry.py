"""Console script `pforte`. For `serve`, gevent must patch the standard library before anything else loads."""
import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        from gevent import monkey

        monkey.patch_all()
    from app.cli import main as cli_main
    from app.config import ConfigError

    try:
        cli_main()
    except ConfigError as exc:  # a setting Pforte cannot use: say which and why, no traceback
        sys.exit(f"pforte: {exc}")


if __name__ == "__main__":
    main()
