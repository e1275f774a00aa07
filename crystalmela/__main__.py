import sys

from crystalmela.cli.main import main

sys.exit(main())
