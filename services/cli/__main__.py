"""Run the command line as `python -m services.cli`."""

from services.cli.main import main

raise SystemExit(main())
