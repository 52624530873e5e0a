import sys

from meshcore.cli import main

sys.exit(main())
