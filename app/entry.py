"""Console script `pforte`. For `serve`, gevent must patch the standard library before anything else loads,
so the application's modules are imported only after that."""
import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        from gevent import monkey

        monkey.patch_all()
    from app.cli import command_group
    from app.config import ConfigError
    from app.factory import create_app

    try:
        command_group(create_app)(prog_name="pforte")
    except ConfigError as exc:  # a setting Pforte cannot use: say which and why, no traceback
        sys.exit(f"pforte: {exc}")


if __name__ == "__main__":
    main()
