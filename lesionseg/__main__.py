"""``python -m lesionseg ...`` (and ``torchrun ... -m lesionseg train ...``) run the command line."""

from lesionseg.cli.main import main

if __name__ == "__main__":
    main(prog_name="lesionseg")
