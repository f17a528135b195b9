"""`python -m pipelines ...`: the same command line as the `nlp-pipelines` console script."""

import sys

from pipelines.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
