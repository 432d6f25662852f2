"""`python -m mediagen.server ARGS` is `mediagen serve ARGS`."""

import sys

from mediagen.server.app import main

sys.exit(main())
