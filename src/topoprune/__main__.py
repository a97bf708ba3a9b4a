import sys

from topoprune.cli import main

sys.exit(main())
