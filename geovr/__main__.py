import sys

from geovr.cli import main

sys.exit(main())
