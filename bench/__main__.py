"""``python -m bench`` is the ``zoobench`` command."""

from bench.cli import main

raise SystemExit(main())
