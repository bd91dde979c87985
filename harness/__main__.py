"""python -m harness: report which protections hold on this machine."""

from .cli import main

raise SystemExit(main())
