"""``python -m ratewindow``: the command line."""

from ratewindow._cli import main

raise SystemExit(main())
