"""`python -m port443`: the same as the `port443` command."""

from port443.cli.main import main

raise SystemExit(main())
