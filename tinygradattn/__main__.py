"""`python -m tinygradattn ...`: the same command as the `tinygradattn` console script."""
import sys

from .cli import main

sys.exit(main())
