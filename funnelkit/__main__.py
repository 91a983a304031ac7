"""``python -m funnelkit`` runs the ``funnelkit`` command."""
import sys

from .cli import main

sys.exit(main())
