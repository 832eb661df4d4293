import sys

from tuilab.cli import main

sys.exit(main())
