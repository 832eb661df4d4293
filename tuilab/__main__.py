import os
import sys

from tuilab.cli import main

if os.environ.get("RANK", "0").strip() not in ("", "0"):
    # Under a launcher (torchrun, accelerate launch) the main process prints the result; the
    # other ranks run the same job silently on stdout (their errors still reach stderr).
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115

sys.exit(main())
