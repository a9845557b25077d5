"""``python -m lesionseg ...`` (and ``torchrun ... -m lesionseg train ...``) run the command line."""

from lesionseg.cli.main import app

if __name__ == "__main__":
    app(prog_name="lesionseg")
